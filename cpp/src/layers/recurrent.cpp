// The parts every recurrent layer shares: shapes, parameters, the input projection and its
// gradient, output placement and config. Buffers in step order are T x N x width; x and y are
// N x T x width (batch-major, as the user gives them).
#include "maasfin/layers/recurrent.hpp"

#include <algorithm>
#include <cstring>

#include "maasfin/kernels.hpp"
#include "recurrent_math.hpp"

namespace maasfin {

Recurrent::Recurrent(std::string kind, Index gates, Index bias_rows, const RecurrentOptions& o)
    : kind_(std::move(kind)), G_(gates), bias_rows_(bias_rows), o_(o), bias_arena_init_(o.bias_initializer) {
    if (o.units <= 0) throw InvalidArgument(kind_ + ": units must be a positive integer, got " + std::to_string(o.units));
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
                                  "] must have shape (batch, " + std::to_string(u_) + ") for units=" +
                                  std::to_string(u_) + ", got " + shape_str(inputs[k]));
    kernel_ = params.add("kernel", {D_, G_ * u_}, o_.kernel_initializer);
    recurrent_ = params.add("recurrent_kernel", {u_, G_ * u_}, o_.recurrent_initializer);
    if (o_.use_bias)
        bias_ = params.add("bias", bias_rows_ == 1 ? Shape{G_ * u_} : Shape{bias_rows_, G_ * u_}, bias_arena_init_);
    out_numel_ = o_.return_sequences ? T_ * u_ : u_;
    if (o_.return_state) return Shape{y_row()};
    return o_.return_sequences ? Shape{T_, u_} : Shape{u_};
}

void Recurrent::project(const ForwardArgs& a, float* P) const {
    kernels::dense_fwd(a.x[0], a.params + kernel_, o_.use_bias ? a.params + bias_ : nullptr, P, nullptr, a.N * T_, D_,
                       G_ * u_, Activation::linear);
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
    const Index N = a.N, GU = G_ * u_;
    thread_local FloatVec dPx;
    dPx.resize(static_cast<std::size_t>(N * T_ * GU));
    for (Index s = 0; s < T_; ++s)
        for (Index n = 0; n < N; ++n)
            std::memcpy(dPx.data() + (n * T_ + t(s)) * GU, dP + (s * N + n) * GU, sizeof(float) * static_cast<std::size_t>(GU));
    kernels::dense_bwd(a.x[0], a.params + kernel_, dPx.data(), a.dx[0], a.grads + kernel_,
                       o_.use_bias ? a.grads + bias_ : nullptr, N * T_, D_, GU);
}

void Recurrent::backprop_recurrent(const BackwardArgs& a, const float* Hprev, const float* dR, float* db) const {
    kernels::dense_bwd(Hprev, a.params + recurrent_, dR, nullptr, a.grads + recurrent_, db, a.N * T_, u_, G_ * u_);
}

void Recurrent::recurrent_transposed(const float* params, FloatVec& UT) const {
    const Index GU = G_ * u_;
    const float* U = params + recurrent_;
    UT.resize(static_cast<std::size_t>(GU * u_));
    for (Index i = 0; i < u_; ++i)
        for (Index j = 0; j < GU; ++j) UT[static_cast<std::size_t>(j * u_ + i)] = U[i * GU + j];
}

std::string Recurrent::config() const {
    auto b = [](bool v) { return v ? "true" : "false"; };
    return "{\"units\": " + std::to_string(o_.units) + ", \"activation\": \"" + activation_name(o_.activation) +
           "\", \"recurrent_activation\": \"" + activation_name(o_.recurrent_activation) + "\", \"use_bias\": " +
           b(o_.use_bias) + ", \"return_sequences\": " + b(o_.return_sequences) + ", \"go_backwards\": " +
           b(o_.go_backwards) + ", \"kernel_initializer\": \"" + initializer_name(o_.kernel_initializer) +
           "\", \"recurrent_initializer\": \"" + initializer_name(o_.recurrent_initializer) +
           "\", \"bias_initializer\": \"" + initializer_name(o_.bias_initializer) + "\", \"return_state\": " +
           b(o_.return_state) + extra_config_ + "}";
}

}  // namespace maasfin
