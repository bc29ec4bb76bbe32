// MultiHeadAttention with Keras 3 semantics and weight layout.
//
// Inputs per sample: [query (T, D_q), value (S, D_v)], + [key (S, D_k)] (default: the value),
// + [attention mask (T, S)] (non-zero = may attend); the count (2, 3 or 4) says which are there.
// Weights, in Keras order:
//   query kernel (D_q, H, K) + bias (H, K), key kernel (D_k, H, K) + bias (H, K),
//   value kernel (D_v, H, V) + bias (H, V), output kernel (H, V, D_o) + bias (D_o,)
// (H heads, K = key_dim, V = value_dim, D_o = output_shape or D_q). Per head:
//   A = softmax((Q / sqrt(K)) K^T + mask) over the S keys; masked scores get -1e9 added (Keras's
//   large negative), which in float32 swamps the score, so a fully masked row attends uniformly
//   (as Keras in float32).
//   O = dropout(A) V; y = concat_h(O) . output_kernel + bias.
// Projections go through kernels::dense_*, per-head products through kernels::batch_matmul.
#pragma once

#include <cstdint>

#include "maasfin/layer.hpp"

namespace maasfin {

struct AttentionOptions {
    Index num_heads = 1;
    Index key_dim = 1;
    Index value_dim = 0;   // 0: key_dim
    Index output_dim = 0;  // 0: the query's last dimension
    float dropout = 0.f;
    bool use_bias = true;
    bool causal = false;  // use_causal_mask: query step t attends to key steps s <= t
    // return_attention_scores: the row holds [output (T, D_o) | scores (H, T, S)], the softmax
    // probabilities before dropout (Keras's second output); TakeOutput nodes split it.
    bool return_scores = false;
    std::uint64_t seed = 0;  // dropout stream
    Initializer kernel_initializer = Initializer::glorot_uniform;
    Initializer bias_initializer = Initializer::zeros;
};

class MultiHeadAttention : public Layer {
public:
    explicit MultiHeadAttention(const AttentionOptions& o);
    std::string kind() const override { return "MultiHeadAttention"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    Index saved_size(Index N) const override;

private:
    // The key source among the inputs and the mask (or null).
    const float* key_input(const std::vector<const float*>& x) const { return x[has_key_ ? 2 : 1]; }
    // Keep scale of attention-probability element i of a training step (0 or 1/(1-rate)).
    float keep(std::uint64_t step_seed, Index i) const;
    // Adds -1e9 to the masked scores Z (N*H x T x S).
    void apply_mask(float* Z, const float* mask, Index N) const;

    AttentionOptions o_;
    bool has_key_ = false, has_mask_ = false;
    Index T_ = 0, S_ = 0, Dq_ = 0, Dk_ = 0, Dv_ = 0, H_ = 0, K_ = 0, V_ = 0, Do_ = 0;
    Index qk_ = -1, qb_ = -1, kk_ = -1, kb_ = -1, vk_ = -1, vb_ = -1, ok_ = -1, ob_ = -1;
};

}  // namespace maasfin
