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
// Threads: the batch is cut into row slices run as concurrent single-threaded primitives (see
// for_slices); slice 0 writes its weight gradients into the arena, the others into zeroed
// buffers that are summed in afterwards. `saved` records the slice count (see layout()).
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <stdexcept>
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

// more: [weights_layer, weights_iter, workspace]. `copy` (the batch slice) gives every concurrent
// slice a primitive object of its own: with one shared object the two slices of a 64-row batch
// took as long as running them one after the other.
Cached forward(const LstmSpec& s, bool training, Index copy = 0) {
    return get_primitive(key(training ? "lstm_fwd_t" : "lstm_fwd_i", s) + "#" + std::to_string(copy), [&] {
        const auto pd = fwd_pd(s, training);
        return Cached{dnnl::lstm_forward(pd),
                      pd.scratchpad_desc(),
                      {},
                      {pd.weights_layer_desc(), pd.weights_iter_desc(), pd.workspace_desc()}};
    });
}

// more: [weights_layer, weights_iter, diff_weights_layer, diff_weights_iter]
Cached backward(const LstmSpec& s, Index copy = 0) {
    return get_primitive(key("lstm_bwd", s) + "#" + std::to_string(copy), [&] {
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
        return Cached{dnnl::lstm_backward(pd),
                      pd.scratchpad_desc(),
                      {},
                      {pd.weights_layer_desc(), pd.weights_iter_desc(), pd.diff_weights_layer_desc(),
                       pd.diff_weights_iter_desc()}};
    });
}

Index round16(Index floats) { return (floats + 15) / 16 * 16; }

// -- batch slices -----------------------------------------------------------------------------------
// Rows of the batch never interact, so the batch is cut into K slices that run as K concurrent
// single-threaded primitives inside one OpenMP region: one fork/join per call. oneDNN's own
// threading of this primitive forks per step and per GEMM (several regions for each of the T
// steps), which on two cores was slower than one thread, and far slower whenever the machine is
// busy. Slices hold at least kMinRows rows; at most kMaxSlices.
constexpr Index kMinRows = 8, kMaxSlices = 4;

Index slice_count(Index N) {
    return std::max<Index>(1, std::min<Index>({static_cast<Index>(num_threads()), N / kMinRows, kMaxSlices}));
}
Index row0(Index N, Index k, Index K) { return N * k / K; }
LstmSpec slice(const LstmSpec& s, Index k, Index K) {
    LstmSpec r = s;
    r.N = row0(s.N, k + 1, K) - row0(s.N, k, K);
    return r;
}

// saved: a header of 16 floats (float 0: K), then per slice (its rows only):
// dst_layer Nk*T*u (ntc) | dst_iter Nk*u | dst_iter_c Nk*u | workspace, each 16-aligned.
constexpr Index kHeader = 16;
struct Sections {
    Index dst_layer = 0, dst_iter = 0, dst_iter_c = 0, workspace = 0, total = 0;
};
Sections sections(const LstmSpec& s, const md& workspace, Index at) {
    Sections o;
    o.dst_layer = at;
    o.dst_iter = at + round16(s.T * s.N * s.u);
    o.dst_iter_c = o.dst_iter + round16(s.N * s.u);
    o.workspace = o.dst_iter_c + round16(s.N * s.u);
    o.total = o.workspace + round16(static_cast<Index>((workspace.get_size() + 3) / 4));
    return o;
}
std::vector<Sections> layout(const LstmSpec& s, Index K) {
    std::vector<Sections> out;
    Index at = kHeader;
    for (Index k = 0; k < K; ++k) {
        const LstmSpec sk = slice(s, k, K);
        out.push_back(sections(sk, forward(sk, true).more[2], at));
        at = out.back().total;
    }
    return out;
}

// Runs body(k) for k < K, concurrently when K > 1; primitives inside run single-threaded (oneDNN
// does not fork inside a parallel region). The first exception is rethrown on the caller.
template <class F>
void for_slices(Index K, F&& body) {
    if (K == 1) {
        apply_num_threads();
        body(Index{0});
        return;
    }
    std::exception_ptr error;
#pragma omp parallel num_threads(static_cast<int>(K))
    {
        omp_set_num_threads(1);
        const Index tid = omp_get_thread_num(), team = omp_get_num_threads();
        for (Index k = tid; k < K; k += team) {
            try {
                body(k);
            } catch (...) {
#pragma omp critical(maasfin_lstm_error)
                if (!error) error = std::current_exception();
            }
        }
    }
    if (error) std::rethrow_exception(error);
}

// The slices share one copy of the weights (and their gradients are summed in one layout).
void same_weights_layouts(const std::vector<Cached>& prims, std::size_t first) {
    for (const Cached& c : prims)
        if (c.more[first] != prims[0].more[first] || c.more[first + 1] != prims[0].more[first + 1])
            throw std::runtime_error("oneDNN LSTM: batch slices chose different weight layouts");
}

void run(const Cached& c, std::unordered_map<int, dnnl::memory>& args) {
    args[DNNL_ARG_SCRATCHPAD] = thread_scratchpad(c.scratchpad);  // the calling (slice) thread's
    auto& st = stream();
    c.prim.execute(st, args);
    st.wait();
}

// A per-thread buffer of at least `bytes`; slot picks one of several live at once.
float* thread_buffer(int slot, std::size_t bytes) {
    thread_local std::vector<float> buffers[8];
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
float* weights_in(const md& user, const md& want, const float* data, int slot) {
    if (want == user) return const_cast<float*>(data);
    dnnl::memory user_mem(user, engine(), const_cast<float*>(data));
    dnnl::memory m(want, engine(), thread_buffer(slot, want.get_size()));
    dnnl::reorder(user_mem, m).execute(stream(), user_mem, m);
    stream().wait();
    return static_cast<float*>(m.get_data_handle());
}

// Copies Nk x T x u rows between processing order and time order (t = T-1-s), both ntc.
void reverse_time(const float* src, float* dst, Index N, Index T, Index u) {
    const std::size_t row = sizeof(float) * static_cast<std::size_t>(u);
    for (Index n = 0; n < N; ++n)
        for (Index t = 0; t < T; ++t) std::memcpy(dst + (n * T + t) * u, src + (n * T + (T - 1 - t)) * u, row);
}
}  // namespace

Index lstm_saved_size(const LstmSpec& s) {
    // Any slice count forward may pick (it follows the thread count at call time).
    Index size = 0;
    for (Index K = 1; K <= std::min(kMaxSlices, std::max<Index>(1, s.N / kMinRows)); ++K)
        size = std::max(size, layout(s, K).back().total);
    return size;
}

void lstm_fwd(const LstmSpec& s, const float* x, const float* kernel, const float* recurrent, const float* bias,
              float* y, float* saved) {
    const bool training = saved != nullptr;
    const Index K = slice_count(s.N), T = s.T, u = s.u, D = s.D;
    std::vector<Cached> prims;
    for (Index k = 0; k < K; ++k) prims.push_back(forward(slice(s, k, K), training, k));
    same_weights_layouts(prims, 0);
    const std::vector<Sections> o = training ? layout(s, K) : std::vector<Sections>{};
    if (training) saved[0] = static_cast<float>(K);
    const Descs full = descs(s);
    float* wl = weights_in(full.w_layer_user, prims[0].more[0], kernel, 0);
    float* wi = weights_in(full.w_iter_user, prims[0].more[1], recurrent, 1);
    if (!bias) bias = zeros(static_cast<std::size_t>(4 * u));
    // Inference: outputs in per-call buffers of the calling thread, sliced by rows.
    float* tmp_layer = training ? nullptr : thread_buffer(2, sizeof(float) * static_cast<std::size_t>(T * s.N * u));
    float* tmp_iter = training ? nullptr : thread_buffer(3, sizeof(float) * static_cast<std::size_t>(s.N * u));
    float* tmp_iter_c = training ? nullptr : thread_buffer(4, sizeof(float) * static_cast<std::size_t>(s.N * u));
    for_slices(K, [&](Index k) {
        const LstmSpec sk = slice(s, k, K);
        const Index n0 = row0(s.N, k, K), Nk = sk.N;
        const Descs d = descs(sk);
        const Cached& c = prims[static_cast<std::size_t>(k)];
        auto& eng = engine();
        float* dst_layer = training ? saved + o[k].dst_layer : tmp_layer + n0 * T * u;
        float* dst_iter = training ? saved + o[k].dst_iter : tmp_iter + n0 * u;
        float* dst_iter_c = training ? saved + o[k].dst_iter_c : tmp_iter_c + n0 * u;
        std::unordered_map<int, dnnl::memory> args{
            {DNNL_ARG_SRC_LAYER, dnnl::memory(d.src_layer, eng, const_cast<float*>(x + n0 * T * D))},
            {DNNL_ARG_WEIGHTS_LAYER, dnnl::memory(c.more[0], eng, wl)},
            {DNNL_ARG_WEIGHTS_ITER, dnnl::memory(c.more[1], eng, wi)},
            {DNNL_ARG_BIAS, dnnl::memory(d.bias, eng, const_cast<float*>(bias))},
            {DNNL_ARG_DST_LAYER, dnnl::memory(d.dst_layer, eng, dst_layer)},
            {DNNL_ARG_DST_ITER, dnnl::memory(d.dst_iter, eng, dst_iter)},
            {DNNL_ARG_DST_ITER_C, dnnl::memory(d.dst_iter, eng, dst_iter_c)}};
        if (training) args.emplace(DNNL_ARG_WORKSPACE, dnnl::memory(c.more[2], eng, saved + o[k].workspace));
        run(c, args);
        if (!s.sequences)
            std::memcpy(y + n0 * u, dst_iter, sizeof(float) * static_cast<std::size_t>(Nk * u));
        else if (s.reverse)
            reverse_time(dst_layer, y + n0 * T * u, Nk, T, u);
        else
            std::memcpy(y + n0 * T * u, dst_layer, sizeof(float) * static_cast<std::size_t>(Nk * T * u));
    });
}

void lstm_bwd(const LstmSpec& s, const float* x, const float* kernel, const float* recurrent, const float* bias,
              const float* saved, const float* dy, float* dx, float* d_kernel, float* d_recurrent, float* d_bias) {
    const Index K = static_cast<Index>(saved[0]), T = s.T, u = s.u, D = s.D, GU = 4 * u;
    std::vector<Cached> fwd, bwd;
    for (Index k = 0; k < K; ++k) {
        fwd.push_back(forward(slice(s, k, K), true, k));
        bwd.push_back(backward(slice(s, k, K), k));
    }
    same_weights_layouts(bwd, 0);
    same_weights_layouts(bwd, 2);
    const std::vector<Sections> o = layout(s, K);
    const Descs full = descs(s);
    const std::size_t seq_floats = static_cast<std::size_t>(T * s.N * u);
    const float* zero = zeros(std::max(seq_floats, static_cast<std::size_t>(GU)));  // one call: a later one may move it
    float* wl = weights_in(full.w_layer_user, bwd[0].more[0], kernel, 0);
    float* wi = weights_in(full.w_iter_user, bwd[0].more[1], recurrent, 1);
    if (!bias) bias = zero;
    float* dy_rev = s.sequences && s.reverse ? thread_buffer(2, seq_floats * sizeof(float)) : nullptr;
    float* dx_tmp = dx ? nullptr : thread_buffer(3, sizeof(float) * static_cast<std::size_t>(s.N * T * D));
    // Gradients: oneDNN accumulates into diff weights, so every slice gets zeroed buffers of its
    // own (slice 0 the gradient arena itself when the layout is Keras's), summed afterwards.
    const md &want_l = bwd[0].more[2], &want_i = bwd[0].more[3];
    const bool direct = want_l == full.w_layer_user && want_i == full.w_iter_user;
    const std::size_t wl_floats = want_l.get_size() / 4 + 16, wi_floats = want_i.get_size() / 4 + 16;
    const std::size_t per_slice =
        round16(static_cast<Index>(wl_floats)) + round16(static_cast<Index>(wi_floats)) + round16(GU);
    float* partial = thread_buffer(5, sizeof(float) * per_slice * static_cast<std::size_t>(K));
    std::fill(partial, partial + per_slice * static_cast<std::size_t>(K), 0.f);
    auto part = [&](Index k, int which) {
        float* base = partial + per_slice * static_cast<std::size_t>(k);
        return which == 0   ? base
               : which == 1 ? base + round16(static_cast<Index>(wl_floats))
                            : base + round16(static_cast<Index>(wl_floats)) + round16(static_cast<Index>(wi_floats));
    };
    float* db_out = d_bias ? d_bias : thread_buffer(6, sizeof(float) * static_cast<std::size_t>(GU));
    if (direct) {
        std::fill(d_kernel, d_kernel + D * GU, 0.f);
        std::fill(d_recurrent, d_recurrent + u * GU, 0.f);
        std::fill(db_out, db_out + GU, 0.f);
    }
    for_slices(K, [&](Index k) {
        const LstmSpec sk = slice(s, k, K);
        const Index n0 = row0(s.N, k, K), Nk = sk.N;
        const Descs d = descs(sk);
        const Cached& c = bwd[static_cast<std::size_t>(k)];
        auto& eng = engine();
        const float* diff_dst_layer = zero;
        const float* diff_dst_iter = zero;
        if (s.sequences && s.reverse) {
            reverse_time(dy + n0 * T * u, dy_rev + n0 * T * u, Nk, T, u);
            diff_dst_layer = dy_rev + n0 * T * u;
        } else if (s.sequences) {
            diff_dst_layer = dy + n0 * T * u;
        } else {
            diff_dst_iter = dy + n0 * u;
        }
        const bool arena = direct && k == 0;
        std::unordered_map<int, dnnl::memory> args{
            {DNNL_ARG_SRC_LAYER, dnnl::memory(d.src_layer, eng, const_cast<float*>(x + n0 * T * D))},
            {DNNL_ARG_WEIGHTS_LAYER, dnnl::memory(c.more[0], eng, wl)},
            {DNNL_ARG_WEIGHTS_ITER, dnnl::memory(c.more[1], eng, wi)},
            {DNNL_ARG_BIAS, dnnl::memory(d.bias, eng, const_cast<float*>(bias))},
            {DNNL_ARG_DST_LAYER, dnnl::memory(d.dst_layer, eng, const_cast<float*>(saved + o[k].dst_layer))},
            {DNNL_ARG_DST_ITER, dnnl::memory(d.dst_iter, eng, const_cast<float*>(saved + o[k].dst_iter))},
            {DNNL_ARG_DST_ITER_C, dnnl::memory(d.dst_iter, eng, const_cast<float*>(saved + o[k].dst_iter_c))},
            {DNNL_ARG_WORKSPACE,
             dnnl::memory(fwd[static_cast<std::size_t>(k)].more[2], eng, const_cast<float*>(saved + o[k].workspace))},
            {DNNL_ARG_DIFF_DST_LAYER, dnnl::memory(d.dst_layer, eng, const_cast<float*>(diff_dst_layer))},
            {DNNL_ARG_DIFF_DST_ITER, dnnl::memory(d.dst_iter, eng, const_cast<float*>(diff_dst_iter))},
            {DNNL_ARG_DIFF_DST_ITER_C, dnnl::memory(d.dst_iter, eng, const_cast<float*>(zero))},
            {DNNL_ARG_DIFF_SRC_LAYER, dnnl::memory(d.src_layer, eng, (dx ? dx : dx_tmp) + n0 * T * D)},
            {DNNL_ARG_DIFF_WEIGHTS_LAYER, dnnl::memory(c.more[2], eng, arena ? d_kernel : part(k, 0))},
            {DNNL_ARG_DIFF_WEIGHTS_ITER, dnnl::memory(c.more[3], eng, arena ? d_recurrent : part(k, 1))},
            {DNNL_ARG_DIFF_BIAS, dnnl::memory(d.bias, eng, arena ? db_out : part(k, 2))}};
        run(c, args);
    });
    // Sum the slices' gradients into the Keras buffers (reordering them first if needed).
    auto gather = [&](const md& want, const md& user, float* out, Index floats, int which) {
        for (Index k = direct ? 1 : 0; k < K; ++k) {
            const float* src = part(k, which);
            if (want != user) {
                float* plain = thread_buffer(7, sizeof(float) * static_cast<std::size_t>(floats));
                dnnl::memory from(want, engine(), const_cast<float*>(src)), to(user, engine(), plain);
                dnnl::reorder(from, to).execute(stream(), from, to);
                stream().wait();
                src = plain;
            }
            if (k == 0)
                std::memcpy(out, src, sizeof(float) * static_cast<std::size_t>(floats));
            else
                for (Index i = 0; i < floats; ++i) out[i] += src[i];
        }
    };
    gather(want_l, full.w_layer_user, d_kernel, D * GU, 0);
    gather(want_i, full.w_iter_user, d_recurrent, u * GU, 1);
    gather(full.bias, full.bias, db_out, GU, 2);
}

}  // namespace maasfin::kernels::onednn
