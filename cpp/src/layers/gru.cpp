// GRU with reset_after=True (Keras 3's default; gate order z, r, h), a = activation,
// ra = recurrent_activation, bias rows [input; recurrent]:
//   p = x W + b_in;  q = h U + b_rec
//   z = ra(p_z + q_z), r = ra(p_r + q_r), hh = a(p_h + r * q_h);  h' = z * h + (1 - z) * hh
// saved (T steps, N rows, u units): H (T+1) x N x u (index 0 = the initial state; carried over
// masked steps),
// gates T x N x 3u (z, r, hh), Q_h T x N x u.
#include <algorithm>

#include "maasfin/kernels.hpp"
#include "maasfin/layers/recurrent.hpp"
#include "recurrent_math.hpp"

namespace maasfin {

GRU::GRU(const RecurrentOptions& o, bool reset_after)
    : Recurrent("GRU", 3, reset_after ? 2 : 1, o), reset_after_(reset_after) {}

Index GRU::saved_size(Index N) const { return ((T_ + 1) + 3 * T_ + T_) * N * u_; }

void GRU::forward(const ForwardArgs& a) const {
    if (!reset_after_) return forward_reset_before(a);
    const Index N = a.N, T = T_, u = u_, GU = 3 * u;
    thread_local FloatVec state, P, Q;
    float* H = a.saved;
    if (!H) {
        state.resize(static_cast<std::size_t>(saved_size(N)));
        H = state.data();
    }
    float* gates = H + (T + 1) * N * u;
    float* Qh = gates + T * N * GU;
    P.resize(static_cast<std::size_t>(N * T * GU));
    Q.resize(static_cast<std::size_t>(N * GU));
    project(a, P.data());
    start_state(a, 0, H);
    const float* m = mask(a.x);
    const float* b_rec = o_.use_bias ? a.params + bias_ + GU : nullptr;
    const Activation ac = o_.activation, ra = o_.recurrent_activation;
    for (Index s = 0; s < T; ++s) {
        const float* h_prev = H + s * N * u;
        if (s > 0 || first_product()) {
            recurrent_fwd(a.params, h_prev, b_rec, Q.data(), N, a.training, a.seed);
        } else {
            for (Index n = 0; n < N; ++n)
                for (Index j = 0; j < GU; ++j) Q[static_cast<std::size_t>(n * GU + j)] = b_rec ? b_rec[j] : 0.f;
        }
        // Pre-activations, then the activations in vectorised kernel calls.
        for (Index n = 0; n < N; ++n) {
            const float* p = P.data() + (n * T + t(s)) * GU;
            float* q = Q.data() + n * GU;
            const float* hp = h_prev + n * u;
            float* g = gates + (s * N + n) * GU;
            float* qh = Qh + (s * N + n) * u;
            float* h = H + ((s + 1) * N + n) * u;
            for (Index k = 0; k < 2 * u; ++k) q[k] += p[k];
            kernels::eltwise_fwd(ra, q, g, 1, 2 * u);  // z, r
            for (Index j = 0; j < u; ++j) {
                qh[j] = q[2 * u + j];
                g[2 * u + j] = p[2 * u + j] + g[u + j] * qh[j];
            }
            kernels::eltwise_fwd(ac, g + 2 * u, g + 2 * u, 1, u);  // hh
            for (Index j = 0; j < u; ++j) h[j] = g[j] * hp[j] + (1.f - g[j]) * g[2 * u + j];
        }
        carry(m, s, h_prev, H + (s + 1) * N * u, N);
        emit(H + (s + 1) * N * u, m, s, a.y, N);
    }
    emit_state(H + T * N * u, 0, a.y, N);
}

// dP (for W, b_in, x) = [dz, dr, dhh]; dQ (for U, b_rec, h) = [dz, dr, dhh * r] (pre-activation).
void GRU::backward(const BackwardArgs& a) const {
    if (!reset_after_) return backward_reset_before(a);
    const Index N = a.N, T = T_, u = u_, GU = 3 * u;
    const float* H = a.saved;
    const float* gates = H + (T + 1) * N * u;
    const float* Qh = gates + T * N * GU;
    thread_local FloatVec UT, dP, dQ, dh, dh_direct;
    recurrent_transposed(a.params, UT);
    dP.resize(static_cast<std::size_t>(T * N * GU));
    dQ.resize(static_cast<std::size_t>(T * N * GU));
    dh.assign(static_cast<std::size_t>(N * u), 0.f);
    dh_direct.resize(static_cast<std::size_t>(N * u));
    add_dstate(a.dy, 0, dh.data(), N);
    const float* m = mask(a.x);
    const Activation ac = o_.activation, ra = o_.recurrent_activation;
    for (Index s = T - 1; s >= 0; --s) {
        add_dy(a.dy, m, s, dh.data(), N);
        for (Index n = 0; n < N; ++n) {
            if (!takes(m, n, s)) {  // a masked step passes dh through unchanged
                std::fill(dP.data() + (s * N + n) * GU, dP.data() + (s * N + n + 1) * GU, 0.f);
                std::fill(dQ.data() + (s * N + n) * GU, dQ.data() + (s * N + n + 1) * GU, 0.f);
                std::copy(dh.data() + n * u, dh.data() + (n + 1) * u, dh_direct.data() + n * u);
                continue;
            }
            const float* g = gates + (s * N + n) * GU;
            const float* qh = Qh + (s * N + n) * u;
            const float* hp = H + (s * N + n) * u;
            float* dp = dP.data() + (s * N + n) * GU;
            float* dq = dQ.data() + (s * N + n) * GU;
            for (Index j = 0; j < u; ++j) {
                const Index k = n * u + j;
                const float z = g[j], r = g[u + j], hh = g[2 * u + j];
                const float dz = dh[k] * (hp[j] - hh) * recurrent::grad(ra, z);
                const float dhh = dh[k] * (1.f - z) * recurrent::grad(ac, hh);
                const float dr = dhh * qh[j] * recurrent::grad(ra, r);
                dp[j] = dq[j] = dz;
                dp[u + j] = dq[u + j] = dr;
                dp[2 * u + j] = dhh;
                dq[2 * u + j] = dhh * r;
                dh_direct[static_cast<std::size_t>(k)] = dh[k] * z;
            }
        }
        if (s > 0 || first_product()) {  // dh_prev = dq . U^T + dh * z
            recurrent_bwd(a, UT, dQ.data() + s * N * GU, dh.data());
            for (Index k = 0; k < N * u; ++k) dh[k] += dh_direct[k];
        }
    }
    backprop_recurrent(a, H, dQ.data(), o_.use_bias ? a.grads + bias_ + GU : nullptr);
    backprop_inputs(a, dP.data());
    finish_inputs(a, dh.data(), nullptr);
}

}  // namespace maasfin
