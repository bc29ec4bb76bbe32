// Activation: y = f(x) element-wise (softmax over the last axis).
#pragma once

#include "maasfin/activation.hpp"
#include "maasfin/layer.hpp"

namespace maasfin {

class ActivationLayer : public Layer {
public:
    explicit ActivationLayer(Activation activation) : activation_(activation) {}
    std::string kind() const override { return "Activation"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    Activation activation_;
    Index rows_per_sample_ = 1, d_ = 0;
};

}  // namespace maasfin
