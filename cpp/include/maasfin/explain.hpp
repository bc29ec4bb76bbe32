// Per-feature attributions for predictions, computed with the same backward pass training uses.
#pragma once

#include <vector>

#include "maasfin/graph.hpp"

namespace maasfin {

// Gauss-Legendre quadrature on [0, 1]: `m` nodes and weights (weights sum to 1).
void gauss_legendre(Index m, std::vector<double>& nodes, std::vector<double>& weights);

// Integrated gradients of output column `output` for a single-input model:
//   a_ij = (x_ij - b_ij) * integral_0^1 d f_output(b + t (x - b)) / d x_j dt.
// tolerance == 0: the integral is Gauss-Legendre on `steps` points, one batched pass — exact to
// ~1e-7 for smooth networks, but only O(1/steps) for ReLU networks, whose gradient jumps along
// the path. tolerance > 0: adaptive Gauss-Kronrod (7/15 points) from ceil(steps / 15)
// intervals, halving any interval whose Kronrod and Gauss estimates of the attribution sum
// differ by more than `tolerance` times its width (up to 12 times), so that
// sum_j a_ij = f(x_i) - f(b_i) to about `tolerance` even across ReLU kinks, at a higher cost.
// x: N x F; baseline: B x F with B = 1 (shared) or N (one per row); attributions: N x F.
// Const and thread-safe; deterministic.
void integrated_gradients(const Graph& g, const float* x, const float* baseline, Index B, Index N, Index output,
                          Index steps, double tolerance, float* attributions);

// The same in the model's encoded space (Graph::frontier), for models whose inputs pass through
// lookups, hashing, discretization, embeddings or imputation, or that have several inputs.
// A row of z is the concatenation of the frontier nodes' values (F = frontier_width(g));
// baseline: B x F; attributions: N x F, each summing per row to f(z) - f(baseline).
Index frontier_width(const Graph& g);
// z: N x frontier_width(g), the encoded values of inputs x (inference mode).
void encode(const Graph& g, const std::vector<const float*>& x, Index N, float* z);
void integrated_gradients_encoded(const Graph& g, const float* z, const float* baseline, Index B, Index N, Index output,
                                  Index steps, double tolerance, float* attributions);

}  // namespace maasfin
