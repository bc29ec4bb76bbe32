// LSTM over a whole sequence as oneDNN's vanilla_lstm forward/backward primitives: one call runs
// every time step with the recurrent GEMMs and the gate arithmetic fused (JIT), instead of one
// matmul call plus elementwise passes per step.
// Shapes: x N x T x D (oneDNN's `ntc`), y N x T x u or N x u, kernel D x 4u, recurrent u x 4u, bias 4u.
//
// Layout: oneDNN's LSTM gate order is i, f, c~, o, as Keras's, and a Keras kernel (D, 4u) with
// column g*u + o is exactly oneDNN's plain `ldigo` (l = d = 1), the bias (4u,) `ldgo`; so forward
// reads the Keras buffers in place and backward writes the kernel gradients straight into the
// gradient arena. Only backward's weights need another layout (`ldgoi`, transposed): they are
// reordered into per-thread buffers on each call, 4u(D+u) floats (69k for LSTM(128) on 8
// features) against 2*T*N*4u*(D+u) multiply-adds; training changes the weights every step, so a
// cached copy would be rebuilt on every call anyway. Where an implementation refuses the plain
// layouts, the same reorders run for forward and for the gradients (back into the Keras layout).
// The backward primitive accumulates into diff weights, so they are zeroed first.
//
// saved (floats, sections 16-aligned): dst_layer T*N*u (ntc) | dst_iter N*u | dst_iter_c N*u | workspace.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "../backends.hpp"
#include "context.hpp"

namespace maasfin::kernels::onednn {

namespace {
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using md = dnnl::memory::desc;

struct Descs {
    md src_layer, zero, w_layer_user, w_iter_user, w_layer_any, w_iter_any, bias, dst_layer, dst_iter;
};

Descs descs(const LstmSpec& s) {
    Descs d;
    d.src_layer = md({s.T, s.N, s.D}, dt::f32, tag::ntc);
    d.w_layer_user = md({1, 1, s.D, 4, s.u}, dt::f32, tag::ldigo);
    d.w_iter_user = md({1, 1, s.u, 4, s.u}, dt::f32, tag::ldigo);
    d.w_layer_any = md({1, 1, s.D, 4, s.u}, dt::f32, tag::any);
    d.w_iter_any = md({1, 1, s.u, 4, s.u}, dt::f32, tag::any);
    d.bias = md({1, 1, 4, s.u}, dt::f32, tag::ldgo);

    d.dst_layer = md({s.T, s.N, s.u}, dt::f32, tag::ntc);
    d.dst_iter = md({1, 1, s.N, s.u}, dt::f32, tag::ldnc);
    return d;
}

dnnl::rnn_direction direction(const LstmSpec& s) {
    return s.reverse ? dnnl::rnn_direction::unidirectional_right2left : dnnl::rnn_direction::unidirectional_left2right;
}

std::string key(const char* op, const LstmSpec& s) {
    return std::string(op) + ":" + std::to_string(s.N) + ":" + std::to_string(s.T) + ":" + std::to_string(s.D) + ":" +
           std::to_string(s.u) + ":" + std::to_string(s.reverse);
}

// plain: the weights as the Keras buffers are (no reorder); else the layout the implementation picks.
dnnl::lstm_forward::primitive_desc fwd_pd(const LstmSpec& s, bool training, bool plain) {
    const Descs d = descs(s);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return dnnl::lstm_forward::primitive_desc(
        engine(), training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, direction(s),
        d.src_layer, d.zero, d.zero, plain ? d.w_layer_user : d.w_layer_any, plain ? d.w_iter_user : d.w_iter_any,
        d.bias, d.dst_layer, d.dst_iter, d.dst_iter, attr);
}

// The Keras buffers in place when the implementation takes them, else its own layout.
dnnl::lstm_forward::primitive_desc fwd_pd(const LstmSpec& s, bool training) {
    try {
        return fwd_pd(s, training, true);
    } catch (const dnnl::error&) {
        return fwd_pd(s, training, false);
    }
}

// more: [weights_layer, weights_iter, workspace]
Cached forward(const LstmSpec& s, bool training) {
    return get_primitive(key(training ? "lstm_fwd_t" : "lstm_fwd_i", s), [&] {
        const auto pd = fwd_pd(s, training);
        return Cached{dnnl::lstm_forward(pd), pd.scratchpad_desc(), {},
                      {pd.weights_layer_desc(), pd.weights_iter_desc(), pd.workspace_desc()}};
    });
}

// more: [weights_layer, weights_iter, diff_weights_layer, diff_weights_iter]
Cached backward(const LstmSpec& s) {
    return get_primitive(key("lstm_bwd", s), [&] {
        const Descs d = descs(s);
        const auto hint = fwd_pd(s, true);
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        // Weights: the layout backward picks (transposed, ldgoi); diff weights: plain Keras if accepted.
        auto make = [&](bool plain) {
            return dnnl::lstm_backward::primitive_desc(
                engine(), dnnl::prop_kind::backward, direction(s), d.src_layer, d.zero, d.zero, d.w_layer_any,
                d.w_iter_any, d.bias, d.dst_layer, d.dst_iter, d.dst_iter, d.src_layer, d.zero, d.zero,
                plain ? d.w_layer_user : d.w_layer_any, plain ? d.w_iter_user : d.w_iter_any, d.bias, d.dst_layer,
                d.dst_iter, d.dst_iter, hint, attr);
        };
        dnnl::lstm_backward::primitive_desc pd;
        try {
            pd = make(true);
        } catch (const dnnl::error&) {
            pd = make(false);
        }
        return Cached{dnnl::lstm_backward(pd), pd.scratchpad_desc(), {},
                      {pd.weights_layer_desc(), pd.weights_iter_desc(), pd.diff_weights_layer_desc(),
                       pd.diff_weights_iter_desc()}};
    });
}

Index round16(Index floats) { return (floats + 15) / 16 * 16; }

struct Sections {
    Index dst_layer = 0, dst_iter = 0, dst_iter_c = 0, workspace = 0, total = 0;
};
Sections sections(const LstmSpec& s, const md& workspace) {
    Sections o;
    o.dst_iter = round16(s.T * s.N * s.u);
    o.dst_iter_c = o.dst_iter + round16(s.N * s.u);
    o.workspace = o.dst_iter_c + round16(s.N * s.u);
    o.total = o.workspace + round16(static_cast<Index>((workspace.get_size() + 3) / 4));
    return o;
}

// A per-thread buffer of at least `bytes`; slot picks one of several live at once.
float* thread_buffer(int slot, std::size_t bytes) {
    thread_local std::vector<float> buffers[7];
    auto& b = buffers[slot];
    if (b.size() * sizeof(float) < bytes) b.resize(bytes / sizeof(float) + 16);
    return b.data();
}

// A per-thread buffer of zeros of at least `floats` (never written by the primitives: inputs only).
const float* zeros(std::size_t floats) {
    thread_local std::vector<float> z;
    if (z.size() < floats) z.assign(floats, 0.f);
    return z.data();
}

// The user's weights in `want`: the buffer itself when the layouts agree, else reordered into a
// per-thread buffer.
dnnl::memory weights_in(const md& user, const md& want, const float* data, int slot) {
    dnnl::memory user_mem(user, engine(), const_cast<float*>(data));
    if (want == user) return user_mem;
    dnnl::memory m(want, engine(), thread_buffer(slot, want.get_size()));
    dnnl::reorder(user_mem, m).execute(stream(), user_mem, m);
    stream().wait();
    return m;
}

// Copies N x T x u rows between processing order and time order (t = T-1-s), both ntc.
void reverse_time(const float* src, float* dst, Index N, Index T, Index u) {
    const std::size_t row = sizeof(float) * static_cast<std::size_t>(u);
    for (Index n = 0; n < N; ++n)
        for (Index t = 0; t < T; ++t) std::memcpy(dst + (n * T + t) * u, src + (n * T + (T - 1 - t)) * u, row);
}
}  // namespace

Index lstm_saved_size(const LstmSpec& s) { return sections(s, forward(s, true).more[2]).total; }

void lstm_fwd(const LstmSpec& s, const float* x, const float* kernel, const float* recurrent, const float* bias,
              float* y, float* saved) {
    const bool training = saved != nullptr;
    const Cached cached = forward(s, training);
    const Descs d = descs(s);
    auto& eng = engine();
    const Sections o = sections(s, cached.more[2]);
    const std::size_t seq_bytes = sizeof(float) * static_cast<std::size_t>(s.T * s.N * s.u);
    const std::size_t state_bytes = sizeof(float) * static_cast<std::size_t>(s.N * s.u);
    // dst_layer goes straight into y when y holds it in time order.
    float* dst_layer = training ? saved + o.dst_layer
                       : (s.sequences && !s.reverse) ? y
                                                     : thread_buffer(2, seq_bytes);
    float* dst_iter = training ? saved + o.dst_iter : s.sequences ? thread_buffer(3, state_bytes) : y;
    float* dst_iter_c = training ? saved + o.dst_iter_c : thread_buffer(4, state_bytes);
    if (!bias) bias = zeros(static_cast<std::size_t>(4 * s.u));
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC_LAYER, dnnl::memory(d.src_layer, eng, const_cast<float*>(x))},
        {DNNL_ARG_WEIGHTS_LAYER, weights_in(d.w_layer_user, cached.more[0], kernel, 0)},
        {DNNL_ARG_WEIGHTS_ITER, weights_in(d.w_iter_user, cached.more[1], recurrent, 1)},
        {DNNL_ARG_BIAS, dnnl::memory(d.bias, eng, const_cast<float*>(bias))},
        {DNNL_ARG_DST_LAYER, dnnl::memory(d.dst_layer, eng, dst_layer)},
        {DNNL_ARG_DST_ITER, dnnl::memory(d.dst_iter, eng, dst_iter)},
        {DNNL_ARG_DST_ITER_C, dnnl::memory(d.dst_iter, eng, dst_iter_c)}};
    if (training) args.emplace(DNNL_ARG_WORKSPACE, dnnl::memory(cached.more[2], eng, saved + o.workspace));
    execute(cached, args);
    if (s.sequences) {
        if (s.reverse) reverse_time(dst_layer, y, s.N, s.T, s.u);
        else if (dst_layer != y) std::memcpy(y, dst_layer, seq_bytes);
    } else if (dst_iter != y) {
        std::memcpy(y, dst_iter, state_bytes);
    }
}

void lstm_bwd(const LstmSpec& s, const float* x, const float* kernel, const float* recurrent, const float* bias,
              const float* saved, const float* dy, float* dx, float* d_kernel, float* d_recurrent, float* d_bias) {
    const Cached fwd = forward(s, true);
    const Cached cached = backward(s);
    const Descs d = descs(s);
    auto& eng = engine();
    const Sections o = sections(s, fwd.more[2]);
    const std::size_t seq_floats = static_cast<std::size_t>(s.T * s.N * s.u);
    // dL/d(outputs in time order): the sequence for return_sequences, else only the final state.
    const std::size_t gu = static_cast<std::size_t>(4 * s.u);
    const float* zero = zeros(std::max(seq_floats, gu));  // one call: a later, larger one would move it
    const float* diff_dst_layer = zero;
    const float* diff_dst_iter = zero;
    if (s.sequences && s.reverse) {
        float* r = thread_buffer(2, seq_floats * sizeof(float));
        reverse_time(dy, r, s.N, s.T, s.u);
        diff_dst_layer = r;
    } else if (s.sequences) {
        diff_dst_layer = dy;
    } else {
        diff_dst_iter = dy;
    }
    // Gradients accumulate into diff weights: zero them (in the Keras buffer or a layout buffer).
    auto diff_weights = [&](const md& user, const md& want, float* data, std::size_t floats, int slot) {
        if (want == user) {
            std::fill(data, data + floats, 0.f);
            return dnnl::memory(user, eng, data);
        }
        float* b = thread_buffer(slot, want.get_size());
        std::memset(b, 0, want.get_size());
        return dnnl::memory(want, eng, b);
    };
    dnnl::memory dwl = diff_weights(d.w_layer_user, cached.more[2], d_kernel, static_cast<std::size_t>(s.D) * gu, 3);
    dnnl::memory dwi = diff_weights(d.w_iter_user, cached.more[3], d_recurrent, static_cast<std::size_t>(s.u) * gu, 4);
    float* db = d_bias ? d_bias : thread_buffer(5, gu * sizeof(float));
    std::fill(db, db + gu, 0.f);
    float* diff_src = dx ? dx : thread_buffer(6, sizeof(float) * static_cast<std::size_t>(s.N * s.T * s.D));
    if (!bias) bias = zero;
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC_LAYER, dnnl::memory(d.src_layer, eng, const_cast<float*>(x))},
        {DNNL_ARG_WEIGHTS_LAYER, weights_in(d.w_layer_user, cached.more[0], kernel, 0)},
        {DNNL_ARG_WEIGHTS_ITER, weights_in(d.w_iter_user, cached.more[1], recurrent, 1)},
        {DNNL_ARG_BIAS, dnnl::memory(d.bias, eng, const_cast<float*>(bias))},
        {DNNL_ARG_DST_LAYER, dnnl::memory(d.dst_layer, eng, const_cast<float*>(saved + o.dst_layer))},
        {DNNL_ARG_DST_ITER, dnnl::memory(d.dst_iter, eng, const_cast<float*>(saved + o.dst_iter))},
        {DNNL_ARG_DST_ITER_C, dnnl::memory(d.dst_iter, eng, const_cast<float*>(saved + o.dst_iter_c))},
        {DNNL_ARG_WORKSPACE, dnnl::memory(fwd.more[2], eng, const_cast<float*>(saved + o.workspace))},
        {DNNL_ARG_DIFF_DST_LAYER, dnnl::memory(d.dst_layer, eng, const_cast<float*>(diff_dst_layer))},
        {DNNL_ARG_DIFF_DST_ITER, dnnl::memory(d.dst_iter, eng, const_cast<float*>(diff_dst_iter))},
        {DNNL_ARG_DIFF_DST_ITER_C, dnnl::memory(d.dst_iter, eng, const_cast<float*>(zero))},
        {DNNL_ARG_DIFF_SRC_LAYER, dnnl::memory(d.src_layer, eng, diff_src)},
        {DNNL_ARG_DIFF_WEIGHTS_LAYER, dwl},
        {DNNL_ARG_DIFF_WEIGHTS_ITER, dwi},
        {DNNL_ARG_DIFF_BIAS, dnnl::memory(d.bias, eng, db)}};
    execute(cached, args);
    auto back = [&](const dnnl::memory& m, const md& user, float* data) {
        if (m.get_desc() == user) return;
        dnnl::memory u(user, eng, data);
        dnnl::reorder(m, u).execute(stream(), const_cast<dnnl::memory&>(m), u);
        stream().wait();
    };
    back(dwl, d.w_layer_user, d_kernel);
    back(dwi, d.w_iter_user, d_recurrent);
}

}  // namespace maasfin::kernels::onednn
