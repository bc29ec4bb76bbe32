#include "maasfin/layers/merge.hpp"

#include <algorithm>
#include <cmath>

namespace maasfin {

// k inputs of equal shape (D) -> (D)
Shape Add::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    if (inputs.size() < 2) throw InvalidArgument("Add '" + name_ + "' needs at least 2 inputs");
    for (const Shape& s : inputs)
        if (s != inputs[0])
            throw InvalidArgument("Add '" + name_ + "' needs equal input shapes, got " + shape_str(inputs[0]) +
                                  " and " + shape_str(s));
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

namespace maasfin {

std::string ElementwiseMerge::kind() const {
    switch (op_) {
        case Op::subtract: return "Subtract";
        case Op::multiply: return "Multiply";
        case Op::average: return "Average";
        case Op::maximum: return "Maximum";
        case Op::minimum: return "Minimum";
    }
    return "Merge";
}

// k inputs of equal shape (D) -> (D); Subtract takes exactly 2.
Shape ElementwiseMerge::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    if (op_ == Op::subtract && inputs.size() != 2)
        throw InvalidArgument("Subtract '" + name_ + "' needs exactly 2 inputs, got " + std::to_string(inputs.size()));
    if (inputs.size() < 2) throw InvalidArgument(kind() + " '" + name_ + "' needs at least 2 inputs");
    for (const Shape& s : inputs)
        if (s != inputs[0])
            throw InvalidArgument(kind() + " '" + name_ + "' needs equal input shapes, got " + shape_str(inputs[0]) +
                                  " and " + shape_str(s));
    d_ = numel(inputs[0]);
    return inputs[0];
}

void ElementwiseMerge::forward(const ForwardArgs& a) const {
    const Index n = a.N * d_;
    const std::size_t k = a.x.size();
    std::copy(a.x[0], a.x[0] + n, a.y);
    for (std::size_t j = 1; j < k; ++j) {
        const float* x = a.x[j];
        switch (op_) {
            case Op::subtract:
                for (Index i = 0; i < n; ++i) a.y[i] -= x[i];
                break;
            case Op::multiply:
                for (Index i = 0; i < n; ++i) a.y[i] *= x[i];
                break;
            case Op::average:
                for (Index i = 0; i < n; ++i) a.y[i] += x[i];
                break;
            case Op::maximum:
                for (Index i = 0; i < n; ++i) a.y[i] = x[i] > a.y[i] ? x[i] : a.y[i];
                break;
            case Op::minimum:
                for (Index i = 0; i < n; ++i) a.y[i] = x[i] < a.y[i] ? x[i] : a.y[i];
                break;
        }
    }
    if (op_ == Op::average) {
        const float inv = 1.f / static_cast<float>(k);
        for (Index i = 0; i < n; ++i) a.y[i] *= inv;
    }
}

void ElementwiseMerge::backward(const BackwardArgs& a) const {
    const Index n = a.N * d_;
    const std::size_t k = a.x.size();
    for (std::size_t j = 0; j < k; ++j) {
        float* dx = a.dx[j];
        if (!dx) continue;
        switch (op_) {
            case Op::subtract: {
                const float sign = j == 0 ? 1.f : -1.f;
                for (Index i = 0; i < n; ++i) dx[i] = sign * a.dy[i];
                break;
            }
            case Op::average: {
                const float inv = 1.f / static_cast<float>(k);
                for (Index i = 0; i < n; ++i) dx[i] = a.dy[i] * inv;
                break;
            }
            case Op::multiply:
                // The product of the other inputs, not y / x_j, so that zeros are handled.
                for (Index i = 0; i < n; ++i) {
                    float p = a.dy[i];
                    for (std::size_t m = 0; m < k; ++m)
                        if (m != j) p *= a.x[m][i];
                    dx[i] = p;
                }
                break;
            case Op::maximum:
            case Op::minimum:
                // The gradient goes to the first input equal to the output.
                for (Index i = 0; i < n; ++i) {
                    std::size_t first = 0;
                    while (first < k && a.x[first][i] != a.y[i]) ++first;
                    dx[i] = first == j ? a.dy[i] : 0.f;
                }
                break;
        }
    }
}

// (D), (D) -> (1,)
Shape Dot::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    if (inputs.size() != 2) throw InvalidArgument("Dot '" + name_ + "' needs exactly 2 inputs");
    if (inputs[0].size() != 1 || inputs[1] != inputs[0])
        throw InvalidArgument("Dot '" + name_ + "' needs two inputs of shape (batch, d) with the same d, got " +
                              shape_str(inputs[0]) + " and " + shape_str(inputs[1]));
    d_ = inputs[0][0];
    return {1};
}

namespace {
constexpr double kDotEpsilon = 1e-12;  // Keras's l2_normalize epsilon
double norm_of(const float* x, Index d) {
    double s = 0.0;
    for (Index j = 0; j < d; ++j) s += double(x[j]) * x[j];
    return std::sqrt(std::max(s, kDotEpsilon));
}
}  // namespace

void Dot::forward(const ForwardArgs& a) const {
    for (Index n = 0; n < a.N; ++n) {
        const float* u = a.x[0] + n * d_;
        const float* v = a.x[1] + n * d_;
        double s = 0.0;
        for (Index j = 0; j < d_; ++j) s += double(u[j]) * v[j];
        if (normalize_) s /= norm_of(u, d_) * norm_of(v, d_);
        a.y[n] = static_cast<float>(s);
    }
}

// Without normalize: du = dy v, dv = dy u. With it, y = (u.v)/(|u||v|):
// du = dy (v / (|u||v|) - y u / |u|^2) (the clamp at 1e-12 makes it dy v / (|u||v|) below).
void Dot::backward(const BackwardArgs& a) const {
    for (Index n = 0; n < a.N; ++n) {
        const float* x[2] = {a.x[0] + n * d_, a.x[1] + n * d_};
        const double dy = a.dy[n];
        double nrm[2] = {1.0, 1.0}, sq[2] = {0.0, 0.0};
        if (normalize_)
            for (int k = 0; k < 2; ++k) {
                for (Index j = 0; j < d_; ++j) sq[k] += double(x[k][j]) * x[k][j];
                nrm[k] = std::sqrt(std::max(sq[k], kDotEpsilon));
            }
        const double y = a.y[n];
        for (int k = 0; k < 2; ++k) {
            float* dx = a.dx[k];
            if (!dx) continue;
            const float* self = x[k];
            const float* other = x[1 - k];
            const bool clamped = sq[k] < kDotEpsilon;
            for (Index j = 0; j < d_; ++j) {
                double g = double(other[j]) / (nrm[0] * nrm[1]);
                if (normalize_ && !clamped) g -= y * self[j] / (nrm[k] * nrm[k]);
                dx[n * d_ + j] = static_cast<float>(dy * g);
            }
        }
    }
}

}  // namespace maasfin
