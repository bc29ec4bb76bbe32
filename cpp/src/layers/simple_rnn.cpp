// SimpleRNN: h' = a(x W + h U + b). saved: H (T+1) x N x u (index 0 = the initial state; carried
// over masked steps).
#include <algorithm>

#include "maasfin/kernels.hpp"
#include "maasfin/layers/recurrent.hpp"
#include "recurrent_math.hpp"

namespace maasfin {

SimpleRNN::SimpleRNN(const RecurrentOptions& o) : Recurrent("SimpleRNN", 1, 1, o) {}

Index SimpleRNN::saved_size(Index N) const { return (T_ + 1) * N * u_; }

void SimpleRNN::forward(const ForwardArgs& a) const {
    const Index N = a.N, T = T_, u = u_;
    thread_local FloatVec state, P, Z;
    float* H = a.saved;
    if (!H) {
        state.resize(static_cast<std::size_t>(saved_size(N)));
        H = state.data();
    }
    P.resize(static_cast<std::size_t>(N * T * u));
    Z.resize(static_cast<std::size_t>(N * u));
    project(a, P.data());
    start_state(a, 0, H);
    const float* m = mask(a.x);
    for (Index s = 0; s < T; ++s) {
        if (s > 0 || first_product())
            recurrent_fwd(a.params, H + s * N * u, nullptr, Z.data(), N, a.training, a.seed);
        else
            std::fill(Z.begin(), Z.end(), 0.f);
        float* h = H + (s + 1) * N * u;
        for (Index n = 0; n < N; ++n) {
            const float* p = P.data() + (n * T + t(s)) * u;
            for (Index j = 0; j < u; ++j) h[n * u + j] = p[j] + Z[static_cast<std::size_t>(n * u + j)];
        }
        kernels::eltwise_fwd(o_.activation, h, h, N, u);
        carry(m, s, H + s * N * u, h, N);
        emit(h, m, s, a.y, N);
    }
    emit_state(H + T * N * u, 0, a.y, N);
}

void SimpleRNN::backward(const BackwardArgs& a) const {
    const Index N = a.N, T = T_, u = u_;
    const float* H = a.saved;
    thread_local FloatVec UT, dZ, dh, dh_carry;
    recurrent_transposed(a.params, UT);
    dZ.resize(static_cast<std::size_t>(T * N * u));
    dh.assign(static_cast<std::size_t>(N * u), 0.f);
    dh_carry.assign(static_cast<std::size_t>(N * u), 0.f);
    add_dstate(a.dy, 0, dh.data(), N);
    const float* m = mask(a.x);
    for (Index s = T - 1; s >= 0; --s) {
        add_dy(a.dy, m, s, dh.data(), N);
        const float* h = H + (s + 1) * N * u;
        float* dz = dZ.data() + s * N * u;
        for (Index n = 0; n < N; ++n) {
            const bool on = takes(m, n, s);  // a masked step passes dh through unchanged
            for (Index j = 0; j < u; ++j) {
                const Index k = n * u + j;
                dz[k] = on ? dh[k] * recurrent::grad(o_.activation, h[k]) : 0.f;
                dh_carry[k] = on ? 0.f : dh[k];
            }
        }
        if (s > 0 || first_product()) {
            recurrent_bwd(a, UT, dz, dh.data());
            if (m)
                for (Index k = 0; k < N * u; ++k) dh[k] += dh_carry[k];
        }
    }
    backprop_recurrent(a, H, dZ.data(), nullptr);
    backprop_inputs(a, dZ.data());
    finish_inputs(a, dh.data(), nullptr);
}

}  // namespace maasfin
