// Per-feature attributions for predictions, computed with the same backward pass training uses.
#pragma once

#include <vector>

#include "maasfin/graph.hpp"

namespace maasfin {

// Gauss-Legendre quadrature on [0, 1]: `m` nodes and weights (weights sum to 1).
void gauss_legendre(Index m, std::vector<double>& nodes, std::vector<double>& weights);

// Integrated gradients of output column `output` for a single-input model:
//   a_ij = (x_ij - b_ij) * integral_0^1 d f_output(b + t (x - b)) / d x_j dt,
// with the integral by Gauss-Legendre quadrature on `steps` points, so that for smooth models
// sum_j a_ij = f(x_i) - f(b_i) up to the quadrature error.
// x: N x F; baseline: B x F with B = 1 (shared) or N (one per row); attributions: N x F.
// Const and thread-safe; deterministic.
void integrated_gradients(const Graph& g, const float* x, const float* baseline, Index B, Index N, Index output,
                          Index steps, float* attributions);

}  // namespace maasfin
