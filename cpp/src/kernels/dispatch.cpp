// The one place that chooses a backend. oneDNN wins only on problems large enough to amortise its
// ~1 us per-call overhead (see docs/performance.md); small problems stay on the calling thread in
// the reference kernels.
#include <atomic>

#include "backends.hpp"

namespace maasfin::kernels {

namespace {
std::atomic<Backend> g_backend{Backend::automatic};
std::atomic<Index> g_min_macs{96 * 1024};

std::atomic<bool> g_invariant{true};
thread_local bool t_invariant = false;

bool use_onednn(Index macs) {
    switch (g_backend.load(std::memory_order_relaxed)) {
        case Backend::reference: return false;
        case Backend::onednn: return true;
        default: return macs >= g_min_macs.load(std::memory_order_relaxed);
    }
}
}  // namespace

RowInvariant::RowInvariant() : previous_(t_invariant) { t_invariant = true; }
RowInvariant::~RowInvariant() { t_invariant = previous_; }
bool row_invariant() { return t_invariant && g_invariant.load(std::memory_order_relaxed); }
void set_batch_invariant(bool on) { g_invariant = on; }
bool batch_invariant() { return g_invariant; }

void set_backend(Backend b) { g_backend = b; }
Backend backend() { return g_backend; }
void set_onednn_min_macs(Index macs) { g_min_macs = macs < 0 ? 0 : macs; }
Index onednn_min_macs() { return g_min_macs; }
void set_primitive_cache_capacity(Index n) { onednn::set_cache_capacity(n); }
Index primitive_cache_size() { return onednn::cache_size(); }
void set_num_threads(int n) { onednn::set_num_threads(n); }
int num_threads() { return onednn::num_threads(); }
std::string onednn_version() { return onednn::version(); }

void dense_fwd(const float* src, const float* weights, const float* bias, float* dst, float* pre, Index N, Index D_in,
               Index D_out, Activation act) {
    if (row_invariant()) {
        // The twin when the reference backend is forced (the backend-agreement tests), else the
        // micro-kernel; the two agree bit for bit.
        const bool twin = g_backend.load(std::memory_order_relaxed) == Backend::reference;
        float* out = pre ? pre : dst;
        const Activation a = pre ? Activation::linear : act;
        if (twin)
            reference::dense_fwd_rowwise(src, weights, bias, out, N, D_in, D_out, a);
        else
            rowwise::dense_fwd(src, weights, bias, out, N, D_in, D_out, a);
        if (pre) reference::eltwise_fwd(act, pre, dst, N, D_out);
        return;
    }
    if (use_onednn(N * D_in * D_out)) {
        if (pre) {
            onednn::dense_fwd(src, weights, bias, pre, N, D_in, D_out, Activation::linear);
            reference::eltwise_fwd(act, pre, dst, N, D_out);
            return;
        }
        if (onednn::dense_fwd(src, weights, bias, dst, N, D_in, D_out, act)) return;
        onednn::dense_fwd(src, weights, bias, dst, N, D_in, D_out, Activation::linear);
        reference::eltwise_fwd(act, dst, dst, N, D_out);
        return;
    }
    reference::dense_fwd(src, weights, bias, dst, pre, N, D_in, D_out, act);
}

void dense_bwd(const float* src, const float* weights, const float* diff_dst, float* diff_src, float* diff_weights,
               float* diff_bias, Index N, Index D_in, Index D_out) {
    if (row_invariant() && diff_src) {
        // Input gradients of an explanation: diff_src = diff_dst . weights^T row by row through the
        // rowwise kernel; the weight gradients (sums over rows) keep the usual kernels.
        thread_local FloatVec wt;
        wt.resize(static_cast<std::size_t>(D_in * D_out));
        for (Index k = 0; k < D_in; ++k)
            for (Index m = 0; m < D_out; ++m) wt[static_cast<std::size_t>(m * D_in + k)] = weights[k * D_out + m];
        dense_fwd(diff_dst, wt.data(), nullptr, diff_src, nullptr, N, D_out, D_in, Activation::linear);
        diff_src = nullptr;
    }
    if (use_onednn(N * D_in * D_out))
        onednn::dense_bwd(src, weights, diff_dst, diff_src, diff_weights, diff_bias, N, D_in, D_out);
    else
        reference::dense_bwd(src, weights, diff_dst, diff_src, diff_weights, diff_bias, N, D_in, D_out);
}

void batch_matmul(const float* a, bool a_t, const float* b, bool b_t, float* dst, Index B, Index M, Index K, Index N) {
    if (row_invariant()) {
        // Each product through the rowwise dense kernel (operands transposed into scratch first).
        thread_local FloatVec at, bt;
        for (Index i = 0; i < B; ++i) {
            const float* ai = a + i * M * K;
            const float* bi = b + i * K * N;
            if (a_t) {
                at.resize(static_cast<std::size_t>(M * K));
                for (Index k = 0; k < K; ++k)
                    for (Index m = 0; m < M; ++m) at[static_cast<std::size_t>(m * K + k)] = ai[k * M + m];
                ai = at.data();
            }
            if (b_t) {
                bt.resize(static_cast<std::size_t>(K * N));
                for (Index n = 0; n < N; ++n)
                    for (Index k = 0; k < K; ++k) bt[static_cast<std::size_t>(k * N + n)] = bi[n * K + k];
                bi = bt.data();
            }
            dense_fwd(ai, bi, nullptr, dst + i * M * N, nullptr, M, K, N, Activation::linear);
        }
        return;
    }
    if (use_onednn(B * M * K * N))
        onednn::batch_matmul(a, a_t, b, b_t, dst, B, M, K, N);
    else
        reference::batch_matmul(a, a_t, b, b_t, dst, B, M, K, N);
}

void eltwise_fwd(Activation act, const float* src, float* dst, Index N, Index D) {
    reference::eltwise_fwd(act, src, dst, N, D);
}

void eltwise_bwd(Activation act, const float* src, const float* dst, const float* diff_dst, float* diff_src, Index N,
                 Index D) {
    reference::eltwise_bwd(act, src, dst, diff_dst, diff_src, N, D);
}

// Convolutions go to oneDNN by the same multiply-add threshold as dense (see docs/performance.md).
void conv_fwd(const float* src, const float* weights, const float* bias, float* dst, float* pre, Index N, Index C_in,
              Index C_out, const Window& w, Activation act) {
    const Index rows = N * w.OH * w.OW;
    if (!row_invariant() && use_onednn(rows * C_out * w.KH * w.KW * C_in)) {
        float* out = pre ? pre : dst;
        if (!pre && onednn::conv_fwd(src, weights, bias, dst, N, C_in, C_out, w, act)) return;
        onednn::conv_fwd(src, weights, bias, out, N, C_in, C_out, w, Activation::linear);
        reference::eltwise_fwd(act, out, dst, rows, C_out);
        return;
    }
    float* out = pre ? pre : dst;
    reference::conv_fwd(src, weights, bias, out, N, C_in, C_out, w);
    if (pre || act != Activation::linear) reference::eltwise_fwd(act, out, dst, rows, C_out);
}

void conv_bwd(const float* src, const float* weights, const float* diff_dst, float* diff_src, float* diff_weights,
              float* diff_bias, Index N, Index C_in, Index C_out, const Window& w) {
    if (!row_invariant() && use_onednn(N * w.OH * w.OW * C_out * w.KH * w.KW * C_in))
        onednn::conv_bwd(src, weights, diff_dst, diff_src, diff_weights, diff_bias, N, C_in, C_out, w);
    else
        reference::conv_bwd(src, weights, diff_dst, diff_src, diff_weights, diff_bias, N, C_in, C_out, w);
}

// Max-pooling workspace: float 0 says which backend ran forward (1: oneDNN, whose own workspace
// then starts at float 16, 64-byte aligned; 0: reference, which recomputes the winners in backward).
// Backward follows that record, so it always pairs with the forward that filled the workspace.
namespace {
constexpr Index kWorkspaceHeader = 16;
Index pool_macs(Index N, Index C, const Window& w) { return N * w.OH * w.OW * C * w.KH * w.KW; }
}  // namespace

Index pool_workspace_size(Pool kind, Index N, Index C, const Window& w) {
    if (kind != Pool::max) return 0;
    return kWorkspaceHeader + (onednn::pool_workspace_bytes(N, C, w) + 3) / 4;
}

void pool_fwd(Pool kind, const float* src, float* dst, float* workspace, Index N, Index C, const Window& w) {
    const bool dnn = !row_invariant() && use_onednn(pool_macs(N, C, w));
    if (workspace && kind == Pool::max) workspace[0] = dnn ? 1.f : 0.f;
    if (dnn)
        onednn::pool_fwd(kind, src, dst, workspace && kind == Pool::max ? workspace + kWorkspaceHeader : nullptr, N, C,
                         w);
    else
        reference::pool_fwd(kind, src, dst, N, C, w);
}

void pool_bwd(Pool kind, const float* src, const float* workspace, const float* diff_dst, float* diff_src, Index N,
              Index C, const Window& w) {
    const bool dnn = kind == Pool::max ? workspace[0] == 1.f : use_onednn(pool_macs(N, C, w));
    if (dnn)
        onednn::pool_bwd(kind, kind == Pool::max ? workspace + kWorkspaceHeader : nullptr, diff_dst, diff_src, N, C, w);
    else
        reference::pool_bwd(kind, src, diff_dst, diff_src, N, C, w);
}

// LSTM: oneDNN's fused sequence primitive when Keras's default activations are used and one
// step's recurrent product (N x u x 4u) reaches the dense threshold; otherwise the layer's own
// per-step loop (the reference twin, itself made of dense kernel calls) runs.
namespace {
bool lstm_fusable(const LstmSpec& s) {
    return s.activation == Activation::tanh && s.recurrent_activation == Activation::sigmoid && s.N > 0 && s.T > 0;
}
}  // namespace

Index lstm_saved_size(const LstmSpec& s) { return lstm_fusable(s) ? onednn::lstm_saved_size(s) : 0; }

bool lstm_fwd(const LstmSpec& s, const float* x, const float* kernel, const float* recurrent, const float* bias,
              float* y, float* saved) {
    if (row_invariant() || !lstm_fusable(s) || !use_onednn(s.N * s.u * 4 * s.u)) return false;
    onednn::lstm_fwd(s, x, kernel, recurrent, bias, y, saved);
    return true;
}

void lstm_bwd(const LstmSpec& s, const float* x, const float* kernel, const float* recurrent, const float* bias,
              const float* saved, const float* dy, float* dx, float* d_kernel, float* d_recurrent, float* d_bias) {
    onednn::lstm_bwd(s, x, kernel, recurrent, bias, saved, dy, dx, d_kernel, d_recurrent, d_bias);
}

bool lstm_fwd_bwd(const LstmSpec& s, const float* x, const float* kernel, const float* recurrent, const float* bias,
                  const float* dy, float* y, float* dx, float* d_kernel, float* d_recurrent, float* d_bias) {
    FloatVec saved(static_cast<std::size_t>(lstm_saved_size(s)));
    if (saved.empty() || !lstm_fwd(s, x, kernel, recurrent, bias, y, saved.data())) return false;
    lstm_bwd(s, x, kernel, recurrent, bias, saved.data(), dy, dx, d_kernel, d_recurrent, d_bias);
    return true;
}

}  // namespace maasfin::kernels
