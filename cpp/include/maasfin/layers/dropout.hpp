// Dropout: in training, zeroes each element with probability `rate` and scales the rest by
// 1/(1-rate); identity at inference. The mask is a pure function of (step seed, layer seed,
// element), so backward recomputes it instead of storing it.
#pragma once

#include "maasfin/layer.hpp"

namespace maasfin {

class Dropout : public Layer {
public:
    Dropout(float rate, std::uint64_t seed);
    std::string kind() const override { return "Dropout"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    float keep(std::uint64_t step_seed, Index i) const;
    float rate_;
    std::uint64_t seed_;
    Index d_ = 0;
};

}  // namespace maasfin
