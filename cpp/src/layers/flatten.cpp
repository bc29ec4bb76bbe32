#include "maasfin/layers/flatten.hpp"

#include <cstring>

namespace maasfin {

// in: any shape -> out: (numel)
Shape Flatten::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    if (inputs.size() != 1) throw InvalidArgument("Flatten '" + name_ + "' takes one input");
    d_ = numel(inputs[0]);
    return {d_};
}

void Flatten::forward(const ForwardArgs& a) const {
    std::memcpy(a.y, a.x[0], sizeof(float) * static_cast<std::size_t>(a.N * d_));
}

void Flatten::backward(const BackwardArgs& a) const {
    if (a.dx[0]) std::memcpy(a.dx[0], a.dy, sizeof(float) * static_cast<std::size_t>(a.N * d_));
}

}  // namespace maasfin
