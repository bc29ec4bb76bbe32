#include "maasfin/layers/discretization.hpp"

#include <algorithm>

namespace maasfin {

Discretization::Discretization(Index num_boundaries, OutputMode mode) : b_(num_boundaries) {
    if (num_boundaries < 1) throw InvalidArgument("Discretization: at least one bin boundary is needed");
    enc_.depth = num_boundaries + 1;
    enc_.mode = mode;
}

// in: (K) -> out: see IndexEncoder with depth B + 1
Shape Discretization::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    if (inputs.size() != 1) throw InvalidArgument("Discretization '" + name_ + "' takes one input");
    Shape out = enc_.build(inputs[0], "Discretization '" + name_ + "'");
    boundaries_ = params.add("bin_boundaries", {b_}, Initializer::zeros, false);
    return out;
}

// x: N x K values; boundaries: B ascending; y: N x width
void Discretization::forward(const ForwardArgs& a) const {
    const Index N = a.N, K = enc_.K, W = enc_.width(), B = b_;
    const float* b = a.params + boundaries_;
    std::vector<Index> idx(static_cast<std::size_t>(K));
    for (Index n = 0; n < N; ++n) {
        for (Index k = 0; k < K; ++k) idx[k] = std::upper_bound(b, b + B, a.x[0][n * K + k]) - b;
        enc_.encode(idx.data(), a.y + n * W);
    }
}

// Piecewise constant: zero gradient everywhere it exists.
void Discretization::backward(const BackwardArgs& a) const {
    if (a.dx[0]) std::fill(a.dx[0], a.dx[0] + a.N * enc_.K, 0.f);
    std::fill(a.grads + boundaries_, a.grads + boundaries_ + b_, 0.f);
}

}  // namespace maasfin
