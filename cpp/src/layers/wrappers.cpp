#include "maasfin/layers/wrappers.hpp"

#include <algorithm>

#include "maasfin/layers/recurrent.hpp"

namespace maasfin {

TimeDistributed::TimeDistributed(std::shared_ptr<Layer> inner) : inner_(std::move(inner)) {
    if (!inner_) throw InvalidArgument("TimeDistributed: no layer given");
}

// (T, d...) -> (T, inner(d...))
Shape TimeDistributed::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    if (inputs.size() != 1 || inputs[0].size() < 2)
        throw InvalidArgument("TimeDistributed '" + name_ +
                              "' expects one input of shape (timesteps, ...) per sample, got " +
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

Bidirectional::Bidirectional(std::shared_ptr<Layer> forward_layer, std::shared_ptr<Layer> backward_layer, Merge merge)
    : f_(std::move(forward_layer)), b_(std::move(backward_layer)), merge_(merge) {
    if (!f_ || !b_) throw InvalidArgument("Bidirectional: a forward and a backward layer are required");
}

template <class P>
std::vector<P> Bidirectional::inner_inputs(const std::vector<P>& all, int dir) const {
    std::vector<P> out(all.begin(), all.begin() + lead_);
    if (static_cast<Index>(all.size()) > lead_)
        for (Index k = 0; k < S_; ++k) out.push_back(all[static_cast<std::size_t>(lead_ + dir * S_ + k)]);
    return out;
}

// (T, D) -> (T, u') with sequences, else (u',); u' = 2u for concat, u otherwise; with return_state
// the flat row (numel(merged) + 2 S u,).
Shape Bidirectional::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    const auto* fr = dynamic_cast<const Recurrent*>(f_.get());
    const Index S = fr ? fr->state_count() : 0;
    lead_ = fr && fr->reads_mask() ? 2 : 1;
    const Index n = static_cast<Index>(inputs.size());
    if (n != lead_ && !(S > 0 && n == lead_ + 2 * S))
        throw InvalidArgument("Bidirectional '" + name_ + "': expected the sequence" +
                              std::string(lead_ == 2 ? ", its mask" : "") + " and optionally " + std::to_string(2 * S) +
                              " initial states (the forward layer's, then the backward layer's), got " +
                              std::to_string(n) + " inputs");
    S_ = n > lead_ ? S : 0;
    const std::size_t first = params.specs().size();
    const Shape fo = f_->build(inner_inputs(inputs, 0), params);
    params.prefix_names(first, "forward_" + f_->name() + "/");
    const std::size_t second = params.specs().size();
    const Shape bo = b_->build(inner_inputs(inputs, 1), params);
    params.prefix_names(second, "backward_" + b_->name() + "/");
    out_states_ = fr && fr->returns_state() ? S : 0;
    Shape core = fo;  // the inner output without its states
    if (out_states_ > 0) {
        const Index u = fr->units(), rest = fo[0] - out_states_ * u;
        core = rest == u ? Shape{u} : Shape{rest / u, u};
    }
    if (fo != bo || core.empty() || core.size() > 2)
        throw InvalidArgument("Bidirectional '" + name_ + "': the forward and backward layers give shapes " +
                              shape_str(fo) + " and " + shape_str(bo) +
                              "; they must be equal (timesteps, units) or (units,)");
    seq_ = core.size() == 2;
    in_numel_ = numel(inputs[0]);
    T_ = seq_ ? core[0] : 1;
    u_ = core.back();
    inner_row_ = numel(fo);
    Shape out = core;
    if (merge_ == Merge::concat) out.back() = 2 * u_;
    merged_ = numel(out);
    if (out_states_ > 0) return Shape{merged_ + 2 * out_states_ * u_};
    return out;
}

Index Bidirectional::saved_size(Index N) const { return f_->saved_size(N) + b_->saved_size(N) + 2 * N * inner_row_; }

// saved: [forward layer's, backward layer's, Yf (N x inner row), Yb (N x inner row, processing order)]
void Bidirectional::forward(const ForwardArgs& a) const {
    const Index N = a.N, T = T_, u = u_, n_out = N * inner_row_;
    thread_local FloatVec scratch;
    float* Yf;
    ForwardArgs fa = a, ba = a;
    fa.x = inner_inputs(a.x, 0);
    ba.x = inner_inputs(a.x, 1);
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
    const Index Y = out_states_ > 0 ? merged_ + 2 * out_states_ * u : merged_;
    for (Index n = 0; n < N; ++n) {
        for (Index t = 0; t < T; ++t) {
            const float* f = Yf + f_row(n, t);
            const float* b = Yb + b_row(n, t);
            float* y = a.y + n * Y + t * width;
            switch (merge_) {
                case Merge::concat:
                    std::copy(f, f + u, y);
                    std::copy(b, b + u, y + u);
                    break;
                case Merge::sum:
                    for (Index j = 0; j < u; ++j) y[j] = f[j] + b[j];
                    break;
                case Merge::mul:
                    for (Index j = 0; j < u; ++j) y[j] = f[j] * b[j];
                    break;
                case Merge::ave:
                    for (Index j = 0; j < u; ++j) y[j] = 0.5f * (f[j] + b[j]);
                    break;
            }
        }
        if (out_states_ > 0) {  // the forward layer's states, then the backward layer's
            const Index part = out_states_ * u, from = inner_row_ - part;
            std::copy(Yf + n * inner_row_ + from, Yf + (n + 1) * inner_row_, a.y + n * Y + merged_);
            std::copy(Yb + n * inner_row_ + from, Yb + (n + 1) * inner_row_, a.y + n * Y + merged_ + part);
        }
    }
}

void Bidirectional::backward(const BackwardArgs& a) const {
    const Index N = a.N, T = T_, u = u_, n_out = N * inner_row_;
    const float* f_saved = a.saved;
    const float* b_saved = a.saved + f_->saved_size(N);
    const float* Yf = b_saved + b_->saved_size(N);
    const float* Yb = Yf + n_out;
    thread_local FloatVec dYf, dYb, dx_b;
    dYf.resize(static_cast<std::size_t>(n_out));
    dYb.resize(static_cast<std::size_t>(n_out));
    const Index width = merge_ == Merge::concat ? 2 * u : u;
    const Index Y = out_states_ > 0 ? merged_ + 2 * out_states_ * u : merged_;
    for (Index n = 0; n < N; ++n) {
        for (Index t = 0; t < T; ++t) {
            const float* dy = a.dy + n * Y + t * width;
            const Index fr = f_row(n, t), br = b_row(n, t);
            for (Index j = 0; j < u; ++j) {
                switch (merge_) {
                    case Merge::concat:
                        dYf[fr + j] = dy[j];
                        dYb[br + j] = dy[u + j];
                        break;
                    case Merge::sum:
                        dYf[fr + j] = dy[j];
                        dYb[br + j] = dy[j];
                        break;
                    case Merge::mul:
                        dYf[fr + j] = dy[j] * Yb[br + j];
                        dYb[br + j] = dy[j] * Yf[fr + j];
                        break;
                    case Merge::ave:
                        dYf[fr + j] = 0.5f * dy[j];
                        dYb[br + j] = 0.5f * dy[j];
                        break;
                }
            }
        }
        if (out_states_ > 0) {
            const Index part = out_states_ * u, from = inner_row_ - part;
            std::copy(a.dy + n * Y + merged_, a.dy + n * Y + merged_ + part, dYf.data() + n * inner_row_ + from);
            std::copy(a.dy + n * Y + merged_ + part, a.dy + n * Y + merged_ + 2 * part,
                      dYb.data() + n * inner_row_ + from);
        }
    }
    BackwardArgs fa = a, ba = a;
    fa.x = inner_inputs(a.x, 0);
    ba.x = inner_inputs(a.x, 1);
    fa.dx = inner_inputs(a.dx, 0);
    ba.dx = inner_inputs(a.dx, 1);
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
    if (dx) {  // a mask gets no gradient; each direction writes zeros there
        dx_b.resize(static_cast<std::size_t>(N * in_numel_));
        ba.dx[0] = dx_b.data();
    }
    b_->backward(ba);
    if (dx)
        for (Index i = 0; i < N * in_numel_; ++i) dx[i] += dx_b[i];
}

}  // namespace maasfin
