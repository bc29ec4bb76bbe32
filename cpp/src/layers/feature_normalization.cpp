#include "maasfin/layers/feature_normalization.hpp"

#include <algorithm>
#include <cmath>

namespace maasfin {

namespace {
constexpr float kEpsilon = 1e-7f;  // Keras backend.epsilon()
inline float scale_of(float variance) { return std::max(std::sqrt(variance), kEpsilon); }
}  // namespace

// in: (..., C) -> out: (..., C)
Shape Normalization::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    if (inputs.size() != 1 || inputs[0].empty())
        throw InvalidArgument("Normalization '" + name_ + "' expects one input of rank >= 1 per sample");
    c_ = inputs[0].back();
    rows_per_sample_ = numel(inputs[0]) / c_;
    mean_ = params.add("mean", {c_}, Initializer::zeros, false);
    variance_ = params.add("variance", {c_}, Initializer::ones, false);
    return inputs[0];
}

// x, y: R x C (R = N * rows per sample)
void Normalization::forward(const ForwardArgs& a) const {
    const Index R = a.N * rows_per_sample_, C = c_;
    const float* mean = a.params + mean_;
    const float* var = a.params + variance_;
    for (Index r = 0; r < R; ++r)
        for (Index c = 0; c < C; ++c) {
            const float x = a.x[0][r * C + c];
            a.y[r * C + c] = invert_ ? mean[c] + x * scale_of(var[c]) : (x - mean[c]) / scale_of(var[c]);
        }
}

void Normalization::backward(const BackwardArgs& a) const {
    const Index R = a.N * rows_per_sample_, C = c_;
    std::fill(a.grads + mean_, a.grads + mean_ + C, 0.f);
    std::fill(a.grads + variance_, a.grads + variance_ + C, 0.f);
    if (!a.dx[0]) return;
    const float* var = a.params + variance_;
    for (Index r = 0; r < R; ++r)
        for (Index c = 0; c < C; ++c)
            a.dx[0][r * C + c] = invert_ ? a.dy[r * C + c] * scale_of(var[c]) : a.dy[r * C + c] / scale_of(var[c]);
}

}  // namespace maasfin
