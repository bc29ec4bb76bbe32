#include "maasfin/layers/pooling.hpp"

#include <algorithm>
#include <limits>

namespace maasfin {

namespace {
std::string pool_name(int rank, kernels::Pool kind, bool global) {
    return std::string(global ? "Global" : "") + (kind == kernels::Pool::max ? "MaxPooling" : "AveragePooling") +
           std::to_string(rank) + "D";
}
const char* spatial(int rank) { return rank == 1 ? "(steps, channels)" : "(height, width, channels)"; }
}  // namespace

Pooling::Pooling(int rank, kernels::Pool kind, Index ph, Index pw, Index sh, Index sw, std::string padding)
    : rank_(rank), pool_(kind), ph_(rank == 1 ? 1 : ph), pw_(pw), sh_(rank == 1 ? 1 : sh), sw_(sw),
      padding_(std::move(padding)) {
    if (rank != 1 && rank != 2) throw InvalidArgument("Pooling: rank must be 1 or 2");
    if (ph_ <= 0 || pw_ <= 0 || sh_ <= 0 || sw_ <= 0)
        throw InvalidArgument(pool_name(rank, kind, false) + ": pool_size and strides must be positive integers");
    if (padding_ != "valid" && padding_ != "same")
        throw InvalidArgument(pool_name(rank, kind, false) + ": padding must be 'valid' or 'same', got '" + padding_ +
                              "'");
}

std::string Pooling::kind() const { return pool_name(rank_, pool_, false); }

// 2-D: (H, W, C) -> (OH, OW, C); 1-D: (T, C) -> (OT, C)
Shape Pooling::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    const std::string who = kind() + " '" + name_ + "'";
    const Shape& in = inputs.empty() ? Shape{} : inputs[0];
    if (inputs.size() != 1 || static_cast<int>(in.size()) != rank_ + 1)
        throw InvalidArgument(who + " expects one input of shape " + spatial(rank_) + " per sample, got " +
                              (inputs.empty() ? std::string("none") : shape_str(in)));
    c_ = in.back();
    win_ = make_window(rank_ == 1 ? 1 : in[0], in[rank_ - 1], ph_, pw_, sh_, sw_, 1, 1, padding_,
                       who + " on input " + shape_str(in));
    return rank_ == 1 ? Shape{win_.OW, c_} : Shape{win_.OH, win_.OW, c_};
}

Index Pooling::saved_size(Index N) const { return kernels::pool_workspace_size(pool_, N, c_, win_); }

void Pooling::forward(const ForwardArgs& a) const { kernels::pool_fwd(pool_, a.x[0], a.y, a.saved, a.N, c_, win_); }

void Pooling::backward(const BackwardArgs& a) const {
    if (a.dx[0]) kernels::pool_bwd(pool_, a.x[0], a.saved, a.dy, a.dx[0], a.N, c_, win_);
}

GlobalPooling::GlobalPooling(int rank, kernels::Pool kind, bool keepdims)
    : rank_(rank), pool_(kind), keepdims_(keepdims) {
    if (rank != 1 && rank != 2) throw InvalidArgument("GlobalPooling: rank must be 1 or 2");
}

std::string GlobalPooling::kind() const { return pool_name(rank_, pool_, true); }

// A second input (steps,) is Keras's mask (GlobalAveragePooling1D only): masked steps are left
// out of the mean; a row with every step masked gives 0/0 = NaN, as in Keras.
Shape GlobalPooling::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    const Shape& in = inputs.empty() ? Shape{} : inputs[0];
    masked_ = inputs.size() == 2 && rank_ == 1 && pool_ == kernels::Pool::avg;
    if ((inputs.size() != 1 && !masked_) || static_cast<int>(in.size()) != rank_ + 1)
        throw InvalidArgument(kind() + " '" + name_ + "' expects one input of shape " + spatial(rank_) +
                              " per sample, got " + (inputs.empty() ? std::string("none") : shape_str(in)));
    if (masked_ && inputs[1] != Shape{in[0]})
        throw InvalidArgument(kind() + " '" + name_ + "': the mask must have shape (batch, " + std::to_string(in[0]) +
                              ") to match the input " + shape_str(in) + ", got " + shape_str(inputs[1]));
    c_ = in.back();
    positions_ = numel(in) / c_;
    if (!keepdims_) return {c_};
    Shape out(in.size(), 1);
    out.back() = c_;
    return out;
}

// x: N x P x C (P spatial positions) [, mask N x P] -> y: N x C
void GlobalPooling::forward(const ForwardArgs& a) const {
    const Index P = positions_, C = c_;
    if (masked_) {
        for (Index n = 0; n < a.N; ++n) {
            const float* x = a.x[0] + n * P * C;
            const float* m = a.x[1] + n * P;
            float* y = a.y + n * C;
            float count = 0.f;
            for (Index c = 0; c < C; ++c) y[c] = 0.f;
            for (Index p = 0; p < P; ++p) {
                if (m[p] == 0.f) continue;
                count += 1.f;
                for (Index c = 0; c < C; ++c) y[c] += x[p * C + c];
            }
            for (Index c = 0; c < C; ++c) y[c] /= count;
        }
        return;
    }
    for (Index n = 0; n < a.N; ++n) {
        const float* x = a.x[0] + n * P * C;
        float* y = a.y + n * C;
        for (Index c = 0; c < C; ++c) y[c] = x[c];
        for (Index p = 1; p < P; ++p)
            for (Index c = 0; c < C; ++c) {
                const float v = x[p * C + c];
                y[c] = pool_ == kernels::Pool::max ? (v > y[c] ? v : y[c]) : y[c] + v;
            }
        if (pool_ == kernels::Pool::avg)
            for (Index c = 0; c < C; ++c) y[c] /= static_cast<float>(P);
    }
}

// Max: the gradient goes to the first position holding the maximum (which forward wrote to y).
void GlobalPooling::backward(const BackwardArgs& a) const {
    if (masked_ && a.dx[1]) std::fill(a.dx[1], a.dx[1] + a.N * positions_, 0.f);  // a mask has no gradient
    float* dx = a.dx[0];
    if (!dx) return;
    const Index P = positions_, C = c_;
    if (masked_) {
        for (Index n = 0; n < a.N; ++n) {
            const float* m = a.x[1] + n * P;
            float count = 0.f;
            for (Index p = 0; p < P; ++p) count += m[p] != 0.f ? 1.f : 0.f;
            for (Index p = 0; p < P; ++p)
                for (Index c = 0; c < C; ++c) dx[(n * P + p) * C + c] = m[p] != 0.f ? a.dy[n * C + c] / count : 0.f;
        }
        return;
    }
    const float inv = 1.f / static_cast<float>(P);
    for (Index n = 0; n < a.N; ++n) {
        const float* x = a.x[0] + n * P * C;
        const float* y = a.y + n * C;
        const float* dy = a.dy + n * C;
        float* d = dx + n * P * C;
        if (pool_ == kernels::Pool::avg) {
            for (Index p = 0; p < P; ++p)
                for (Index c = 0; c < C; ++c) d[p * C + c] = dy[c] * inv;
            continue;
        }
        for (Index i = 0; i < P * C; ++i) d[i] = 0.f;
        for (Index c = 0; c < C; ++c)
            for (Index p = 0; p < P; ++p)
                if (x[p * C + c] == y[c]) {
                    d[p * C + c] = dy[c];
                    break;
                }
    }
}

}  // namespace maasfin
