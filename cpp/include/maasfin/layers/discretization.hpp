// Discretization (Keras): bucket index = number of bin boundaries <= x (numpy.digitize), then the
// shared index encoder (depth = boundaries + 1). The boundaries are non-trainable state in the
// arena ("bin_boundaries", sorted ascending), so they are saved with the weights.
#pragma once

#include "maasfin/layers/category_encoding.hpp"

namespace maasfin {

class Discretization : public Layer {
public:
    Discretization(Index num_boundaries, OutputMode mode);
    std::string kind() const override { return "Discretization"; }
    bool differentiable() const override { return false; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    Index b_;  // number of boundaries
    IndexEncoder enc_;
    Index boundaries_ = -1;
};

}  // namespace maasfin
