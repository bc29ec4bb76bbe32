// Imputation (maasfin; Keras has none): replaces NaN in each feature by that feature's fill value
// (a median, mean or constant learned by adapt) and, with add_indicator, appends one 0/1 column
// per feature that says the value was missing: (C) -> (C) or (2C). The fill values are
// non-trainable state in the arena ("fill_value"), saved with the weights.
#pragma once

#include "maasfin/layer.hpp"

namespace maasfin {

class Imputation : public Layer {
public:
    explicit Imputation(bool add_indicator) : add_indicator_(add_indicator) {}
    std::string kind() const override { return "Imputation"; }
    bool differentiable() const override { return false; }
    Index source_element(Index k, Index /*input_width*/) const override { return c_ > 0 ? k % c_ : -1; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    bool add_indicator_;
    Index c_ = 0;
    Index fill_ = -1;
};

}  // namespace maasfin
