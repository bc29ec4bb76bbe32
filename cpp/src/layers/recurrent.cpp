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

// (T, D_in) -> (T, u) with return_sequences, else (u,)
Shape Recurrent::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    if (inputs.size() != 1 || inputs[0].size() != 2)
        throw InvalidArgument(kind_ + " '" + name_ + "' expects one input of shape (timesteps, features) per sample, got " +
                              (inputs.empty() ? std::string("none") : shape_str(inputs[0])));
    T_ = inputs[0][0];
    D_ = inputs[0][1];
    u_ = o_.units;
    kernel_ = params.add("kernel", {D_, G_ * u_}, o_.kernel_initializer);
    recurrent_ = params.add("recurrent_kernel", {u_, G_ * u_}, o_.recurrent_initializer);
    if (o_.use_bias)
        bias_ = params.add("bias", bias_rows_ == 1 ? Shape{G_ * u_} : Shape{bias_rows_, G_ * u_}, bias_arena_init_);
    return o_.return_sequences ? Shape{T_, u_} : Shape{u_};
}

void Recurrent::project(const ForwardArgs& a, float* P) const {
    kernels::dense_fwd(a.x[0], a.params + kernel_, o_.use_bias ? a.params + bias_ : nullptr, P, nullptr, a.N * T_, D_,
                       G_ * u_, Activation::linear);
}

void Recurrent::emit(const float* h, Index s, float* y, Index N) const {
    const std::size_t row = sizeof(float) * static_cast<std::size_t>(u_);
    if (o_.return_sequences) {
        for (Index n = 0; n < N; ++n) std::memcpy(y + (n * T_ + s) * u_, h + n * u_, row);
    } else if (s == T_ - 1) {
        std::memcpy(y, h, row * static_cast<std::size_t>(N));
    }
}

void Recurrent::add_dy(const float* dy, Index s, float* dh, Index N) const {
    if (o_.return_sequences) {
        for (Index n = 0; n < N; ++n)
            for (Index j = 0; j < u_; ++j) dh[n * u_ + j] += dy[(n * T_ + s) * u_ + j];
    } else if (s == T_ - 1) {
        for (Index k = 0; k < N * u_; ++k) dh[k] += dy[k];
    }
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
           "\", \"bias_initializer\": \"" + initializer_name(o_.bias_initializer) + "\"" + extra_config_ + "}";
}

}  // namespace maasfin
