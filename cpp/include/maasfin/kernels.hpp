// The only compute API that layers see. Every function here has two implementations, a
// reference one (Eigen, always built, the test oracle) and a oneDNN one; kernels/dispatch.cpp
// picks per call. All buffers are row-major float32. Thread-safe: any number of threads may call
// any kernel at once (oneDNN primitives are cached behind a mutex and executed on per-thread streams).
#pragma once

#include "maasfin/activation.hpp"
#include "maasfin/common.hpp"
#include "maasfin/window.hpp"

#include <string>

namespace maasfin::kernels {

enum class Backend { automatic, reference, onednn };

// Forces a backend for every call (tests use this to compare the two); `automatic` restores
// size-based dispatch.
void set_backend(Backend b);
Backend backend();
// oneDNN is used for a dense call when N*D_in*D_out >= this many multiply-adds.
void set_onednn_min_macs(Index macs);
Index onednn_min_macs();
// Maximum number of cached oneDNN primitives (least recently used are evicted).
void set_primitive_cache_capacity(Index n);
Index primitive_cache_size();
// Threads oneDNN may use for large problems (small ones always run on the calling thread).
void set_num_threads(int n);
int num_threads();
// "major.minor.patch" of the oneDNN library loaded at run time.
std::string onednn_version();

// -- batch-invariant inference ---------------------------------------------------------------------
// While a RowInvariant guard lives on a thread (Graph opens one for every inference forward), the
// kernels called on that thread compute each output row from its own input row with one fixed
// reduction order: dense_fwd and batch_matmul run the rowwise kernels (an fma chain per output in
// k order, parallel over rows only), conv_fwd and pool_fwd the direct reference loops, and the fused
// LSTM is not used (the layer's per-step loop runs on those dense kernels). A row's outputs are then
// bit-identical whatever the batch size, its position, the other rows, the thread count and the
// backend selection. Training keeps the fastest kernels.
class RowInvariant {
public:
    RowInvariant();
    ~RowInvariant();
    RowInvariant(const RowInvariant&) = delete;
    RowInvariant& operator=(const RowInvariant&) = delete;

private:
    bool previous_;
};
// True while a RowInvariant guard is open on this thread and the global switch is on.
bool row_invariant();
// The global switch (default on); off, inference runs the training kernels (benchmarks measure the
// cost of invariance with it).
void set_batch_invariant(bool on);
bool batch_invariant();

// dst[N,D_out] = act(src[N,D_in] . weights[D_in,D_out] + bias[D_out]).
// bias may be null. If `pre` is not null the pre-activation values are stored there too.
void dense_fwd(const float* src, const float* weights, const float* bias, float* dst, float* pre, Index N, Index D_in,
               Index D_out, Activation act);

// Given diff_dst[N,D_out] (gradient w.r.t. the pre-activation output):
//   diff_src[N,D_in] = diff_dst . weights^T      (skipped when diff_src is null)
//   diff_weights[D_in,D_out] = src^T . diff_dst  (overwritten)
//   diff_bias[D_out] = sum over N of diff_dst    (skipped when null)
void dense_bwd(const float* src, const float* weights, const float* diff_dst, float* diff_src, float* diff_weights,
               float* diff_bias, Index N, Index D_in, Index D_out);

// Batched product: dst[b] (M x N) = op(a[b]) (M x K) . op(b[b]) (K x N) for b < B. Batches are
// contiguous; a[b] is stored M x K, or K x M when a_t (op = transpose); b[b] K x N, or N x K when b_t.
// dst is overwritten. Attention's per-head products use it.
void batch_matmul(const float* a, bool a_t, const float* b, bool b_t, float* dst, Index B, Index M, Index K, Index N);

// dst[N,D] = act(src[N,D]); softmax normalises over D.
void eltwise_fwd(Activation act, const float* src, float* dst, Index N, Index D);
// diff_src = diff_dst * act'(src). `src` may be null unless activation_needs_src(act).
// diff_src may alias diff_dst.
void eltwise_bwd(Activation act, const float* src, const float* dst, const float* diff_dst, float* diff_src, Index N,
                 Index D);

// -- convolution (channels_last; a 1-D convolution is a 2-D one with H = KH = 1) ----------------
// src[N,H,W,C_in], weights[KH,KW,C_in,C_out] (Keras layout), bias[C_out] or null,
// dst[N,OH,OW,C_out] = act(conv(src, weights) + bias). If `pre` is not null the pre-activation
// values are stored there too. Padded cells are zeros.
void conv_fwd(const float* src, const float* weights, const float* bias, float* dst, float* pre, Index N, Index C_in,
              Index C_out, const Window& w, Activation act);
// Given diff_dst (w.r.t. the pre-activation output): diff_src (skipped when null), diff_weights
// (overwritten) and diff_bias (skipped when null).
void conv_bwd(const float* src, const float* weights, const float* diff_dst, float* diff_src, float* diff_weights,
              float* diff_bias, Index N, Index C_in, Index C_out, const Window& w);

// -- pooling (channels_last, window dilation 1) --------------------------------------------------
// max: padded cells never win; avg: the mean over the cells inside the input (Keras 'same').
enum class Pool { max, avg };
// Floats of workspace that pool_fwd keeps for pool_bwd (0 for avg).
Index pool_workspace_size(Pool kind, Index N, Index C, const Window& w);
// src[N,H,W,C] -> dst[N,OH,OW,C]. `workspace` (pool_workspace_size floats) may be null at inference.
void pool_fwd(Pool kind, const float* src, float* dst, float* workspace, Index N, Index C, const Window& w);
// diff_src[N,H,W,C] (overwritten) from diff_dst[N,OH,OW,C]; max pooling needs the forward's
// src and workspace.
void pool_bwd(Pool kind, const float* src, const float* workspace, const float* diff_dst, float* diff_src, Index N,
              Index C, const Window& w);

// -- LSTM over a whole sequence (fused) ------------------------------------------------------------
// Shapes: x[N,T,D] (batch-major, as the user gives it), kernel[D,4u], recurrent[u,4u], bias[4u]
// (Keras layout, gate order i, f, c, o), zero initial states. y is N x T x u (in processing order,
// as Keras's go_backwards) with `sequences`, else the final state N x u. The fused kernel exists
// for Keras's default activations only (tanh, recurrent sigmoid); layers keep their per-step loop
// (the reference twin) for everything else and call lstm_fwd first.
struct LstmSpec {
    Index N = 0, T = 0, D = 0, u = 0;
    bool reverse = false;    // go_backwards: steps read t = T-1 .. 0
    bool sequences = false;  // return_sequences
    Activation activation = Activation::tanh, recurrent_activation = Activation::sigmoid;
};
// Floats lstm_fwd keeps in `saved` for lstm_bwd; 0 when no fused kernel fits the spec (whatever
// the backend selection, so that a buffer sized once fits every later dispatch decision).
Index lstm_saved_size(const LstmSpec& s);
// Runs the whole forward and returns true when dispatch picks the fused kernel, else returns
// false and touches nothing. `bias` may be null (use_bias=False); `saved` (lstm_saved_size floats)
// is null at inference.
bool lstm_fwd(const LstmSpec& s, const float* x, const float* kernel, const float* recurrent, const float* bias,
              float* y, float* saved);
// Backward of a forward for which lstm_fwd returned true, from the same `saved`: dx (skipped when
// null) and the kernel, recurrent and bias (skipped when null) gradients, all overwritten.
void lstm_bwd(const LstmSpec& s, const float* x, const float* kernel, const float* recurrent, const float* bias,
              const float* saved, const float* dy, float* dx, float* d_kernel, float* d_recurrent, float* d_bias);
// lstm_fwd then lstm_bwd for the output gradient dy, with a `saved` buffer of its own (the kernel
// tests' entry point): false, touching nothing, when dispatch leaves the sequence to the layer.
bool lstm_fwd_bwd(const LstmSpec& s, const float* x, const float* kernel, const float* recurrent, const float* bias,
                  const float* dy, float* y, float* dx, float* d_kernel, float* d_recurrent, float* d_bias);

}  // namespace maasfin::kernels
