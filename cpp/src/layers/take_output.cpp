// x: N x R (R = the source's floats per sample), y: N x P (P = numel(shape)), y[n] = x[n, offset:offset+P].
#include "maasfin/layers/take_output.hpp"

#include <algorithm>
#include <cstring>

namespace maasfin {

TakeOutput::TakeOutput(Index offset, Shape shape) : offset_(offset), shape_(std::move(shape)) {
    if (offset < 0 || shape_.empty() || numel(shape_) <= 0)
        throw InvalidArgument("TakeOutput: invalid part at offset " + std::to_string(offset) + " with shape " +
                              shape_str(shape_));
}

Shape TakeOutput::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    if (inputs.size() != 1) throw InvalidArgument("TakeOutput '" + name_ + "' expects one input");
    row_ = numel(inputs[0]);
    if (offset_ + numel(shape_) > row_)
        throw InvalidArgument("TakeOutput '" + name_ + "': part " + shape_str(shape_) + " at offset " +
                              std::to_string(offset_) + " lies outside the source row of " + std::to_string(row_) +
                              " floats");
    return shape_;
}

void TakeOutput::forward(const ForwardArgs& a) const {
    const Index P = numel(shape_);
    for (Index n = 0; n < a.N; ++n)
        std::memcpy(a.y + n * P, a.x[0] + n * row_ + offset_, sizeof(float) * static_cast<std::size_t>(P));
}

void TakeOutput::backward(const BackwardArgs& a) const {
    if (!a.dx[0]) return;
    const Index P = numel(shape_);
    std::fill(a.dx[0], a.dx[0] + a.N * row_, 0.f);
    for (Index n = 0; n < a.N; ++n)
        std::memcpy(a.dx[0] + n * row_ + offset_, a.dy + n * P, sizeof(float) * static_cast<std::size_t>(P));
}

}  // namespace maasfin
