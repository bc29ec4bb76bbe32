// Flatten (Keras): any per-sample shape -> (numel), a copy (the layout is already row-major).
#pragma once

#include "maasfin/layer.hpp"

namespace maasfin {

class Flatten : public Layer {
public:
    std::string kind() const override { return "Flatten"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    std::string config() const override { return "{}"; }

private:
    Index d_ = 0;
};

}  // namespace maasfin
