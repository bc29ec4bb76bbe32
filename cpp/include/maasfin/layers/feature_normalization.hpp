// Normalization (Keras's preprocessing layer, axis=-1): y = (x - mean) / max(sqrt(variance), 1e-7),
// or with `invert` y = mean + x * max(sqrt(variance), 1e-7). mean and variance are non-trainable
// state in the arena (set by adapt or given), saved with the weights.
#pragma once

#include "maasfin/layer.hpp"

namespace maasfin {

class Normalization : public Layer {
public:
    explicit Normalization(bool invert) : invert_(invert) {}
    std::string kind() const override { return "Normalization"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    bool invert_;
    Index c_ = 0, rows_per_sample_ = 1;
    Index mean_ = -1, variance_ = -1;
};

}  // namespace maasfin
