// GRU with reset_after=True (Keras 3's default; gate order z, r, h), a = activation,
// ra = recurrent_activation, bias rows [input; recurrent]:
//   p = x W + b_in;  q = h U + b_rec
//   z = ra(p_z + q_z), r = ra(p_r + q_r), hh = a(p_h + r * q_h);  h' = z * h + (1 - z) * hh
// saved (T steps, N rows, u units): H (T+1) x N x u (index 0 = the zero initial state),
// gates T x N x 3u (z, r, hh), Q_h T x N x u.
#include <algorithm>

#include "maasfin/kernels.hpp"
#include "maasfin/layers/recurrent.hpp"
#include "recurrent_math.hpp"

namespace maasfin {

GRU::GRU(const RecurrentOptions& o) : Recurrent("GRU", 3, 2, o) { extra_config_ = ", \"reset_after\": true"; }

Index GRU::saved_size(Index N) const { return ((T_ + 1) + 3 * T_ + T_) * N * u_; }

void GRU::forward(const ForwardArgs& a) const {
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
    std::fill(H, H + N * u, 0.f);
    const float* b_rec = o_.use_bias ? a.params + bias_ + GU : nullptr;
    const Activation ac = o_.activation, ra = o_.recurrent_activation;
    for (Index s = 0; s < T; ++s) {
        const float* h_prev = H + s * N * u;
        if (s > 0) {
            kernels::dense_fwd(h_prev, a.params + recurrent_, b_rec, Q.data(), nullptr, N, u, GU, Activation::linear);
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
        emit(H + (s + 1) * N * u, s, a.y, N);
    }
}

// dP (for W, b_in, x) = [dz, dr, dhh]; dQ (for U, b_rec, h) = [dz, dr, dhh * r] (pre-activation).
void GRU::backward(const BackwardArgs& a) const {
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
    const Activation ac = o_.activation, ra = o_.recurrent_activation;
    for (Index s = T - 1; s >= 0; --s) {
        add_dy(a.dy, s, dh.data(), N);
        for (Index n = 0; n < N; ++n) {
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
        if (s > 0) {  // dh_prev = dq . U^T + dh * z
            kernels::dense_fwd(dQ.data() + s * N * GU, UT.data(), nullptr, dh.data(), nullptr, N, GU, u,
                               Activation::linear);
            for (Index k = 0; k < N * u; ++k) dh[k] += dh_direct[k];
        }
    }
    backprop_recurrent(a, H, dQ.data(), o_.use_bias ? a.grads + bias_ + GU : nullptr);
    backprop_inputs(a, dP.data());
}

}  // namespace maasfin
