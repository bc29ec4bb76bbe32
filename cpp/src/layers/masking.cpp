// Masking and SequenceMask. x: N x T x D, y: N x T x D (Masking) or N x T (SequenceMask).
#include "maasfin/layers/masking.hpp"

#include <algorithm>
#include <cmath>

namespace maasfin {

namespace {
// 1 when any of the D floats differs from value (NaN differs from everything, as in Keras).
inline float step_kept(const float* x, Index D, float value) {
    for (Index d = 0; d < D; ++d)
        if (!(x[d] == value)) return 1.f;
    return 0.f;
}
}  // namespace

Masking::Masking(float mask_value) : value_(mask_value) {
    if (std::isnan(mask_value)) throw InvalidArgument("Masking: mask_value must be a number, got NaN");
}

Shape Masking::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    if (inputs.size() != 1 || inputs[0].size() != 2)
        throw InvalidArgument("Masking '" + name_ +
                              "' expects one input of shape (timesteps, features) per sample, got " +
                              (inputs.empty() ? std::string("none") : shape_str(inputs[0])));
    T_ = inputs[0][0];
    D_ = inputs[0][1];
    return inputs[0];
}

void Masking::forward(const ForwardArgs& a) const {
    for (Index r = 0; r < a.N * T_; ++r) {
        const float* x = a.x[0] + r * D_;
        float* y = a.y + r * D_;
        const float m = step_kept(x, D_, value_);
        for (Index d = 0; d < D_; ++d) y[d] = m != 0.f ? x[d] : 0.f;
    }
}

void Masking::backward(const BackwardArgs& a) const {
    if (!a.dx[0]) return;
    for (Index r = 0; r < a.N * T_; ++r) {
        const float m = step_kept(a.x[0] + r * D_, D_, value_);
        for (Index d = 0; d < D_; ++d) a.dx[0][r * D_ + d] = m != 0.f ? a.dy[r * D_ + d] : 0.f;
    }
}

SequenceMask::SequenceMask(float value) : value_(value) {}

Shape SequenceMask::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    if (inputs.size() != 1 || inputs[0].empty())
        throw InvalidArgument("SequenceMask '" + name_ + "' expects one input of shape (timesteps, ...)");
    T_ = inputs[0][0];
    D_ = numel(inputs[0]) / T_;
    return {T_};
}

void SequenceMask::forward(const ForwardArgs& a) const {
    for (Index r = 0; r < a.N * T_; ++r) a.y[r] = step_kept(a.x[0] + r * D_, D_, value_);
}

void SequenceMask::backward(const BackwardArgs& a) const {
    if (a.dx[0]) std::fill(a.dx[0], a.dx[0] + a.N * T_ * D_, 0.f);
}

}  // namespace maasfin
