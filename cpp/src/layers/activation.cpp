#include "maasfin/layers/activation.hpp"

#include "maasfin/kernels.hpp"

namespace maasfin {

// in: (..., D) -> out: (..., D)
Shape ActivationLayer::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    if (inputs.size() != 1 || inputs[0].empty())
        throw InvalidArgument("Activation '" + name_ + "' expects one input of rank >= 1 per sample");
    d_ = inputs[0].back();
    rows_per_sample_ = numel(inputs[0]) / d_;
    return inputs[0];
}

void ActivationLayer::forward(const ForwardArgs& a) const {
    kernels::eltwise_fwd(activation_, a.x[0], a.y, a.N * rows_per_sample_, d_);
}

void ActivationLayer::backward(const BackwardArgs& a) const {
    if (a.dx[0]) kernels::eltwise_bwd(activation_, a.x[0], a.y, a.dy, a.dx[0], a.N * rows_per_sample_, d_);
}

}  // namespace maasfin
