// Keras masking. A mask is an ordinary graph tensor of shape (T,) per sample holding 1 (a step
// that counts) or 0 (a masked step); the Python model wires it into the layers that use it.
//   Masking(mask_value): (T, D) -> (T, D), y[t] = x[t] * m[t], m[t] = any_d(x[t, d] != mask_value)
//   SequenceMask(value): (T, ...) -> (T,), m[t] = any(x[t, ...] != value); it computes the mask
//     of a Masking layer (value = mask_value) or of Embedding(mask_zero=True) (value = 0 on the
//     indices). Not a Keras layer: models build these nodes themselves and never save them.
#pragma once

#include "maasfin/layer.hpp"

namespace maasfin {

class Masking : public Layer {
public:
    explicit Masking(float mask_value);
    std::string kind() const override { return "Masking"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    float value_;
    Index T_ = 0, D_ = 0;
};

class SequenceMask : public Layer {
public:
    explicit SequenceMask(float value);
    std::string kind() const override { return "SequenceMask"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;  // the mask is piecewise constant: dx = 0

private:
    float value_;
    Index T_ = 0, D_ = 0;  // D_ = floats per step
};

}  // namespace maasfin
