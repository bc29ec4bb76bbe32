#include "maasfin/layers/merge.hpp"

#include <algorithm>

namespace maasfin {

// k inputs of equal shape (D) -> (D)
Shape Add::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    if (inputs.size() < 2) throw InvalidArgument("Add '" + name_ + "' needs at least 2 inputs");
    for (const Shape& s : inputs)
        if (s != inputs[0])
            throw InvalidArgument("Add '" + name_ + "' needs equal input shapes, got " +
                                  shape_str(inputs[0]) + " and " + shape_str(s));
    d_ = numel(inputs[0]);
    return inputs[0];
}

void Add::forward(const ForwardArgs& a) const {
    const Index n = a.N * d_;
    for (Index i = 0; i < n; ++i) a.y[i] = a.x[0][i];
    for (std::size_t k = 1; k < a.x.size(); ++k)
        for (Index i = 0; i < n; ++i) a.y[i] += a.x[k][i];
}

void Add::backward(const BackwardArgs& a) const {
    const Index n = a.N * d_;
    for (float* dx : a.dx)
        if (dx)
            for (Index i = 0; i < n; ++i) dx[i] = a.dy[i];
}

// inputs (..., D_k) with equal leading dims -> (..., sum D_k)
Shape Concatenate::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    if (inputs.size() < 2) throw InvalidArgument("Concatenate '" + name_ + "' needs at least 2 inputs");
    Shape out = inputs[0];
    if (out.empty()) throw InvalidArgument("Concatenate '" + name_ + "' needs inputs of rank >= 1");
    widths_.clear();
    total_ = 0;
    for (const Shape& s : inputs) {
        if (s.size() != out.size() || !std::equal(s.begin(), s.end() - 1, out.begin()))
            throw InvalidArgument("Concatenate '" + name_ + "' needs matching shapes except the last axis, got " +
                                  shape_str(inputs[0]) + " and " + shape_str(s));
        widths_.push_back(s.back());
        total_ += s.back();
    }
    out.back() = total_;
    rows_per_sample_ = numel(out) / total_;
    return out;
}

void Concatenate::forward(const ForwardArgs& a) const {
    const Index rows = a.N * rows_per_sample_;
    for (Index r = 0; r < rows; ++r) {
        float* dst = a.y + r * total_;
        for (std::size_t k = 0; k < widths_.size(); ++k) {
            const float* src = a.x[k] + r * widths_[k];
            for (Index j = 0; j < widths_[k]; ++j) *dst++ = src[j];
        }
    }
}

void Concatenate::backward(const BackwardArgs& a) const {
    const Index rows = a.N * rows_per_sample_;
    for (Index r = 0; r < rows; ++r) {
        const float* src = a.dy + r * total_;
        for (std::size_t k = 0; k < widths_.size(); ++k) {
            if (a.dx[k])
                for (Index j = 0; j < widths_[k]; ++j) a.dx[k][r * widths_[k] + j] = src[j];
            src += widths_[k];
        }
    }
}

}  // namespace maasfin
