// The parts every recurrent layer shares: shapes, parameters, the input projection and its
// gradient, and output placement. Buffers in step order are T x N x width; x and y are
// N x T x width (batch-major, as the user gives them).
#include "maasfin/layers/recurrent.hpp"

#include <algorithm>
#include <cstring>

#include "maasfin/kernels.hpp"
#include "maasfin/rng.hpp"
#include "recurrent_math.hpp"

namespace maasfin {

namespace {
// Columns [g*u, (g+1)*u) of a rows x (G*u) matrix, as a contiguous rows x u block.
void gate_block(const float* W, Index rows, Index GU, Index g, Index u, FloatVec& out) {
    out.resize(static_cast<std::size_t>(rows * u));
    for (Index i = 0; i < rows; ++i)
        std::memcpy(out.data() + i * u, W + i * GU + g * u, sizeof(float) * static_cast<std::size_t>(u));
}
// dst[:, g*u:(g+1)*u] = block (rows x u), or += with add.
void put_block(const float* block, Index rows, Index GU, Index g, Index u, float* dst, bool add = false) {
    for (Index i = 0; i < rows; ++i)
        for (Index j = 0; j < u; ++j) {
            float& d = dst[i * GU + g * u + j];
            d = add ? d + block[i * u + j] : block[i * u + j];
        }
}
}  // namespace

// The scales are a pure function of (step seed, layer seed, gate block, row, column); each thread
// keeps the last batch's table per kind (input / recurrent), so a time loop hashes once per batch.
const float* Recurrent::drop_scales(bool recurrent, std::uint64_t seed, Index N) const {
    struct Table {
        const Recurrent* layer = nullptr;
        std::uint64_t step_seed = 0, layer_seed = 0;
        float rate = -1.f;
        Index width = 0, count = 0, rows = 0;
        FloatVec scale;  // rows x count x width
    };
    thread_local Table tables[2];
    Table& c = tables[recurrent ? 1 : 0];
    const float rate = recurrent ? o_.recurrent_dropout : o_.dropout;
    const Index width = recurrent ? u_ : D_, count = mask_count();
    if (c.layer == this && c.step_seed == seed && c.layer_seed == o_.seed && c.rate == rate && c.width == width &&
        c.count == count && c.rows == N)
        return c.scale.data();
    c.layer = this;
    c.step_seed = seed;
    c.layer_seed = o_.seed;
    c.rate = rate;
    c.width = width;
    c.count = count;
    c.rows = N;
    c.scale.resize(static_cast<std::size_t>(N * count * width));
    for (Index k = 0; k < count; ++k) {
        const std::uint64_t stream = rng::hash(o_.seed, recurrent ? 2 : 1, static_cast<std::uint64_t>(k));
        for (Index r = 0; r < N; ++r)
            for (Index j = 0; j < width; ++j)
                c.scale[static_cast<std::size_t>((r * count + k) * width + j)] =
                    rng::uniform(seed, stream, static_cast<std::uint64_t>(r * width + j)) >= rate ? 1.f / (1.f - rate)
                                                                                                  : 0.f;
    }
    return c.scale.data();
}

Recurrent::Recurrent(std::string kind, Index gates, Index bias_rows, const RecurrentOptions& o)
    : kind_(std::move(kind)), G_(gates), bias_rows_(bias_rows), o_(o), bias_arena_init_(o.bias_initializer) {
    if (o.units <= 0)
        throw InvalidArgument(kind_ + ": units must be a positive integer, got " + std::to_string(o.units));
    if (!(o.dropout >= 0.f && o.dropout < 1.f) || !(o.recurrent_dropout >= 0.f && o.recurrent_dropout < 1.f))
        throw InvalidArgument(kind_ + ": dropout and recurrent_dropout must be in [0, 1), got " +
                              std::to_string(o.dropout) + " and " + std::to_string(o.recurrent_dropout));
    for (Activation a : {o.activation, o.recurrent_activation})
        if (!recurrent::supported(a))
            throw InvalidArgument(kind_ + ": activation '" + activation_name(a) +
                                  "' is not supported in recurrent layers (tanh, sigmoid, relu, linear)");
}

// (T, D_in) [, mask (T,)] [, states (u,)...] -> (T, u) with return_sequences, else (u,); with
// return_state the final states follow in the same row: (T*u + S*u,) or ((1 + S)*u,).
Shape Recurrent::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    const std::string where = kind_ + " '" + name_ + "'";
    if (inputs.empty() || inputs[0].size() != 2)
        throw InvalidArgument(where + " expects one input of shape (timesteps, features) per sample, got " +
                              (inputs.empty() ? std::string("none") : shape_str(inputs[0])));
    T_ = inputs[0][0];
    D_ = inputs[0][1];
    u_ = o_.units;
    const Index S = num_states();
    const std::size_t first_state = o_.has_mask ? 2 : 1;
    if (inputs.size() != first_state && inputs.size() != first_state + static_cast<std::size_t>(S))
        throw InvalidArgument(where + ": expected the sequence" + std::string(o_.has_mask ? ", its mask" : "") +
                              " and optionally " + std::to_string(S) + " initial state" + (S > 1 ? "s" : "") +
                              ", got " + std::to_string(inputs.size()) + " inputs");
    if (o_.has_mask && inputs[1] != Shape{T_})
        throw InvalidArgument(where + ": the mask must have shape (batch, " + std::to_string(T_) +
                              ") to match the input " + shape_str(inputs[0]) + ", got " + shape_str(inputs[1]));
    has_initial_ = inputs.size() > first_state;
    for (std::size_t k = first_state; k < inputs.size(); ++k)
        if (inputs[k] != Shape{u_})
            throw InvalidArgument(where + ": initial_state[" + std::to_string(k - first_state) +
                                  "] must have shape (batch, " + std::to_string(u_) +
                                  ") for units=" + std::to_string(u_) + ", got " + shape_str(inputs[k]));
    kernel_ = params.add("kernel", {D_, G_ * u_}, o_.kernel_initializer);
    recurrent_ = params.add("recurrent_kernel", {u_, G_ * u_}, o_.recurrent_initializer);
    if (o_.use_bias)
        bias_ = params.add("bias", bias_rows_ == 1 ? Shape{G_ * u_} : Shape{bias_rows_, G_ * u_}, bias_arena_init_);
    out_numel_ = o_.return_sequences ? T_ * u_ : u_;
    if (o_.return_state) return Shape{y_row()};
    return o_.return_sequences ? Shape{T_, u_} : Shape{u_};
}

void Recurrent::project(const ForwardArgs& a, float* P) const {
    const Index NT = a.N * T_, GU = G_ * u_;
    const float* b = o_.use_bias ? a.params + bias_ : nullptr;
    if (!drops_inputs(a.training)) {
        kernels::dense_fwd(a.x[0], a.params + kernel_, b, P, nullptr, NT, D_, GU, Activation::linear);
        return;
    }
    thread_local FloatVec xm, Wg, Pg;
    xm.resize(static_cast<std::size_t>(NT * D_));
    const Index M = mask_count();
    const float* xs = drop_scales(false, a.seed, a.N);
    for (Index g = 0; g < M; ++g) {
        for (Index n = 0; n < a.N; ++n)
            for (Index d = 0; d < D_; ++d) {
                const float k = xs[(n * M + g) * D_ + d];
                for (Index t = 0; t < T_; ++t)
                    xm[static_cast<std::size_t>((n * T_ + t) * D_ + d)] = a.x[0][(n * T_ + t) * D_ + d] * k;
            }
        if (M == 1) {
            kernels::dense_fwd(xm.data(), a.params + kernel_, b, P, nullptr, NT, D_, GU, Activation::linear);
        } else {
            gate_block(a.params + kernel_, D_, GU, g, u_, Wg);
            Pg.resize(static_cast<std::size_t>(NT * u_));
            kernels::dense_fwd(xm.data(), Wg.data(), b ? b + g * u_ : nullptr, Pg.data(), nullptr, NT, D_, u_,
                               Activation::linear);
            put_block(Pg.data(), NT, GU, g, u_, P);
        }
    }
}

void Recurrent::recurrent_fwd(const float* params, const float* h, const float* bias, float* Z, Index N, bool training,
                              std::uint64_t seed) const {
    const Index GU = G_ * u_;
    if (!drops_state(training)) {
        kernels::dense_fwd(h, params + recurrent_, bias, Z, nullptr, N, u_, GU, Activation::linear);
        return;
    }
    thread_local FloatVec hm, Ug, Zg;
    hm.resize(static_cast<std::size_t>(N * u_));
    const Index M = mask_count();
    const float* hs = drop_scales(true, seed, N);
    for (Index g = 0; g < M; ++g) {
        for (Index n = 0; n < N; ++n)
            for (Index j = 0; j < u_; ++j)
                hm[static_cast<std::size_t>(n * u_ + j)] = h[n * u_ + j] * hs[(n * M + g) * u_ + j];
        if (M == 1) {
            kernels::dense_fwd(hm.data(), params + recurrent_, bias, Z, nullptr, N, u_, GU, Activation::linear);
        } else {
            gate_block(params + recurrent_, u_, GU, g, u_, Ug);
            Zg.resize(static_cast<std::size_t>(N * u_));
            kernels::dense_fwd(hm.data(), Ug.data(), bias ? bias + g * u_ : nullptr, Zg.data(), nullptr, N, u_, u_,
                               Activation::linear);
            put_block(Zg.data(), N, GU, g, u_, Z);
        }
    }
}

void Recurrent::recurrent_bwd(const BackwardArgs& a, const FloatVec& UT, const float* dZ, float* dh) const {
    const Index N = a.N, GU = G_ * u_;
    if (!drops_state(a.training)) {
        kernels::dense_fwd(dZ, UT.data(), nullptr, dh, nullptr, N, GU, u_, Activation::linear);
        return;
    }
    thread_local FloatVec dZg, tmp;
    tmp.resize(static_cast<std::size_t>(N * u_));
    std::fill(dh, dh + N * u_, 0.f);
    const Index M = mask_count();
    const float* hs = drop_scales(true, a.seed, N);
    for (Index g = 0; g < M; ++g) {
        if (M == 1) {
            kernels::dense_fwd(dZ, UT.data(), nullptr, tmp.data(), nullptr, N, GU, u_, Activation::linear);
        } else {  // rows [g*u, (g+1)*u) of U^T are U_g^T
            gate_block(dZ, N, GU, g, u_, dZg);
            kernels::dense_fwd(dZg.data(), UT.data() + g * u_ * u_, nullptr, tmp.data(), nullptr, N, u_, u_,
                               Activation::linear);
        }
        for (Index n = 0; n < N; ++n)
            for (Index j = 0; j < u_; ++j)
                dh[n * u_ + j] += tmp[static_cast<std::size_t>(n * u_ + j)] * hs[(n * M + g) * u_ + j];
    }
}

void Recurrent::emit(const float* h, const float* m, Index s, float* y, Index N) const {
    const std::size_t row = sizeof(float) * static_cast<std::size_t>(u_);
    const Index Y = y_row();
    const bool zero = o_.zero_output_for_mask && m;
    if (!o_.return_sequences && s != T_ - 1) return;
    for (Index n = 0; n < N; ++n) {
        float* dst = y + n * Y + (o_.return_sequences ? s * u_ : 0);
        if (zero && !takes(m, n, s))
            std::fill(dst, dst + u_, 0.f);
        else
            std::memcpy(dst, h + n * u_, row);
    }
}

void Recurrent::add_dy(const float* dy, const float* m, Index s, float* dh, Index N) const {
    const Index Y = y_row();
    const bool zero = o_.zero_output_for_mask && m;
    if (!o_.return_sequences && s != T_ - 1) return;
    for (Index n = 0; n < N; ++n) {
        if (zero && !takes(m, n, s)) continue;
        const float* src = dy + n * Y + (o_.return_sequences ? s * u_ : 0);
        for (Index j = 0; j < u_; ++j) dh[n * u_ + j] += src[j];
    }
}

void Recurrent::start_state(const ForwardArgs& a, Index k, float* S) const {
    const float* s0 = initial_state(a.x, k);
    if (s0)
        std::memcpy(S, s0, sizeof(float) * static_cast<std::size_t>(a.N * u_));
    else
        std::fill(S, S + a.N * u_, 0.f);
}

void Recurrent::carry(const float* m, Index s, const float* prev, float* next, Index N) const {
    if (!m) return;
    for (Index n = 0; n < N; ++n)
        if (!takes(m, n, s)) std::memcpy(next + n * u_, prev + n * u_, sizeof(float) * static_cast<std::size_t>(u_));
}

void Recurrent::emit_state(const float* S, Index k, float* y, Index N) const {
    if (!o_.return_state) return;
    const Index Y = y_row();
    for (Index n = 0; n < N; ++n)
        std::memcpy(y + n * Y + out_numel_ + k * u_, S + n * u_, sizeof(float) * static_cast<std::size_t>(u_));
}

void Recurrent::add_dstate(const float* dy, Index k, float* dS, Index N) const {
    if (!o_.return_state) return;
    const Index Y = y_row();
    for (Index n = 0; n < N; ++n)
        for (Index j = 0; j < u_; ++j) dS[n * u_ + j] += dy[n * Y + out_numel_ + k * u_ + j];
}

void Recurrent::finish_inputs(const BackwardArgs& a, const float* dh, const float* dc) const {
    const std::size_t nu = static_cast<std::size_t>(a.N * u_);
    if (o_.has_mask && a.dx[1]) std::fill(a.dx[1], a.dx[1] + a.N * T_, 0.f);  // a mask has no gradient
    if (float* d = initial_state_grad(a.dx, 0)) std::memcpy(d, dh, sizeof(float) * nu);
    if (num_states() > 1)
        if (float* d = initial_state_grad(a.dx, 1)) std::memcpy(d, dc, sizeof(float) * nu);
}

void Recurrent::backprop_inputs(const BackwardArgs& a, const float* dP) const {
    const Index N = a.N, GU = G_ * u_, NT = N * T_;
    thread_local FloatVec dPx, xm, dxm, Wg, dPg, dWg, dbg;
    dPx.resize(static_cast<std::size_t>(NT * GU));
    for (Index s = 0; s < T_; ++s)
        for (Index n = 0; n < N; ++n)
            std::memcpy(dPx.data() + (n * T_ + t(s)) * GU, dP + (s * N + n) * GU,
                        sizeof(float) * static_cast<std::size_t>(GU));
    float* db = o_.use_bias ? a.grads + bias_ : nullptr;
    if (!drops_inputs(a.training)) {
        kernels::dense_bwd(a.x[0], a.params + kernel_, dPx.data(), a.dx[0], a.grads + kernel_, db, NT, D_, GU);
        return;
    }
    // x was dropped per gate block: dW_g = (x*m_g)^T dP_g, dx = sum_g (dP_g W_g^T) * m_g.
    float* dx = a.dx[0];
    if (dx) std::fill(dx, dx + NT * D_, 0.f);
    xm.resize(static_cast<std::size_t>(NT * D_));
    dxm.resize(static_cast<std::size_t>(NT * D_));
    const Index M = mask_count();
    const float* xs = drop_scales(false, a.seed, N);
    for (Index g = 0; g < M; ++g) {
        for (Index n = 0; n < N; ++n)
            for (Index d = 0; d < D_; ++d) {
                const float k = xs[(n * M + g) * D_ + d];
                for (Index t = 0; t < T_; ++t)
                    xm[static_cast<std::size_t>((n * T_ + t) * D_ + d)] = a.x[0][(n * T_ + t) * D_ + d] * k;
            }
        if (M == 1) {
            kernels::dense_bwd(xm.data(), a.params + kernel_, dPx.data(), dx ? dxm.data() : nullptr, a.grads + kernel_,
                               db, NT, D_, GU);
        } else {
            gate_block(a.params + kernel_, D_, GU, g, u_, Wg);
            gate_block(dPx.data(), NT, GU, g, u_, dPg);
            dWg.resize(static_cast<std::size_t>(D_ * u_));
            dbg.resize(static_cast<std::size_t>(u_));
            kernels::dense_bwd(xm.data(), Wg.data(), dPg.data(), dx ? dxm.data() : nullptr, dWg.data(),
                               db ? dbg.data() : nullptr, NT, D_, u_);
            put_block(dWg.data(), D_, GU, g, u_, a.grads + kernel_);
            if (db) put_block(dbg.data(), 1, GU, g, u_, db);
        }
        if (dx)
            for (Index n = 0; n < N; ++n)
                for (Index d = 0; d < D_; ++d) {
                    const float k = xs[(n * M + g) * D_ + d];
                    for (Index t = 0; t < T_; ++t)
                        dx[(n * T_ + t) * D_ + d] += dxm[static_cast<std::size_t>((n * T_ + t) * D_ + d)] * k;
                }
    }
}

void Recurrent::backprop_recurrent(const BackwardArgs& a, const float* Hprev, const float* dR, float* db) const {
    const Index N = a.N, GU = G_ * u_, TN = T_ * N;
    if (!drops_state(a.training)) {
        kernels::dense_bwd(Hprev, a.params + recurrent_, dR, nullptr, a.grads + recurrent_, db, TN, u_, GU);
        return;
    }
    // h was dropped per gate block before the recurrent kernel: dU_g = (Hprev*m_g)^T dR_g.
    thread_local FloatVec hm, Ug, dRg, dUg, dbg;
    hm.resize(static_cast<std::size_t>(TN * u_));
    const Index M = mask_count();
    const float* hs = drop_scales(true, a.seed, N);
    for (Index g = 0; g < M; ++g) {
        for (Index s = 0; s < T_; ++s)
            for (Index n = 0; n < N; ++n)
                for (Index j = 0; j < u_; ++j)
                    hm[static_cast<std::size_t>((s * N + n) * u_ + j)] =
                        Hprev[(s * N + n) * u_ + j] * hs[(n * M + g) * u_ + j];
        if (M == 1) {
            kernels::dense_bwd(hm.data(), a.params + recurrent_, dR, nullptr, a.grads + recurrent_, db, TN, u_, GU);
        } else {
            gate_block(a.params + recurrent_, u_, GU, g, u_, Ug);
            gate_block(dR, TN, GU, g, u_, dRg);
            dUg.resize(static_cast<std::size_t>(u_ * u_));
            dbg.resize(static_cast<std::size_t>(u_));
            kernels::dense_bwd(hm.data(), Ug.data(), dRg.data(), nullptr, dUg.data(), db ? dbg.data() : nullptr, TN, u_,
                               u_);
            put_block(dUg.data(), u_, GU, g, u_, a.grads + recurrent_);
            if (db) put_block(dbg.data(), 1, GU, g, u_, db);
        }
    }
}

void Recurrent::recurrent_transposed(const float* params, FloatVec& UT) const {
    const Index GU = G_ * u_;
    const float* U = params + recurrent_;
    UT.resize(static_cast<std::size_t>(GU * u_));
    for (Index i = 0; i < u_; ++i)
        for (Index j = 0; j < GU; ++j) UT[static_cast<std::size_t>(j * u_ + i)] = U[i * GU + j];
}

}  // namespace maasfin
