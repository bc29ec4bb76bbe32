#include "maasfin/layers/normalization.hpp"

#include <cmath>
#include <vector>

namespace maasfin {

namespace {
Index last_axis(const std::vector<Shape>& inputs, const std::string& who, Index& rows_per_sample) {
    if (inputs.size() != 1 || inputs[0].empty())
        throw InvalidArgument(who + " expects one input of rank >= 1 per sample");
    rows_per_sample = numel(inputs[0]) / inputs[0].back();
    return inputs[0].back();
}

// dx for y = gamma * x_hat + beta where x_hat = (x - mean) * inv_std over M values:
// dx = inv_std / M * (M * g - sum(g) - x_hat * sum(g * x_hat)), with g = dy * gamma.
// Here for one channel of BatchNormalization (stride C) or one row of LayerNormalization (stride 1).
}  // namespace

BatchNormalization::BatchNormalization(double momentum, double epsilon, bool center, bool scale, Initializer beta_init,
                                       Initializer gamma_init, Initializer moving_mean_init,
                                       Initializer moving_variance_init)
    : momentum_(momentum), epsilon_(epsilon), center_(center), scale_(scale), beta_init_(beta_init),
      gamma_init_(gamma_init), mean_init_(moving_mean_init), var_init_(moving_variance_init) {
    if (!(momentum >= 0 && momentum <= 1)) throw InvalidArgument("BatchNormalization: momentum must be in [0, 1]");
    if (!(epsilon > 0)) throw InvalidArgument("BatchNormalization: epsilon must be > 0");
}

// in: (..., C) -> out: (..., C)
Shape BatchNormalization::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    c_ = last_axis(inputs, "BatchNormalization '" + name_ + "'", rows_per_sample_);
    if (scale_) gamma_ = params.add("gamma", {c_}, gamma_init_);
    if (center_) beta_ = params.add("beta", {c_}, beta_init_);
    moving_mean_ = params.add("moving_mean", {c_}, mean_init_, false);
    moving_var_ = params.add("moving_variance", {c_}, var_init_, false);
    return inputs[0];
}

// x, y: R x C (R = N * rows per sample). saved: x_hat (R x C), batch mean (C), batch variance (C).
void BatchNormalization::forward(const ForwardArgs& a) const {
    const Index R = a.N * rows_per_sample_, C = c_;
    const float* x = a.x[0];
    const float* gamma = scale_ ? a.params + gamma_ : nullptr;
    const float* beta = center_ ? a.params + beta_ : nullptr;
    std::vector<double> mean(C, 0.0), var(C, 0.0);
    const bool batch_stats = a.training && !frozen_;
    if (batch_stats) {
        for (Index r = 0; r < R; ++r)
            for (Index c = 0; c < C; ++c) mean[c] += x[r * C + c];
        for (Index c = 0; c < C; ++c) mean[c] /= static_cast<double>(R);
        for (Index r = 0; r < R; ++r)
            for (Index c = 0; c < C; ++c) {
                const double d = x[r * C + c] - mean[c];
                var[c] += d * d;
            }
        for (Index c = 0; c < C; ++c) var[c] /= static_cast<double>(R);
    } else {
        for (Index c = 0; c < C; ++c) {
            mean[c] = a.params[moving_mean_ + c];
            var[c] = a.params[moving_var_ + c];
        }
    }
    std::vector<float> inv_std(C);
    for (Index c = 0; c < C; ++c) inv_std[c] = static_cast<float>(1.0 / std::sqrt(var[c] + epsilon_));
    float* x_hat = a.saved;
    for (Index r = 0; r < R; ++r)
        for (Index c = 0; c < C; ++c) {
            const float h = static_cast<float>(x[r * C + c] - mean[c]) * inv_std[c];
            if (x_hat) x_hat[r * C + c] = h;
            a.y[r * C + c] = (gamma ? gamma[c] * h : h) + (beta ? beta[c] : 0.f);
        }
    if (a.saved)
        for (Index c = 0; c < C; ++c) {
            a.saved[R * C + c] = static_cast<float>(mean[c]);
            a.saved[R * C + C + c] = static_cast<float>(var[c]);
        }
}

void BatchNormalization::update_state(float* params, const float* saved, Index N) const {
    if (frozen_) return;
    const Index R = N * rows_per_sample_, C = c_;
    const float m = static_cast<float>(momentum_);
    for (Index c = 0; c < C; ++c) {
        params[moving_mean_ + c] = params[moving_mean_ + c] * m + saved[R * C + c] * (1.f - m);
        params[moving_var_ + c] = params[moving_var_ + c] * m + saved[R * C + C + c] * (1.f - m);
    }
}

void BatchNormalization::backward(const BackwardArgs& a) const {
    const Index R = a.N * rows_per_sample_, C = c_;
    const float* x_hat = a.saved;
    const float* gamma = scale_ ? a.params + gamma_ : nullptr;
    std::vector<double> sum_dy(C, 0.0), sum_dy_xhat(C, 0.0);
    for (Index r = 0; r < R; ++r)
        for (Index c = 0; c < C; ++c) {
            sum_dy[c] += a.dy[r * C + c];
            sum_dy_xhat[c] += double(a.dy[r * C + c]) * x_hat[r * C + c];
        }
    if (scale_)
        for (Index c = 0; c < C; ++c) a.grads[gamma_ + c] = static_cast<float>(sum_dy_xhat[c]);
    if (center_)
        for (Index c = 0; c < C; ++c) a.grads[beta_ + c] = static_cast<float>(sum_dy[c]);
    for (Index c = 0; c < C; ++c) a.grads[moving_mean_ + c] = a.grads[moving_var_ + c] = 0.f;
    if (!a.dx[0]) return;
    const float* var = a.saved + R * C + C;
    for (Index c = 0; c < C; ++c) {
        const double g = gamma ? gamma[c] : 1.0;
        const double inv_std = 1.0 / std::sqrt(double(var[c]) + epsilon_);
        if (frozen_ || !a.training) {  // moving statistics: constants
            for (Index r = 0; r < R; ++r) a.dx[0][r * C + c] = static_cast<float>(a.dy[r * C + c] * g * inv_std);
            continue;
        }
        const double k = g * inv_std / static_cast<double>(R);
        for (Index r = 0; r < R; ++r)
            a.dx[0][r * C + c] = static_cast<float>(
                k * (R * double(a.dy[r * C + c]) - sum_dy[c] - double(x_hat[r * C + c]) * sum_dy_xhat[c]));
    }
}

LayerNormalization::LayerNormalization(double epsilon, bool center, bool scale, Initializer beta_init,
                                       Initializer gamma_init)
    : epsilon_(epsilon), center_(center), scale_(scale), beta_init_(beta_init), gamma_init_(gamma_init) {
    if (!(epsilon > 0)) throw InvalidArgument("LayerNormalization: epsilon must be > 0");
}

Shape LayerNormalization::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    c_ = last_axis(inputs, "LayerNormalization '" + name_ + "'", rows_per_sample_);
    if (scale_) gamma_ = params.add("gamma", {c_}, gamma_init_);
    if (center_) beta_ = params.add("beta", {c_}, beta_init_);
    return inputs[0];
}

// x, y: R x C. saved: x_hat (R x C), inv_std (R).
void LayerNormalization::forward(const ForwardArgs& a) const {
    const Index R = a.N * rows_per_sample_, C = c_;
    const float* gamma = scale_ ? a.params + gamma_ : nullptr;
    const float* beta = center_ ? a.params + beta_ : nullptr;
    for (Index r = 0; r < R; ++r) {
        const float* x = a.x[0] + r * C;
        double mean = 0, var = 0;
        for (Index c = 0; c < C; ++c) mean += x[c];
        mean /= static_cast<double>(C);
        for (Index c = 0; c < C; ++c) var += (x[c] - mean) * (x[c] - mean);
        var /= static_cast<double>(C);
        const float inv_std = static_cast<float>(1.0 / std::sqrt(var + epsilon_));
        for (Index c = 0; c < C; ++c) {
            const float h = static_cast<float>(x[c] - mean) * inv_std;
            if (a.saved) a.saved[r * C + c] = h;
            a.y[r * C + c] = (gamma ? gamma[c] * h : h) + (beta ? beta[c] : 0.f);
        }
        if (a.saved) a.saved[R * C + r] = inv_std;
    }
}

void LayerNormalization::backward(const BackwardArgs& a) const {
    const Index R = a.N * rows_per_sample_, C = c_;
    const float* x_hat = a.saved;
    const float* gamma = scale_ ? a.params + gamma_ : nullptr;
    if (scale_)
        for (Index c = 0; c < C; ++c) a.grads[gamma_ + c] = 0.f;
    if (center_)
        for (Index c = 0; c < C; ++c) a.grads[beta_ + c] = 0.f;
    for (Index r = 0; r < R; ++r) {
        const float* dy = a.dy + r * C;
        const float* h = x_hat + r * C;
        double sum_g = 0, sum_gh = 0;
        for (Index c = 0; c < C; ++c) {
            if (scale_) a.grads[gamma_ + c] += dy[c] * h[c];
            if (center_) a.grads[beta_ + c] += dy[c];
            const double g = dy[c] * (gamma ? gamma[c] : 1.f);
            sum_g += g;
            sum_gh += g * h[c];
        }
        if (!a.dx[0]) continue;
        const double k = a.saved[R * C + r] / static_cast<double>(C);
        for (Index c = 0; c < C; ++c) {
            const double g = dy[c] * (gamma ? gamma[c] : 1.f);
            a.dx[0][r * C + c] = static_cast<float>(k * (C * g - sum_g - h[c] * sum_gh));
        }
    }
}

}  // namespace maasfin
