#include "maasfin/layers/wrappers.hpp"

#include <algorithm>

namespace maasfin {

TimeDistributed::TimeDistributed(std::shared_ptr<Layer> inner) : inner_(std::move(inner)) {
    if (!inner_) throw InvalidArgument("TimeDistributed: no layer given");
}

// (T, d...) -> (T, inner(d...))
Shape TimeDistributed::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    if (inputs.size() != 1 || inputs[0].size() < 2)
        throw InvalidArgument("TimeDistributed '" + name_ + "' expects one input of shape (timesteps, ...) per sample, got " +
                              (inputs.empty() ? std::string("none") : shape_str(inputs[0])));
    T_ = inputs[0][0];
    const Shape step(inputs[0].begin() + 1, inputs[0].end());
    Shape out{T_};
    for (Index d : inner_->build({step}, params)) out.push_back(d);
    return out;
}

void TimeDistributed::forward(const ForwardArgs& a) const {
    ForwardArgs b = a;
    b.N = a.N * T_;
    inner_->forward(b);
}

void TimeDistributed::backward(const BackwardArgs& a) const {
    BackwardArgs b = a;
    b.N = a.N * T_;
    inner_->backward(b);
}

std::string TimeDistributed::config() const {
    return "{\"layer\": {\"class_name\": \"" + inner_->kind() + "\", \"config\": " + inner_->config() + "}}";
}

Bidirectional::Bidirectional(std::shared_ptr<Layer> forward_layer, std::shared_ptr<Layer> backward_layer, Merge merge)
    : f_(std::move(forward_layer)), b_(std::move(backward_layer)), merge_(merge) {
    if (!f_ || !b_) throw InvalidArgument("Bidirectional: a forward and a backward layer are required");
}

// (T, D) -> (T, u') with sequences, else (u',); u' = 2u for concat, u otherwise
Shape Bidirectional::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    const std::size_t first = params.specs().size();
    const Shape fo = f_->build(inputs, params);
    params.prefix_names(first, "forward_" + f_->name() + "/");
    const std::size_t second = params.specs().size();
    const Shape bo = b_->build(inputs, params);
    params.prefix_names(second, "backward_" + b_->name() + "/");
    if (fo != bo || fo.empty() || fo.size() > 2)
        throw InvalidArgument("Bidirectional '" + name_ + "': the forward and backward layers give shapes " +
                              shape_str(fo) + " and " + shape_str(bo) + "; they must be equal (timesteps, units) or (units,)");
    seq_ = fo.size() == 2;
    in_numel_ = numel(inputs[0]);
    T_ = seq_ ? fo[0] : 1;
    u_ = fo.back();
    Shape out = fo;
    if (merge_ == Merge::concat) out.back() = 2 * u_;
    return out;
}

Index Bidirectional::saved_size(Index N) const {
    return f_->saved_size(N) + b_->saved_size(N) + 2 * N * T_ * u_;
}

// saved: [forward layer's, backward layer's, Yf (N*T*u), Yb (N*T*u, processing order)]
void Bidirectional::forward(const ForwardArgs& a) const {
    const Index N = a.N, T = T_, u = u_, n_out = N * T * u;
    thread_local FloatVec scratch;
    float* Yf;
    ForwardArgs fa = a, ba = a;
    if (a.saved) {
        fa.saved = a.saved;
        ba.saved = a.saved + f_->saved_size(N);
        Yf = ba.saved + b_->saved_size(N);
    } else {
        scratch.resize(static_cast<std::size_t>(2 * n_out));
        Yf = scratch.data();
    }
    float* Yb = Yf + n_out;
    fa.y = Yf;
    ba.y = Yb;
    ba.seed = a.seed ^ 0x9e3779b97f4a7c15ull;
    f_->forward(fa);
    b_->forward(ba);
    const Index width = merge_ == Merge::concat ? 2 * u : u;
    for (Index n = 0; n < N; ++n)
        for (Index t = 0; t < T; ++t) {
            const float* f = Yf + (n * T + t) * u;
            const float* b = Yb + b_row(n, t) * u;
            float* y = a.y + (n * T + t) * width;
            switch (merge_) {
                case Merge::concat:
                    std::copy(f, f + u, y);
                    std::copy(b, b + u, y + u);
                    break;
                case Merge::sum: for (Index j = 0; j < u; ++j) y[j] = f[j] + b[j]; break;
                case Merge::mul: for (Index j = 0; j < u; ++j) y[j] = f[j] * b[j]; break;
                case Merge::ave: for (Index j = 0; j < u; ++j) y[j] = 0.5f * (f[j] + b[j]); break;
            }
        }
}

void Bidirectional::backward(const BackwardArgs& a) const {
    const Index N = a.N, T = T_, u = u_, n_out = N * T * u;
    const float* f_saved = a.saved;
    const float* b_saved = a.saved + f_->saved_size(N);
    const float* Yf = b_saved + b_->saved_size(N);
    const float* Yb = Yf + n_out;
    thread_local FloatVec dYf, dYb, dx_b;
    dYf.resize(static_cast<std::size_t>(n_out));
    dYb.resize(static_cast<std::size_t>(n_out));
    const Index width = merge_ == Merge::concat ? 2 * u : u;
    for (Index n = 0; n < N; ++n)
        for (Index t = 0; t < T; ++t) {
            const float* dy = a.dy + (n * T + t) * width;
            const Index fr = (n * T + t) * u, br = b_row(n, t) * u;
            for (Index j = 0; j < u; ++j) {
                switch (merge_) {
                    case Merge::concat: dYf[fr + j] = dy[j]; dYb[br + j] = dy[u + j]; break;
                    case Merge::sum: dYf[fr + j] = dy[j]; dYb[br + j] = dy[j]; break;
                    case Merge::mul: dYf[fr + j] = dy[j] * Yb[br + j]; dYb[br + j] = dy[j] * Yf[fr + j]; break;
                    case Merge::ave: dYf[fr + j] = 0.5f * dy[j]; dYb[br + j] = 0.5f * dy[j]; break;
                }
            }
        }
    BackwardArgs fa = a, ba = a;
    fa.saved = f_saved;
    fa.y = Yf;
    fa.dy = dYf.data();
    ba.saved = b_saved;
    ba.y = Yb;
    ba.dy = dYb.data();
    ba.seed = a.seed ^ 0x9e3779b97f4a7c15ull;
    // dL/dx is the sum of both directions' input gradients.
    float* dx = a.dx[0];
    f_->backward(fa);
    if (dx) {  // other inputs (a mask) get no gradient; each direction writes zeros there
        dx_b.resize(static_cast<std::size_t>(N * in_numel_));
        ba.dx[0] = dx_b.data();
    }
    b_->backward(ba);
    if (dx)
        for (Index i = 0; i < N * in_numel_; ++i) dx[i] += dx_b[i];
}

std::string Bidirectional::config() const {
    const char* m = merge_ == Merge::concat ? "concat" : merge_ == Merge::sum ? "sum" : merge_ == Merge::mul ? "mul" : "ave";
    return "{\"layer\": {\"class_name\": \"" + f_->kind() + "\", \"config\": " + f_->config() +
           "}, \"merge_mode\": \"" + m + "\"}";
}

}  // namespace maasfin
