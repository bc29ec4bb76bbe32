// Internal: the two backends behind kernels.hpp. Only dispatch.cpp calls these.
#pragma once

#include "maasfin/kernels.hpp"

namespace maasfin::kernels::reference {
void dense_fwd(const float* src, const float* weights, const float* bias, float* dst, float* pre, Index N, Index D_in,
               Index D_out, Activation act);
void dense_bwd(const float* src, const float* weights, const float* diff_dst, float* diff_src, float* diff_weights,
               float* diff_bias, Index N, Index D_in, Index D_out);
// Outputs below this many use the dot scheme of the batch-invariant kernels (see rowwise/dense.cpp).
constexpr Index kRowwiseDotMaxOut = 8;
// The batch-invariant twin of rowwise::dense_fwd (scalar std::fma chains, bit-identical to it).
void dense_fwd_rowwise(const float* src, const float* weights, const float* bias, float* dst, Index N, Index D_in,
                       Index D_out, Activation act);
void batch_matmul(const float* a, bool a_t, const float* b, bool b_t, float* dst, Index B, Index M, Index K, Index N);
void eltwise_fwd(Activation act, const float* src, float* dst, Index N, Index D);
void eltwise_bwd(Activation act, const float* src, const float* dst, const float* diff_dst, float* diff_src, Index N,
                 Index D);
void conv_fwd(const float* src, const float* weights, const float* bias, float* dst, Index N, Index C_in, Index C_out,
              const Window& w);
void conv_bwd(const float* src, const float* weights, const float* diff_dst, float* diff_src, float* diff_weights,
              float* diff_bias, Index N, Index C_in, Index C_out, const Window& w);
// Max pooling recomputes the winning cell from src in backward, so it needs no workspace.
void pool_fwd(Pool kind, const float* src, float* dst, Index N, Index C, const Window& w);
void pool_bwd(Pool kind, const float* src, const float* diff_dst, float* diff_src, Index N, Index C, const Window& w);
}  // namespace maasfin::kernels::reference

namespace maasfin::kernels::rowwise {
// Batch-invariant dense forward (AVX2 micro-kernel, parallel over rows only): every output row is
// computed with one fixed reduction order, whatever N, the row's position and the thread count.
void dense_fwd(const float* src, const float* weights, const float* bias, float* dst, Index N, Index D_in, Index D_out,
               Activation act);
}  // namespace maasfin::kernels::rowwise

namespace maasfin::kernels::onednn {
// Returns false (and does nothing) when oneDNN has no fused form for `act`.
bool dense_fwd(const float* src, const float* weights, const float* bias, float* dst, Index N, Index D_in, Index D_out,
               Activation act);
void dense_bwd(const float* src, const float* weights, const float* diff_dst, float* diff_src, float* diff_weights,
               float* diff_bias, Index N, Index D_in, Index D_out);
void batch_matmul(const float* a, bool a_t, const float* b, bool b_t, float* dst, Index B, Index M, Index K, Index N);
// Returns false (and does nothing) when oneDNN has no fused form for `act`.
bool conv_fwd(const float* src, const float* weights, const float* bias, float* dst, Index N, Index C_in, Index C_out,
              const Window& w, Activation act);
void conv_bwd(const float* src, const float* weights, const float* diff_dst, float* diff_src, float* diff_weights,
              float* diff_bias, Index N, Index C_in, Index C_out, const Window& w);
// Bytes of oneDNN's max-pooling workspace for this problem.
Index pool_workspace_bytes(Index N, Index C, const Window& w);
// `workspace` is null at inference (forward_inference), else pool_workspace_bytes long.
void pool_fwd(Pool kind, const float* src, float* dst, void* workspace, Index N, Index C, const Window& w);
void pool_bwd(Pool kind, const void* workspace, const float* diff_dst, float* diff_src, Index N, Index C,
              const Window& w);
// LSTM (vanilla_lstm, Keras's gates and activations) over a sequence; see kernels::lstm_fwd.
Index lstm_saved_size(const LstmSpec& s);
void lstm_fwd(const LstmSpec& s, const float* x, const float* kernel, const float* recurrent, const float* bias,
              float* y, float* saved);
void lstm_bwd(const LstmSpec& s, const float* x, const float* kernel, const float* recurrent, const float* bias,
              const float* saved, const float* dy, float* dx, float* d_kernel, float* d_recurrent, float* d_bias);
void set_cache_capacity(Index n);
Index cache_size();
void set_num_threads(int n);
int num_threads();
std::string version();
}  // namespace maasfin::kernels::onednn
