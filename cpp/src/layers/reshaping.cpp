#include "maasfin/layers/reshaping.hpp"

#include <algorithm>
#include <cstring>

namespace maasfin {

namespace {
const Shape& one_input(const std::vector<Shape>& inputs, const std::string& who) {
    if (inputs.size() != 1) throw InvalidArgument(who + " expects exactly one input");
    return inputs[0];
}
void copy(const float* src, float* dst, Index n) {
    if (dst && src != dst) std::memcpy(dst, src, sizeof(float) * static_cast<std::size_t>(n));
}
std::string list(const std::vector<Index>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}
}  // namespace

Shape Flatten::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    size_ = numel(one_input(inputs, "Flatten '" + name_ + "'"));
    return {size_};
}
void Flatten::forward(const ForwardArgs& a) const { copy(a.x[0], a.y, a.N * size_); }
void Flatten::backward(const BackwardArgs& a) const { copy(a.dy, a.dx[0], a.N * size_); }

Reshape::Reshape(Shape target_shape) : target_(std::move(target_shape)) {
    if (target_.empty()) throw InvalidArgument("Reshape: target_shape must not be empty");
    if (std::count(target_.begin(), target_.end(), Index(-1)) > 1)
        throw InvalidArgument("Reshape: at most one entry of target_shape may be -1, got " + shape_str(target_));
    for (Index d : target_)
        if (d == 0 || d < -1)
            throw InvalidArgument("Reshape: target_shape entries must be positive or -1, got " + shape_str(target_));
}

Shape Reshape::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    const Shape& in = one_input(inputs, "Reshape '" + name_ + "'");
    size_ = numel(in);
    Shape out = target_;
    Index known = 1;
    for (Index d : out)
        if (d > 0) known *= d;
    for (Index& d : out)
        if (d == -1) d = known > 0 && size_ % known == 0 ? size_ / known : 0;
    if (numel(out) != size_ || std::find(out.begin(), out.end(), Index(0)) != out.end())
        throw InvalidArgument("Reshape '" + name_ + "': cannot reshape input of shape " + shape_str(in) + " (" +
                              std::to_string(size_) + " values) to target_shape " + shape_str(target_));
    return out;
}
void Reshape::forward(const ForwardArgs& a) const { copy(a.x[0], a.y, a.N * size_); }
void Reshape::backward(const BackwardArgs& a) const { copy(a.dy, a.dx[0], a.N * size_); }

Permute::Permute(std::vector<Index> dims) : dims_(std::move(dims)) {
    std::vector<Index> sorted = dims_;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < sorted.size(); ++i)
        if (sorted[i] != static_cast<Index>(i + 1))
            throw InvalidArgument("Permute: dims must be a permutation of 1.." + std::to_string(dims_.size()) +
                                  ", got " + list(dims_));
    if (dims_.empty()) throw InvalidArgument("Permute: dims must not be empty");
}

Shape Permute::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    const Shape& in = one_input(inputs, "Permute '" + name_ + "'");
    if (in.size() != dims_.size())
        throw InvalidArgument("Permute '" + name_ + "': dims " + list(dims_) + " need an input of rank " +
                              std::to_string(dims_.size()) + " per sample, got shape " + shape_str(in));
    const std::size_t r = in.size();
    Shape out(r);
    std::vector<Index> in_stride(r, 1), out_stride(r);
    for (std::size_t i = r - 1; i > 0; --i) in_stride[i - 1] = in_stride[i] * in[i];
    for (std::size_t i = 0; i < r; ++i) out[i] = in[static_cast<std::size_t>(dims_[i] - 1)];
    // Walk the output in order with an odometer, tracking the matching input offset.
    gather_.assign(static_cast<std::size_t>(numel(in)), 0);
    std::vector<Index> idx(r, 0);
    Index off = 0;
    for (Index k = 0; k < numel(out); ++k) {
        gather_[static_cast<std::size_t>(k)] = off;
        for (std::size_t i = r; i-- > 0;) {
            const Index s = in_stride[static_cast<std::size_t>(dims_[i] - 1)];
            if (++idx[i] < out[i]) {
                off += s;
                break;
            }
            off -= s * (out[i] - 1);
            idx[i] = 0;
        }
    }
    return out;
}

void Permute::forward(const ForwardArgs& a) const {
    const Index S = static_cast<Index>(gather_.size());
    for (Index n = 0; n < a.N; ++n)
        for (Index k = 0; k < S; ++k) a.y[n * S + k] = a.x[0][n * S + gather_[static_cast<std::size_t>(k)]];
}

void Permute::backward(const BackwardArgs& a) const {
    if (!a.dx[0]) return;
    const Index S = static_cast<Index>(gather_.size());
    for (Index n = 0; n < a.N; ++n)
        for (Index k = 0; k < S; ++k) a.dx[0][n * S + gather_[static_cast<std::size_t>(k)]] = a.dy[n * S + k];
}

RepeatVector::RepeatVector(Index n) : n_(n) {
    if (n <= 0) throw InvalidArgument("RepeatVector: n must be a positive integer, got " + std::to_string(n));
}

Shape RepeatVector::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    const Shape& in = one_input(inputs, "RepeatVector '" + name_ + "'");
    if (in.size() != 1)
        throw InvalidArgument("RepeatVector '" + name_ + "' expects an input of shape (features,) per sample, got " +
                              shape_str(in));
    d_ = in[0];
    return {n_, d_};
}

// x: N x D -> y: N x n x D
void RepeatVector::forward(const ForwardArgs& a) const {
    for (Index s = 0; s < a.N; ++s)
        for (Index r = 0; r < n_; ++r) copy(a.x[0] + s * d_, a.y + (s * n_ + r) * d_, d_);
}

void RepeatVector::backward(const BackwardArgs& a) const {
    if (!a.dx[0]) return;
    for (Index s = 0; s < a.N; ++s) {
        float* dx = a.dx[0] + s * d_;
        std::fill(dx, dx + d_, 0.f);
        for (Index r = 0; r < n_; ++r)
            for (Index j = 0; j < d_; ++j) dx[j] += a.dy[(s * n_ + r) * d_ + j];
    }
}

ZeroPadding::ZeroPadding(int rank, Index top, Index bottom, Index left, Index right)
    : rank_(rank), top_(rank == 1 ? 0 : top), bottom_(rank == 1 ? 0 : bottom), left_(left), right_(right) {
    if (rank != 1 && rank != 2) throw InvalidArgument("ZeroPadding: rank must be 1 or 2");
    if (top_ < 0 || bottom_ < 0 || left_ < 0 || right_ < 0)
        throw InvalidArgument(kind() + ": padding must be non-negative integers");
}

Shape ZeroPadding::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    const Shape& in = one_input(inputs, kind() + " '" + name_ + "'");
    if (static_cast<int>(in.size()) != rank_ + 1)
        throw InvalidArgument(kind() + " '" + name_ + "' expects an input of shape " +
                              (rank_ == 1 ? "(steps, channels)" : "(height, width, channels)") + " per sample, got " +
                              shape_str(in));
    H_ = rank_ == 1 ? 1 : in[0];
    W_ = in[rank_ - 1];
    C_ = in.back();
    const Index OW = left_ + W_ + right_;
    return rank_ == 1 ? Shape{OW, C_} : Shape{top_ + H_ + bottom_, OW, C_};
}

// x: N x H x W x C -> y: N x (top+H+bottom) x (left+W+right) x C
void ZeroPadding::forward(const ForwardArgs& a) const {
    const Index OH = top_ + H_ + bottom_, OW = left_ + W_ + right_;
    std::fill(a.y, a.y + a.N * OH * OW * C_, 0.f);
    for (Index n = 0; n < a.N; ++n)
        for (Index h = 0; h < H_; ++h)
            copy(a.x[0] + (n * H_ + h) * W_ * C_, a.y + ((n * OH + h + top_) * OW + left_) * C_, W_ * C_);
}

void ZeroPadding::backward(const BackwardArgs& a) const {
    if (!a.dx[0]) return;
    const Index OH = top_ + H_ + bottom_, OW = left_ + W_ + right_;
    for (Index n = 0; n < a.N; ++n)
        for (Index h = 0; h < H_; ++h)
            copy(a.dy + ((n * OH + h + top_) * OW + left_) * C_, a.dx[0] + (n * H_ + h) * W_ * C_, W_ * C_);
}

}  // namespace maasfin
