#include "maasfin/layers/monotonic_dense.hpp"

#include <algorithm>
#include <cmath>

#include "maasfin/kernels.hpp"

namespace maasfin {

bool activation_is_monotone(Activation a) {
    switch (a) {
        case Activation::linear:
        case Activation::relu:
        case Activation::sigmoid:
        case Activation::tanh:
        case Activation::elu:
        case Activation::selu:
        case Activation::leaky_relu: return true;
        default: return false;
    }
}

std::array<Index, 3> split_units(Index units, const std::array<double, 3>& weights, bool is_convex, bool is_concave) {
    if (is_convex) return {units, 0, 0};
    if (is_concave) return {0, units, 0};
    const double total = weights[0] + weights[1] + weights[2];
    const Index convex = std::min<Index>(units, static_cast<Index>(std::llround(units * weights[0] / total)));
    const Index concave = std::min<Index>(units - convex, static_cast<Index>(std::llround(units * weights[1] / total)));
    return {convex, concave, units - convex - concave};
}

MonotonicDense::MonotonicDense(Index units, Activation activation, std::vector<int> indicator, bool is_convex,
                               bool is_concave, std::array<double, 3> activation_weights, bool use_bias,
                               Initializer kernel_initializer, Initializer bias_initializer)
    : units_(units), activation_(activation), indicator_(std::move(indicator)), use_bias_(use_bias),
      kernel_init_(kernel_initializer), bias_init_(bias_initializer) {
    const std::string where = "MonotonicDense";
    if (units <= 0) throw InvalidArgument(where + ": units must be a positive integer, got " + std::to_string(units));
    if (!activation_is_monotone(activation))
        throw InvalidArgument(where + ": activation '" + activation_name(activation) +
                              "' is not monotone; use one of linear, relu, sigmoid, tanh, elu, selu, leaky_relu");
    if (indicator_.empty()) throw InvalidArgument(where + ": monotonicity_indicator is empty");
    for (int s : indicator_)
        if (s < -1 || s > 1)
            throw InvalidArgument(where + ": monotonicity_indicator values must be -1, 0 or 1, got " +
                                  std::to_string(s));
    if (is_convex && is_concave) throw InvalidArgument(where + ": is_convex and is_concave cannot both be true");
    for (double w : activation_weights)
        if (!(w >= 0.0) || !std::isfinite(w))
            throw InvalidArgument(where + ": activation_weights must be finite and non-negative");
    if (!(activation_weights[0] + activation_weights[1] + activation_weights[2] > 0.0))
        throw InvalidArgument(where + ": activation_weights must not all be zero");
    split_ = split_units(units, activation_weights, is_convex, is_concave);
}

// in: (..., D_in) -> out: (..., units)
Shape MonotonicDense::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    if (inputs.size() != 1 || inputs[0].empty())
        throw InvalidArgument("MonotonicDense '" + name_ + "' expects one input of rank >= 1 per sample, got " +
                              (inputs.empty() ? std::string("none") : shape_str(inputs[0])));
    Shape out = inputs[0];
    d_in_ = out.back();
    if (indicator_.size() != 1 && static_cast<Index>(indicator_.size()) != d_in_)
        throw InvalidArgument("MonotonicDense '" + name_ + "': monotonicity_indicator has " +
                              std::to_string(indicator_.size()) + " values for an input of shape " +
                              shape_str(inputs[0]) + " (" + std::to_string(d_in_) + " features)");
    if (indicator_.size() == 1) indicator_.assign(static_cast<std::size_t>(d_in_), indicator_[0]);
    rows_per_sample_ = numel(out) / d_in_;
    out.back() = units_;
    kernel_ = params.add("kernel", {d_in_, units_}, kernel_init_);
    if (use_bias_) bias_ = params.add("bias", {units_}, bias_init_);
    return out;
}

Index MonotonicDense::saved_size(Index N) const {
    return activation_ == Activation::linear ? 0 : N * rows_per_sample_ * units_;
}

// kernel, out: D_in x D_out
void MonotonicDense::effective_kernel(const float* kernel, float* out) const {
    for (Index i = 0; i < d_in_; ++i) {
        const int s = indicator_[static_cast<std::size_t>(i)];
        const float* k = kernel + i * units_;
        float* o = out + i * units_;
        if (s == 0)
            for (Index j = 0; j < units_; ++j) o[j] = k[j];
        else
            for (Index j = 0; j < units_; ++j) o[j] = static_cast<float>(s) * std::fabs(k[j]);
    }
}

namespace {
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kLeakySlope = 0.2;  // Keras's default negative_slope, as the eltwise kernels

// rho(u) and rho'(u) in double, one type per activation so that the loops below inline them. The
// result is rounded to float once, and rounding is monotone, so the layer's output is monotone in
// float32 too (the vectorised float kernels are accurate to a few ulp but not monotone at that
// scale, which a grid check over saturated units detects).
// Sigmoid and tanh take one exp each: a composition of monotone operations (exp, +, /, -) stays
// monotone under rounding, and glibc's tanh costs several exps.
struct Relu {
    static double value(double u) { return u > 0.0 ? u : 0.0; }
    static double grad(double u) { return u > 0.0 ? 1.0 : 0.0; }
};
struct LeakyRelu {
    static double value(double u) { return u > 0.0 ? u : kLeakySlope * u; }
    static double grad(double u) { return u > 0.0 ? 1.0 : kLeakySlope; }
};
struct Sigmoid {
    static double value(double u) { return 1.0 / (1.0 + std::exp(-u)); }
    static double grad(double u) {
        const double s = value(u);
        return s * (1.0 - s);
    }
};
struct Tanh {
    static double value(double u) { return 1.0 - 2.0 / (std::exp(2.0 * u) + 1.0); }
    static double grad(double u) {
        const double t = value(u);
        return 1.0 - t * t;
    }
};
struct Elu {
    static double value(double u) { return u > 0.0 ? u : std::expm1(u); }
    static double grad(double u) { return u > 0.0 ? 1.0 : std::exp(u); }
};
struct Selu {
    static double value(double u) { return kSeluScale * (u > 0.0 ? u : kSeluAlpha * std::expm1(u)); }
    static double grad(double u) { return u > 0.0 ? kSeluScale : kSeluScale * kSeluAlpha * std::exp(u); }
};

// The saturated shape: rho(v + 1) - rho(1) below 0, rho(1) - rho(1 - v) above; for relu exactly
// the clamp to [-1, 1], without the branch.
template <class Rho>
double saturated(double v, double rho1) {
    return v < 0.0 ? Rho::value(v + 1.0) - rho1 : rho1 - Rho::value(1.0 - v);
}
template <>
double saturated<Relu>(double v, double /*rho1*/) {
    return std::min(std::max(v, -1.0), 1.0);
}

// Calls f(Rho{}) with the type of activation a (not linear).
template <class F>
void with_rho(Activation a, F&& f) {
    switch (a) {
        case Activation::relu: return f(Relu{});
        case Activation::leaky_relu: return f(LeakyRelu{});
        case Activation::sigmoid: return f(Sigmoid{});
        case Activation::tanh: return f(Tanh{});
        case Activation::elu: return f(Elu{});
        default: return f(Selu{});
    }
}

// h, y: rows x D_out (may alias). Units [0, c) convex, [c, k) concave, [k, D_out) saturated.
template <class Rho>
void shapes_fwd(const float* h, float* y, Index rows, Index units, Index c, Index k) {
    const double rho1 = Rho::value(1.0);
    for (Index row = 0; row < rows; ++row) {
        const float* hr = h + row * units;
        float* yr = y + row * units;
        for (Index j = 0; j < c; ++j) yr[j] = static_cast<float>(Rho::value(hr[j]));
        for (Index j = c; j < k; ++j) yr[j] = static_cast<float>(-Rho::value(-static_cast<double>(hr[j])));
        for (Index j = k; j < units; ++j) yr[j] = static_cast<float>(saturated<Rho>(hr[j], rho1));
    }
}

// Every shape's derivative is rho' at its argument: h, -h, h + 1 (h < 0) or 1 - h.
template <class Rho>
void shapes_bwd(const float* h, const float* dy, float* dh, Index rows, Index units, Index c, Index k) {
    for (Index row = 0; row < rows; ++row) {
        const Index o = row * units;
        for (Index j = 0; j < c; ++j) dh[o + j] = static_cast<float>(dy[o + j] * Rho::grad(h[o + j]));
        for (Index j = c; j < k; ++j)
            dh[o + j] = static_cast<float>(dy[o + j] * Rho::grad(-static_cast<double>(h[o + j])));
        for (Index j = k; j < units; ++j) {
            const double v = h[o + j];
            dh[o + j] = static_cast<float>(dy[o + j] * Rho::grad(v < 0.0 ? v + 1.0 : 1.0 - v));
        }
    }
}
}  // namespace

// h, y: rows x D_out (may alias); saved: the pre-activations h, rows x D_out
void MonotonicDense::activate(const float* h, float* y, float* saved, Index rows) const {
    const Index n = rows * units_;
    if (saved != nullptr) std::copy(h, h + n, saved);
    if (activation_ == Activation::linear) {
        if (y != h) std::copy(h, h + n, y);
        return;
    }
    const Index c = split_[0], k = split_[0] + split_[1];
    with_rho(activation_, [&](auto r) { shapes_fwd<decltype(r)>(h, y, rows, units_, c, k); });
}

// x: N*R x D_in, y: N*R x D_out (R = rows per sample)
void MonotonicDense::forward(const ForwardArgs& a) const {
    const Index rows = a.N * rows_per_sample_;
    thread_local FloatVec weights;
    weights.resize(static_cast<std::size_t>(d_in_ * units_));
    effective_kernel(a.params + kernel_, weights.data());
    kernels::dense_fwd(a.x[0], weights.data(), use_bias_ ? a.params + bias_ : nullptr, a.y, nullptr, rows, d_in_,
                       units_, Activation::linear);
    activate(a.y, a.y, a.saved, rows);
}

// dy: N*R x D_out -> dx: N*R x D_in, dkernel: D_in x D_out, dbias: D_out
void MonotonicDense::backward(const BackwardArgs& a) const {
    const Index rows = a.N * rows_per_sample_;
    const float* dh = a.dy;
    thread_local FloatVec scratch, weights;
    if (activation_ != Activation::linear) {
        scratch.resize(static_cast<std::size_t>(rows * units_));
        const Index c = split_[0], k = split_[0] + split_[1];
        float* out = scratch.data();
        with_rho(activation_, [&](auto r) { shapes_bwd<decltype(r)>(a.saved, a.dy, out, rows, units_, c, k); });
        dh = out;
    }
    weights.resize(static_cast<std::size_t>(d_in_ * units_));
    const float* kernel = a.params + kernel_;
    effective_kernel(kernel, weights.data());
    float* dkernel = a.grads + kernel_;
    kernels::dense_bwd(a.x[0], weights.data(), dh, a.dx[0], dkernel, use_bias_ ? a.grads + bias_ : nullptr, rows, d_in_,
                       units_);
    // Through W' = s |W|: dW = s sign(W) dW' (sign(0) taken as +1, so a zero weight can still move).
    for (Index i = 0; i < d_in_; ++i) {
        const int s = indicator_[static_cast<std::size_t>(i)];
        if (s == 0) continue;
        for (Index j = 0; j < units_; ++j) {
            const Index k = i * units_ + j;
            dkernel[k] *= kernel[k] >= 0.f ? static_cast<float>(s) : static_cast<float>(-s);
        }
    }
}

}  // namespace maasfin
