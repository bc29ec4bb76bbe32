// GRU with reset_after=False (Keras's original GRU; gate order z, r, h), a = activation,
// ra = recurrent_activation, bias (3u,) on the input side only, recurrent kernel U = [U_z U_r U_h]:
//   p = x W + b
//   z = ra(p_z + h_z U_z), r = ra(p_r + h_r U_r), hh = a(p_h + (r * h_h) U_h);  h' = z * h + (1 - z) * hh
// where h_g = h * (recurrent dropout mask of gate g) in training with recurrent_dropout, else h.
// saved (T steps, N rows, u units): H (T+1) x N x u (index 0 = the initial state; carried over
// masked steps), gates T x N x 3u (z, r, hh), RH = r * h (undropped) T x N x u.
#include <algorithm>
#include <cstring>

#include "maasfin/kernels.hpp"
#include "maasfin/layers/recurrent.hpp"
#include "recurrent_math.hpp"

namespace maasfin {

namespace {
// Column block g (width u) of a rows x 3u matrix, contiguous.
void take_cols(const float* W, Index rows, Index u, Index g, float* out) {
    for (Index i = 0; i < rows; ++i)
        std::memcpy(out + i * u, W + i * 3 * u + g * u, sizeof(float) * static_cast<std::size_t>(u));
}
}  // namespace

void GRU::forward_reset_before(const ForwardArgs& a) const {
    const Index N = a.N, T = T_, u = u_, GU = 3 * u;
    thread_local FloatVec state, P, Ug, Uzr, hg, Qg, Qzr;
    float* H = a.saved;
    if (!H) {
        state.resize(static_cast<std::size_t>(saved_size(N)));
        H = state.data();
    }
    float* gates = H + (T + 1) * N * u;
    float* RH = gates + T * N * GU;
    P.resize(static_cast<std::size_t>(N * T * GU));
    Ug.resize(static_cast<std::size_t>(3 * u * u));
    for (Index g = 0; g < 3; ++g) take_cols(a.params + recurrent_, u, u, g, Ug.data() + g * u * u);
    Uzr.resize(static_cast<std::size_t>(2 * u * u));  // U's z and r columns, u x 2u
    for (Index i = 0; i < u; ++i)
        std::memcpy(Uzr.data() + i * 2 * u, a.params + recurrent_ + i * GU,
                    sizeof(float) * static_cast<std::size_t>(2 * u));
    hg.resize(static_cast<std::size_t>(N * u));
    Qg.resize(static_cast<std::size_t>(3 * N * u));
    Qzr.resize(static_cast<std::size_t>(2 * N * u));
    project(a, P.data());
    start_state(a, 0, H);
    const float* m = mask(a.x);
    const bool drop = drops_state(a.training);
    const float* hs = drop ? drop_scales(true, a.seed, N) : nullptr;  // N x 3 x u
    // hg = h * mask_g (or h): the input of U_g.
    auto dropped = [&](const float* h, Index g) {
        for (Index n = 0; n < N; ++n)
            for (Index j = 0; j < u; ++j)
                hg[static_cast<std::size_t>(n * u + j)] = hs ? h[n * u + j] * hs[(n * 3 + g) * u + j] : h[n * u + j];
    };
    const Activation ac = o_.activation, ra = o_.recurrent_activation;
    for (Index s = 0; s < T; ++s) {
        const float* h_prev = H + s * N * u;
        if (!hs) {  // z and r: one product h . [U_z U_r] (N x 2u)
            kernels::dense_fwd(h_prev, Uzr.data(), nullptr, Qzr.data(), nullptr, N, u, 2 * u, Activation::linear);
        } else {  // a dropout mask per gate
            for (Index g = 0; g < 2; ++g) {
                dropped(h_prev, g);
                kernels::dense_fwd(hg.data(), Ug.data() + g * u * u, nullptr, Qg.data() + g * N * u, nullptr, N, u, u,
                                   Activation::linear);
                for (Index n = 0; n < N; ++n)
                    std::memcpy(Qzr.data() + n * 2 * u + g * u, Qg.data() + (g * N + n) * u,
                                sizeof(float) * static_cast<std::size_t>(u));
            }
        }
        float* g_s = gates + s * N * GU;
        float* rh = RH + s * N * u;
        for (Index n = 0; n < N; ++n) {
            const float* p = P.data() + (n * T + t(s)) * GU;
            float* g = g_s + n * GU;
            for (Index j = 0; j < 2 * u; ++j) g[j] = p[j] + Qzr[static_cast<std::size_t>(n * 2 * u + j)];
            kernels::eltwise_fwd(ra, g, g, 1, 2 * u);  // z, r
            for (Index j = 0; j < u; ++j) rh[n * u + j] = g[u + j] * h_prev[n * u + j];
        }
        if (hs) dropped(rh, 2);
        kernels::dense_fwd(hs ? hg.data() : rh, Ug.data() + 2 * u * u, nullptr, Qg.data() + 2 * N * u, nullptr, N, u, u,
                           Activation::linear);
        float* h_s = H + (s + 1) * N * u;
        for (Index n = 0; n < N; ++n) {
            const float* p = P.data() + (n * T + t(s)) * GU;
            float* g = g_s + n * GU;
            for (Index j = 0; j < u; ++j)
                g[2 * u + j] = p[2 * u + j] + Qg[static_cast<std::size_t>(2 * N * u + n * u + j)];
            kernels::eltwise_fwd(ac, g + 2 * u, g + 2 * u, 1, u);  // hh
            for (Index j = 0; j < u; ++j) h_s[n * u + j] = g[j] * h_prev[n * u + j] + (1.f - g[j]) * g[2 * u + j];
        }
        carry(m, s, h_prev, h_s, N);
        emit(h_s, m, s, a.y, N);
    }
    emit_state(H + T * N * u, 0, a.y, N);
}

// dP (T x N x 3u, for W, b, x) = [dz, dr, dhh] (pre-activation); the recurrent kernel's blocks get
// dU_z = h_z^T dz, dU_r = h_r^T dr, dU_h = (r*h)_h^T dhh over all steps.
void GRU::backward_reset_before(const BackwardArgs& a) const {
    const Index N = a.N, T = T_, u = u_, GU = 3 * u, TN = T * N;
    const float* H = a.saved;
    const float* gates = H + (T + 1) * N * u;
    const float* RH = gates + T * N * GU;
    thread_local FloatVec UT, dP, dG, dh, dh_direct, drh, tmp, Hg, dU, dZR;
    recurrent_transposed(a.params, UT);  // rows [g*u, (g+1)*u) are U_g^T
    dP.resize(static_cast<std::size_t>(TN * GU));
    dG.resize(static_cast<std::size_t>(3 * TN * u));  // per gate block g: T x N x u, step order
    dh.assign(static_cast<std::size_t>(N * u), 0.f);
    dh_direct.resize(static_cast<std::size_t>(N * u));
    drh.resize(static_cast<std::size_t>(N * u));
    tmp.resize(static_cast<std::size_t>(N * u));
    add_dstate(a.dy, 0, dh.data(), N);
    const float* m = mask(a.x);
    const float* hs = drops_state(a.training) ? drop_scales(true, a.seed, N) : nullptr;  // N x 3 x u
    auto rk = [&](Index g, Index n, Index j) { return hs ? hs[(n * 3 + g) * u + j] : 1.f; };
    const Activation ac = o_.activation, ra = o_.recurrent_activation;
    for (Index s = T - 1; s >= 0; --s) {
        add_dy(a.dy, m, s, dh.data(), N);
        const float* hp_s = H + s * N * u;
        float* dz_s = dG.data() + (0 * TN + s * N) * u;
        float* dr_s = dG.data() + (1 * TN + s * N) * u;
        float* dhh_s = dG.data() + (2 * TN + s * N) * u;
        for (Index n = 0; n < N; ++n) {
            const float* g = gates + (s * N + n) * GU;
            const float* hp = hp_s + n * u;
            const bool on = takes(m, n, s);  // a masked step passes dh through unchanged
            for (Index j = 0; j < u; ++j) {
                const Index k = n * u + j;
                const float z = g[j], hh = g[2 * u + j];
                dz_s[k] = on ? dh[k] * (hp[j] - hh) * recurrent::grad(ra, z) : 0.f;
                dhh_s[k] = on ? dh[k] * (1.f - z) * recurrent::grad(ac, hh) : 0.f;
                dh_direct[static_cast<std::size_t>(k)] = on ? dh[k] * z : dh[k];
            }
        }
        // d(r*h) = (dhh U_h^T) * mask_h; then dr and the direct path r * d(r*h).
        kernels::dense_fwd(dhh_s, UT.data() + 2 * u * u, nullptr, drh.data(), nullptr, N, u, u, Activation::linear);
        for (Index n = 0; n < N; ++n) {
            const float* g = gates + (s * N + n) * GU;
            for (Index j = 0; j < u; ++j) {
                const Index k = n * u + j;
                const float d = drh[static_cast<std::size_t>(k)] * rk(2, n, j);
                dr_s[k] = d * hp_s[k] * recurrent::grad(ra, g[u + j]);
                dh_direct[static_cast<std::size_t>(k)] += d * g[u + j];
            }
        }
        for (Index n = 0; n < N; ++n) {
            float* dp = dP.data() + (s * N + n) * GU;
            for (Index j = 0; j < u; ++j) {
                dp[j] = dz_s[n * u + j];
                dp[u + j] = dr_s[n * u + j];
                dp[2 * u + j] = dhh_s[n * u + j];
            }
        }
        // dh_prev = sum over z, r of (dG_g U_g^T) * mask_g + the direct paths.
        std::copy(dh_direct.begin(), dh_direct.end(), dh.begin());
        if (!hs) {  // one product [dz dr] . [U_z U_r]^T (rows [0, 2u) of U^T)
            dZR.resize(static_cast<std::size_t>(2 * N * u));
            for (Index n = 0; n < N; ++n) {
                std::memcpy(dZR.data() + n * 2 * u, dz_s + n * u, sizeof(float) * static_cast<std::size_t>(u));
                std::memcpy(dZR.data() + n * 2 * u + u, dr_s + n * u, sizeof(float) * static_cast<std::size_t>(u));
            }
            kernels::dense_fwd(dZR.data(), UT.data(), nullptr, tmp.data(), nullptr, N, 2 * u, u, Activation::linear);
            for (Index k = 0; k < N * u; ++k) dh[k] += tmp[static_cast<std::size_t>(k)];
        } else {
            for (Index gi = 0; gi < 2; ++gi) {
                kernels::dense_fwd(dG.data() + (gi * TN + s * N) * u, UT.data() + gi * u * u, nullptr, tmp.data(),
                                   nullptr, N, u, u, Activation::linear);
                for (Index n = 0; n < N; ++n)
                    for (Index j = 0; j < u; ++j)
                        dh[n * u + j] += tmp[static_cast<std::size_t>(n * u + j)] * rk(gi, n, j);
            }
        }
    }
    // Recurrent kernel: one product over all steps per gate block (z and r together without dropout).
    Hg.resize(static_cast<std::size_t>(TN * u));
    dU.resize(static_cast<std::size_t>(2 * u * u));
    float* dst = a.grads + recurrent_;
    for (Index gi = hs ? 0 : 1; gi < 3; ++gi) {
        const bool zr = !hs && gi == 1;  // the z and r blocks in one product
        const Index width = zr ? 2 * u : u;
        const float* src = gi < 2 ? H : RH;  // H's first T blocks are the previous states
        const float* input = src;
        if (hs) {
            for (Index s = 0; s < T; ++s)
                for (Index n = 0; n < N; ++n)
                    for (Index j = 0; j < u; ++j)
                        Hg[static_cast<std::size_t>((s * N + n) * u + j)] = src[(s * N + n) * u + j] * rk(gi, n, j);
            input = Hg.data();
        }
        const float* d = dG.data() + gi * TN * u;
        if (zr) {  // [dz dr] over all steps, TN x 2u
            dZR.resize(static_cast<std::size_t>(2 * TN * u));
            for (Index r = 0; r < TN; ++r) {
                std::memcpy(dZR.data() + r * 2 * u, dG.data() + r * u, sizeof(float) * static_cast<std::size_t>(u));
                std::memcpy(dZR.data() + r * 2 * u + u, dG.data() + (TN + r) * u,
                            sizeof(float) * static_cast<std::size_t>(u));
            }
            d = dZR.data();
        }
        kernels::dense_bwd(input, UT.data(), d, nullptr, dU.data(), nullptr, TN, u, width);
        const Index col = zr ? 0 : gi * u;
        for (Index i = 0; i < u; ++i)
            std::memcpy(dst + i * GU + col, dU.data() + i * width, sizeof(float) * static_cast<std::size_t>(width));
    }
    backprop_inputs(a, dP.data());
    finish_inputs(a, dh.data(), nullptr);
}

}  // namespace maasfin
