// Multi-head attention: three projections (dense kernels), per-head score and context products
// (batch_matmul over N*H heads), softmax over the keys, the output projection.
// Layouts: projections are row-major (N*T or N*S rows) x (H*K or H*V) as the dense kernel gives
// them; the per-head products want head-major N x H x T x K blocks, so the layer permutes between
// the two (a copy of O(N*T*H*K) floats, small next to the products).
// saved: Qh (N,H,T,K, already scaled), Kh (N,H,S,K), Vh (N,H,S,V), A (N,H,T,S, before dropout),
// O (N*T, H*V, the output projection's input).
#include "maasfin/layers/attention.hpp"

#include <cmath>
#include <cstring>

#include "maasfin/kernels.hpp"
#include "maasfin/rng.hpp"

namespace maasfin {

namespace {
constexpr float kLargeNegative = -1e9f;  // Keras's masked-softmax adder for float32

// src rows (n, t) x (h, k) -> dst (n, h, t, k)
void to_heads(const float* src, float* dst, Index N, Index T, Index H, Index K) {
    for (Index n = 0; n < N; ++n)
        for (Index t = 0; t < T; ++t)
            for (Index h = 0; h < H; ++h)
                std::memcpy(dst + ((n * H + h) * T + t) * K, src + (n * T + t) * H * K + h * K,
                            sizeof(float) * static_cast<std::size_t>(K));
}

// src (n, h, t, k) -> dst rows (n, t) x (h, k)
void from_heads(const float* src, float* dst, Index N, Index T, Index H, Index K) {
    for (Index n = 0; n < N; ++n)
        for (Index t = 0; t < T; ++t)
            for (Index h = 0; h < H; ++h)
                std::memcpy(dst + (n * T + t) * H * K + h * K, src + ((n * H + h) * T + t) * K,
                            sizeof(float) * static_cast<std::size_t>(K));
}
}  // namespace

MultiHeadAttention::MultiHeadAttention(const AttentionOptions& o) : o_(o) {
    if (o.num_heads <= 0 || o.key_dim <= 0 || o.value_dim < 0 || o.output_dim < 0)
        throw InvalidArgument("MultiHeadAttention: num_heads and key_dim must be positive integers, got " +
                              std::to_string(o.num_heads) + " and " + std::to_string(o.key_dim));
    if (!(o.dropout >= 0.f && o.dropout < 1.f))
        throw InvalidArgument("MultiHeadAttention: dropout must be in [0, 1), got " + std::to_string(o.dropout));
}

// query (T, D_q), value (S, D_v) [, key (S, D_k)] [, mask (T, S)] -> (T, D_o), or with
// return_scores the flat row (T*D_o + H*T*S): output, then scores (H, T, S)
Shape MultiHeadAttention::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    const std::string where = "MultiHeadAttention '" + name_ + "'";
    if (inputs.size() < 2 || inputs.size() > 4)
        throw InvalidArgument(where +
                              " expects [query, value], [query, value, key] or [query, value, key, "
                              "attention_mask], got " +
                              std::to_string(inputs.size()) + " inputs");
    has_key_ = inputs.size() >= 3;
    has_mask_ = inputs.size() == 4;
    for (std::size_t i = 0; i < 2 + (has_key_ ? 1u : 0u); ++i)
        if (inputs[i].size() != 2)
            throw InvalidArgument(where + " expects query, value and key of shape (batch, timesteps, features), got " +
                                  shape_str(inputs[i]));
    const Shape& q = inputs[0];
    const Shape& v = inputs[1];
    const Shape& k = has_key_ ? inputs[2] : v;
    if (k[0] != v[0])
        throw InvalidArgument(where + ": key and value need the same number of timesteps, got key " + shape_str(k) +
                              " and value " + shape_str(v));
    T_ = q[0];
    S_ = v[0];
    Dq_ = q[1];
    Dv_ = v[1];
    Dk_ = k[1];
    if (has_mask_ && inputs.back() != Shape{T_, S_})
        throw InvalidArgument(where + ": attention_mask must have shape (batch, " + std::to_string(T_) + ", " +
                              std::to_string(S_) + ") for query " + shape_str(q) + " and value " + shape_str(v) +
                              ", got " + shape_str(inputs.back()));
    H_ = o_.num_heads;
    K_ = o_.key_dim;
    V_ = o_.value_dim > 0 ? o_.value_dim : o_.key_dim;
    Do_ = o_.output_dim > 0 ? o_.output_dim : Dq_;
    const Initializer ki = o_.kernel_initializer, bi = o_.bias_initializer;
    qk_ = params.add("query/kernel", {Dq_, H_, K_}, ki);
    if (o_.use_bias) qb_ = params.add("query/bias", {H_, K_}, bi);
    kk_ = params.add("key/kernel", {Dk_, H_, K_}, ki);
    if (o_.use_bias) kb_ = params.add("key/bias", {H_, K_}, bi);
    vk_ = params.add("value/kernel", {Dv_, H_, V_}, ki);
    if (o_.use_bias) vb_ = params.add("value/bias", {H_, V_}, bi);
    ok_ = params.add("attention_output/kernel", {H_, V_, Do_}, ki);
    if (o_.use_bias) ob_ = params.add("attention_output/bias", {Do_}, bi);
    if (o_.return_scores) return {T_ * Do_ + H_ * T_ * S_};
    return {T_, Do_};
}

Index MultiHeadAttention::saved_size(Index N) const {
    return N * H_ * (T_ * K_ + S_ * K_ + S_ * V_ + T_ * S_ + T_ * V_);
}

float MultiHeadAttention::keep(std::uint64_t step_seed, Index i) const {
    return rng::uniform(step_seed, o_.seed, static_cast<std::uint64_t>(i)) >= o_.dropout ? 1.f / (1.f - o_.dropout)
                                                                                         : 0.f;
}

void MultiHeadAttention::apply_mask(float* Z, const float* mask, Index N) const {
    if (!o_.causal && !mask) return;
    for (Index n = 0; n < N; ++n)
        for (Index h = 0; h < H_; ++h)
            for (Index t = 0; t < T_; ++t) {
                float* z = Z + ((n * H_ + h) * T_ + t) * S_;
                const float* m = mask ? mask + (n * T_ + t) * S_ : nullptr;
                for (Index s = 0; s < S_; ++s)
                    if ((o_.causal && s > t) || (m && m[s] == 0.f)) z[s] += kLargeNegative;
            }
}

void MultiHeadAttention::forward(const ForwardArgs& a) const {
    const Index N = a.N, H = H_, T = T_, S = S_, K = K_, V = V_;
    thread_local FloatVec scratch, proj, probs;
    float* Qh = a.saved;
    if (!Qh) {
        scratch.resize(static_cast<std::size_t>(saved_size(N)));
        Qh = scratch.data();
    }
    float* Kh = Qh + N * H * T * K;
    float* Vh = Kh + N * H * S * K;
    float* A = Vh + N * H * S * V;
    float* O = A + N * H * T * S;
    const float* p = a.params;
    auto bias = [&](Index off) { return o_.use_bias ? p + off : nullptr; };
    // Projections, each permuted to heads (Q scaled first, as Keras does).
    proj.resize(static_cast<std::size_t>(N * std::max(T, S) * H * std::max(K, V)));
    kernels::dense_fwd(a.x[0], p + qk_, bias(qb_), proj.data(), nullptr, N * T, Dq_, H * K, Activation::linear);
    const float scale = 1.f / std::sqrt(static_cast<float>(K));
    for (Index i = 0; i < N * T * H * K; ++i) proj[i] *= scale;
    to_heads(proj.data(), Qh, N, T, H, K);
    kernels::dense_fwd(key_input(a.x), p + kk_, bias(kb_), proj.data(), nullptr, N * S, Dk_, H * K, Activation::linear);
    to_heads(proj.data(), Kh, N, S, H, K);
    kernels::dense_fwd(a.x[1], p + vk_, bias(vb_), proj.data(), nullptr, N * S, Dv_, H * V, Activation::linear);
    to_heads(proj.data(), Vh, N, S, H, V);
    // Scores and probabilities (N*H*T rows of S).
    kernels::batch_matmul(Qh, false, Kh, true, A, N * H, T, K, S);
    apply_mask(A, has_mask_ ? a.x.back() : nullptr, N);
    kernels::eltwise_fwd(Activation::softmax, A, A, N * H * T, S);
    const float* P = A;
    if (a.training && o_.dropout > 0.f) {
        probs.resize(static_cast<std::size_t>(N * H * T * S));
        for (Index i = 0; i < N * H * T * S; ++i) probs[i] = A[i] * keep(a.seed, i);
        P = probs.data();
    }
    // Context per head, back to rows, output projection.
    kernels::batch_matmul(P, false, Vh, false, proj.data(), N * H, T, S, V);
    from_heads(proj.data(), O, N, T, H, V);
    if (!o_.return_scores) {
        kernels::dense_fwd(O, p + ok_, bias(ob_), a.y, nullptr, N * T, H * V, Do_, Activation::linear);
        return;
    }
    // [output | scores] per sample: the output through a contiguous buffer, then each sample's
    // probabilities (N, H, T, S are already sample-major).
    thread_local FloatVec out;
    out.resize(static_cast<std::size_t>(N * T * Do_));
    kernels::dense_fwd(O, p + ok_, bias(ob_), out.data(), nullptr, N * T, H * V, Do_, Activation::linear);
    const Index row = T * Do_ + H * T * S;
    for (Index n = 0; n < N; ++n) {
        std::memcpy(a.y + n * row, out.data() + n * T * Do_, sizeof(float) * static_cast<std::size_t>(T * Do_));
        std::memcpy(a.y + n * row + T * Do_, A + n * H * T * S, sizeof(float) * static_cast<std::size_t>(H * T * S));
    }
}

void MultiHeadAttention::backward(const BackwardArgs& a) const {
    const Index N = a.N, H = H_, T = T_, S = S_, K = K_, V = V_;
    const float* Qh = a.saved;
    const float* Kh = Qh + N * H * T * K;
    const float* Vh = Kh + N * H * S * K;
    const float* A = Vh + N * H * S * V;
    const float* O = A + N * H * T * S;
    const float* p = a.params;
    float* g = a.grads;
    auto gbias = [&](Index off) { return o_.use_bias ? g + off : nullptr; };
    thread_local FloatVec rows, dOh, dP, P, dZ, dQh, dKh, dVh, dx_key, dy_out;
    const std::size_t big = static_cast<std::size_t>(N * std::max(T, S) * H * std::max(K, V));
    rows.resize(big);
    // With return_scores, dy holds [d output | d scores] per sample: gather the output part.
    const Index row = T * Do_ + H * T * S;
    const float* dy = a.dy;
    if (o_.return_scores) {
        dy_out.resize(static_cast<std::size_t>(N * T * Do_));
        for (Index n = 0; n < N; ++n)
            std::memcpy(dy_out.data() + n * T * Do_, a.dy + n * row, sizeof(float) * static_cast<std::size_t>(T * Do_));
        dy = dy_out.data();
    }
    // Output projection: dO (N*T x H*V), then per head.
    kernels::dense_bwd(O, p + ok_, dy, rows.data(), g + ok_, gbias(ob_), N * T, H * V, Do_);
    dOh.resize(static_cast<std::size_t>(N * H * T * V));
    to_heads(rows.data(), dOh.data(), N, T, H, V);
    // Through dropout: P = A * keep.
    const Index nA = N * H * T * S;
    const bool drop = a.training && o_.dropout > 0.f;
    const float* Pused = A;
    if (drop) {
        P.resize(static_cast<std::size_t>(nA));
        for (Index i = 0; i < nA; ++i) P[i] = A[i] * keep(a.seed, i);
        Pused = P.data();
    }
    dP.resize(static_cast<std::size_t>(nA));
    kernels::batch_matmul(dOh.data(), false, Vh, true, dP.data(), N * H, T, V, S);  // dP = dO V^T
    dVh.resize(static_cast<std::size_t>(N * H * S * V));
    kernels::batch_matmul(Pused, true, dOh.data(), false, dVh.data(), N * H, S, T, V);  // dV = P^T dO
    if (drop)
        for (Index i = 0; i < nA; ++i) dP[i] *= keep(a.seed, i);
    if (o_.return_scores)  // the scores output is A itself
        for (Index n = 0; n < N; ++n) {
            const float* ds = a.dy + n * row + T * Do_;
            float* d = dP.data() + n * H * T * S;
            for (Index i = 0; i < H * T * S; ++i) d[i] += ds[i];
        }
    // Softmax; the mask was an added constant, so the gradient passes it unchanged.
    dZ.resize(static_cast<std::size_t>(nA));
    kernels::eltwise_bwd(Activation::softmax, nullptr, A, dP.data(), dZ.data(), N * H * T, S);
    dQh.resize(static_cast<std::size_t>(N * H * T * K));
    dKh.resize(static_cast<std::size_t>(N * H * S * K));
    kernels::batch_matmul(dZ.data(), false, Kh, false, dQh.data(), N * H, T, S, K);  // dQs = dZ K
    kernels::batch_matmul(dZ.data(), true, Qh, false, dKh.data(), N * H, S, T, K);   // dK = dZ^T Qs
    const float scale = 1.f / std::sqrt(static_cast<float>(K));
    // Projections' backward. Without a key input, the value feeds both the key and the value
    // projections and its gradient is the sum of the two.
    from_heads(dQh.data(), rows.data(), N, T, H, K);
    for (Index i = 0; i < N * T * H * K; ++i) rows[i] *= scale;
    kernels::dense_bwd(a.x[0], p + qk_, rows.data(), a.dx[0], g + qk_, gbias(qb_), N * T, Dq_, H * K);
    from_heads(dVh.data(), rows.data(), N, S, H, V);
    kernels::dense_bwd(a.x[1], p + vk_, rows.data(), a.dx[1], g + vk_, gbias(vb_), N * S, Dv_, H * V);
    from_heads(dKh.data(), rows.data(), N, S, H, K);
    float* dkey = has_key_ ? a.dx[2] : nullptr;
    if (!has_key_ && a.dx[1]) {
        dx_key.resize(static_cast<std::size_t>(N * S * Dk_));
        dkey = dx_key.data();
    }
    kernels::dense_bwd(key_input(a.x), p + kk_, rows.data(), dkey, g + kk_, gbias(kb_), N * S, Dk_, H * K);
    if (!has_key_ && a.dx[1])
        for (Index i = 0; i < N * S * Dv_; ++i) a.dx[1][i] += dx_key[i];
    if (has_mask_ && a.dx.back()) std::fill(a.dx.back(), a.dx.back() + N * T * S, 0.f);
}

}  // namespace maasfin
