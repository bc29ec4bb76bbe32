#include "maasfin/layers/dropout.hpp"

#include "maasfin/rng.hpp"

namespace maasfin {

Dropout::Dropout(float rate, std::uint64_t seed) : rate_(rate), seed_(seed) {
    if (!(rate >= 0.f && rate < 1.f))
        throw InvalidArgument("Dropout: rate must be in [0, 1), got " + std::to_string(rate));
}

Shape Dropout::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    if (inputs.size() != 1) throw InvalidArgument("Dropout '" + name_ + "' expects one input");
    d_ = numel(inputs[0]);
    return inputs[0];
}

// The scale applied to element i: 0 (dropped) or 1/(1-rate) (kept).
float Dropout::keep(std::uint64_t step_seed, Index i) const {
    return rng::uniform(step_seed, seed_, static_cast<std::uint64_t>(i)) >= rate_ ? 1.f / (1.f - rate_) : 0.f;
}

// x, y: N x D
void Dropout::forward(const ForwardArgs& a) const {
    const Index n = a.N * d_;
    if (!a.training || rate_ == 0.f) {
        for (Index i = 0; i < n; ++i) a.y[i] = a.x[0][i];
        return;
    }
    for (Index i = 0; i < n; ++i) a.y[i] = a.x[0][i] * keep(a.seed, i);
}

void Dropout::backward(const BackwardArgs& a) const {
    if (!a.dx[0]) return;
    const Index n = a.N * d_;
    if (!a.training || rate_ == 0.f) {
        for (Index i = 0; i < n; ++i) a.dx[0][i] = a.dy[i];
        return;
    }
    for (Index i = 0; i < n; ++i) a.dx[0][i] = a.dy[i] * keep(a.seed, i);
}

}  // namespace maasfin
