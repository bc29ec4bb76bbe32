// LSTM (Keras gate order i, f, c, o), a = activation, ra = recurrent_activation:
//   z = x W + h U + b;  i = ra(z_i), f = ra(z_f), g = a(z_c), o = ra(z_o)
//   c' = f * c + i * g;  h' = o * a(c')
// saved (T steps, N rows, u units): H (T+1) x N x u, C (T+1) x N x u (index 0 = the initial
// state), gates T x N x 4u (activated), A = a(c') T x N x u. H and C hold the carried states:
// a masked row keeps its previous h and c.
// Without masks, initial states, returned states and (in training) dropout, the layer first
// offers the whole sequence to kernels::lstm_fwd (a fused kernel); when that takes it, the loops
// below do not run, saved holds that kernel's state, and its last float (1: fused, 0: loops)
// tells backward which forward filled it.
#include <algorithm>

#include "maasfin/kernels.hpp"
#include "maasfin/layers/recurrent.hpp"
#include "recurrent_math.hpp"

namespace maasfin {

LSTM::LSTM(const RecurrentOptions& o, bool unit_forget_bias) : Recurrent("LSTM", 4, 1, o) {
    if (unit_forget_bias && o.use_bias && o.bias_initializer != Initializer::ones) {
        if (o.bias_initializer != Initializer::zeros)
            throw InvalidArgument(std::string("LSTM: unit_forget_bias=True works with bias_initializer 'zeros' or "
                                              "'ones', got '") +
                                  initializer_name(o.bias_initializer) + "'; pass unit_forget_bias=False");
        bias_arena_init_ = Initializer::unit_forget_bias;
    }
}

namespace {
kernels::LstmSpec fused_spec(Index N, Index T, Index D, Index u, const RecurrentOptions& o) {
    kernels::LstmSpec s;
    s.N = N, s.T = T, s.D = D, s.u = u, s.reverse = o.go_backwards, s.sequences = o.return_sequences;
    s.activation = o.activation, s.recurrent_activation = o.recurrent_activation;
    return s;
}
}  // namespace

bool LSTM::fusable(bool training) const {
    return !o_.has_mask && !has_initial_ && !o_.return_state &&
           (!training || (o_.dropout == 0.f && o_.recurrent_dropout == 0.f));
}

Index LSTM::saved_size(Index N) const {
    return std::max((2 * (T_ + 1) + 4 * T_ + T_) * N * u_, kernels::lstm_saved_size(fused_spec(N, T_, D_, u_, o_))) + 1;
}

void LSTM::forward(const ForwardArgs& a) const {
    const Index N = a.N, T = T_, u = u_, GU = 4 * u;
    float* fused = a.saved ? a.saved + saved_size(N) - 1 : nullptr;
    if (fusable(a.training) &&
        kernels::lstm_fwd(fused_spec(N, T, D_, u, o_), a.x[0], a.params + kernel_, a.params + recurrent_,
                          o_.use_bias ? a.params + bias_ : nullptr, a.y, a.saved)) {
        if (fused) *fused = 1.f;
        return;
    }
    if (fused) *fused = 0.f;
    thread_local FloatVec state, P, Z;
    float* H = a.saved;
    if (!H) {
        state.resize(static_cast<std::size_t>(saved_size(N)));
        H = state.data();
    }
    float* C = H + (T + 1) * N * u;
    float* gates = C + (T + 1) * N * u;
    float* A = gates + T * N * GU;
    P.resize(static_cast<std::size_t>(N * T * GU));
    Z.resize(static_cast<std::size_t>(N * GU));
    project(a, P.data());
    start_state(a, 0, H);
    start_state(a, 1, C);
    const float* m = mask(a.x);
    const Activation ac = o_.activation, ra = o_.recurrent_activation;
    for (Index s = 0; s < T; ++s) {
        const float* h_prev = H + s * N * u;
        const float* c_prev = C + s * N * u;
        if (s > 0 || first_product())
            recurrent_fwd(a.params, h_prev, nullptr, Z.data(), N, a.training, a.seed);
        else
            std::fill(Z.begin(), Z.end(), 0.f);
        // Gate pre-activations, then the activations in vectorised kernel calls.
        float* g_s = gates + s * N * GU;
        for (Index n = 0; n < N; ++n) {
            const float* p = P.data() + (n * T + t(s)) * GU;
            float* z = Z.data() + n * GU;
            for (Index k = 0; k < GU; ++k) z[k] += p[k];
            float* g = g_s + n * GU;
            kernels::eltwise_fwd(ra, z, g, 1, 2 * u);              // i, f
            kernels::eltwise_fwd(ac, z + 2 * u, g + 2 * u, 1, u);  // c candidate
            kernels::eltwise_fwd(ra, z + 3 * u, g + 3 * u, 1, u);  // o
        }
        float* c_s = C + (s + 1) * N * u;
        for (Index n = 0; n < N; ++n) {
            const float* g = g_s + n * GU;
            const float* cp = c_prev + n * u;
            float* c = c_s + n * u;
            for (Index j = 0; j < u; ++j) c[j] = g[u + j] * cp[j] + g[j] * g[2 * u + j];
        }
        float* a_s = A + s * N * u;
        kernels::eltwise_fwd(ac, c_s, a_s, N, u);
        float* h_s = H + (s + 1) * N * u;
        for (Index n = 0; n < N; ++n) {
            const float* o = g_s + n * GU + 3 * u;
            for (Index j = 0; j < u; ++j) h_s[n * u + j] = o[j] * a_s[n * u + j];
        }
        carry(m, s, h_prev, h_s, N);
        carry(m, s, c_prev, c_s, N);
        emit(h_s, m, s, a.y, N);
    }
    emit_state(H + T * N * u, 0, a.y, N);
    emit_state(C + T * N * u, 1, a.y, N);
}

void LSTM::backward(const BackwardArgs& a) const {
    const Index N = a.N, T = T_, u = u_, GU = 4 * u;
    if (a.saved[saved_size(N) - 1] == 1.f) {
        kernels::lstm_bwd(fused_spec(N, T, D_, u, o_), a.x[0], a.params + kernel_, a.params + recurrent_,
                          o_.use_bias ? a.params + bias_ : nullptr, a.saved, a.dy, a.dx[0], a.grads + kernel_,
                          a.grads + recurrent_, o_.use_bias ? a.grads + bias_ : nullptr);
        return;
    }
    const float* H = a.saved;
    const float* C = H + (T + 1) * N * u;
    const float* gates = C + (T + 1) * N * u;
    const float* A = gates + T * N * GU;
    thread_local FloatVec UT, dG, dh, dc, dh_carry;
    recurrent_transposed(a.params, UT);
    dG.resize(static_cast<std::size_t>(T * N * GU));
    dh.assign(static_cast<std::size_t>(N * u), 0.f);
    dc.assign(static_cast<std::size_t>(N * u), 0.f);
    dh_carry.assign(static_cast<std::size_t>(N * u), 0.f);
    add_dstate(a.dy, 0, dh.data(), N);
    add_dstate(a.dy, 1, dc.data(), N);
    const float* m = mask(a.x);
    const Activation ac = o_.activation, ra = o_.recurrent_activation;
    for (Index s = T - 1; s >= 0; --s) {
        add_dy(a.dy, m, s, dh.data(), N);
        for (Index n = 0; n < N; ++n) {
            if (!takes(m, n, s)) {  // a masked step passes dh and dc through unchanged
                std::fill(dG.data() + (s * N + n) * GU, dG.data() + (s * N + n + 1) * GU, 0.f);
                std::copy(dh.data() + n * u, dh.data() + (n + 1) * u, dh_carry.data() + n * u);
                continue;
            }
            std::fill(dh_carry.data() + n * u, dh_carry.data() + (n + 1) * u, 0.f);
            const float* g = gates + (s * N + n) * GU;
            const float* c_prev = C + (s * N + n) * u;
            const float* ach = A + (s * N + n) * u;
            float* d = dG.data() + (s * N + n) * GU;
            for (Index j = 0; j < u; ++j) {
                const Index k = n * u + j;
                const float i_ = g[j], f_ = g[u + j], g_ = g[2 * u + j], o_g = g[3 * u + j];
                const float d_o = dh[k] * ach[j];
                const float d_c = dc[k] + dh[k] * o_g * recurrent::grad(ac, ach[j]);
                d[j] = d_c * g_ * recurrent::grad(ra, i_);
                d[u + j] = d_c * c_prev[j] * recurrent::grad(ra, f_);
                d[2 * u + j] = d_c * i_ * recurrent::grad(ac, g_);
                d[3 * u + j] = d_o * recurrent::grad(ra, o_g);
                dc[k] = d_c * f_;
            }
        }
        if (s > 0 || first_product()) {  // dh_prev = dz . U^T (+ what masked rows carry)
            recurrent_bwd(a, UT, dG.data() + s * N * GU, dh.data());
            if (m)
                for (Index k = 0; k < N * u; ++k) dh[k] += dh_carry[k];
        }
    }
    backprop_recurrent(a, H, dG.data(), nullptr);
    backprop_inputs(a, dG.data());
    finish_inputs(a, dh.data(), dc.data());
}

}  // namespace maasfin
