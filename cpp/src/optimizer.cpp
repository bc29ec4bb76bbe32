// Keras update rules, one loop over the arena (n parameters).
#include "maasfin/optimizer.hpp"

#include <algorithm>
#include <cmath>

namespace maasfin {

void Optimizer::step(float* params, const float* grads, Index n, const std::vector<Range>& ranges) {
    if (state_size_ != n) {
        init_state(n);
        state_size_ = n;
    }
    const std::int64_t t = iterations + 1;
    if (ranges.empty()) {
        update(params, grads, 0, n, t);
    } else {
        for (const Range& r : ranges) update(params, grads, r.begin, r.end, t);
    }
    ++iterations;
}

std::vector<std::string> Optimizer::slot_names() {
    std::vector<std::string> names;
    for (auto& [name, _] : slots()) names.push_back(name);
    return names;
}

const FloatVec& Optimizer::slot(const std::string& name) {
    for (auto& [n, vec] : slots())
        if (n == name) return *vec;
    throw InvalidArgument("optimizer has no state slot '" + name + "'");
}

void Optimizer::set_slots(Index n, const std::vector<std::pair<std::string, FloatVec>>& values) {
    init_state(n);
    for (auto& [name, vec] : slots()) {
        const FloatVec* given = nullptr;
        for (const auto& [vn, vv] : values)
            if (vn == name) given = &vv;
        if (!given) throw InvalidArgument("optimizer state is missing slot '" + name + "'");
        if (given->size() != vec->size())
            throw InvalidArgument("optimizer state slot '" + name + "' has " + std::to_string(given->size()) +
                                  " values, expected " + std::to_string(vec->size()));
        *vec = *given;
    }
    for (const auto& [vn, _] : values)
        if (std::none_of(slots().begin(), slots().end(), [&](const auto& s) { return s.first == vn; }))
            throw InvalidArgument("optimizer state has an unknown slot '" + vn + "'");
    state_size_ = n;
}

SGD::SGD(double lr, double momentum, bool nesterov) : momentum_(momentum), nesterov_(nesterov) {
    if (!(lr >= 0)) throw InvalidArgument("SGD: learning_rate must be >= 0");
    if (!(momentum >= 0 && momentum <= 1)) throw InvalidArgument("SGD: momentum must be in [0, 1]");
    learning_rate = lr;
}

void SGD::init_state(Index n) {
    velocity_.assign(momentum_ == 0.0 ? 0 : static_cast<std::size_t>(n), 0.f);
}

// v = momentum*v - lr*g; p += v (nesterov: p += momentum*v - lr*g)
void SGD::update(float* p, const float* g, Index begin, Index end, std::int64_t) {
    const float lr = static_cast<float>(learning_rate);
    if (momentum_ == 0.0) {
        for (Index i = begin; i < end; ++i) p[i] -= lr * g[i];
        return;
    }
    const float m = static_cast<float>(momentum_);
    float* v = velocity_.data();
    for (Index i = begin; i < end; ++i) {
        v[i] = m * v[i] - lr * g[i];
        p[i] += nesterov_ ? m * v[i] - lr * g[i] : v[i];
    }
}

Adam::Adam(double lr, double beta_1, double beta_2, double epsilon, bool amsgrad)
    : beta_1_(beta_1), beta_2_(beta_2), epsilon_(epsilon), amsgrad_(amsgrad) {
    if (!(lr >= 0)) throw InvalidArgument("Adam: learning_rate must be >= 0");
    if (!(beta_1 >= 0 && beta_1 < 1) || !(beta_2 >= 0 && beta_2 < 1))
        throw InvalidArgument("Adam: beta_1 and beta_2 must be in [0, 1)");
    learning_rate = lr;
}

// m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); p -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)
void Adam::init_state(Index n) {
    m_.assign(static_cast<std::size_t>(n), 0.f);
    v_.assign(static_cast<std::size_t>(n), 0.f);
    v_hat_.assign(amsgrad_ ? static_cast<std::size_t>(n) : 0, 0.f);
}

void Adam::update(float* p, const float* g, Index begin, Index end, std::int64_t step) {
    const double t = static_cast<double>(step);
    const float alpha = static_cast<float>(learning_rate * std::sqrt(1.0 - std::pow(beta_2_, t)) /
                                           (1.0 - std::pow(beta_1_, t)));
    const float b1c = static_cast<float>(1.0 - beta_1_), b2c = static_cast<float>(1.0 - beta_2_);
    const float eps = static_cast<float>(epsilon_);
    float* m = m_.data();
    float* v = v_.data();
    for (Index i = begin; i < end; ++i) {
        m[i] += (g[i] - m[i]) * b1c;
        v[i] += (g[i] * g[i] - v[i]) * b2c;
        float denom_v = v[i];
        if (amsgrad_) denom_v = v_hat_[i] = std::max(v_hat_[i], v[i]);
        p[i] -= alpha * m[i] / (std::sqrt(denom_v) + eps);
    }
}

RMSprop::RMSprop(double lr, double rho, double momentum, double epsilon, bool centered)
    : rho_(rho), momentum_(momentum), epsilon_(epsilon), centered_(centered) {
    if (!(lr >= 0)) throw InvalidArgument("RMSprop: learning_rate must be >= 0");
    if (!(rho >= 0 && rho < 1)) throw InvalidArgument("RMSprop: rho must be in [0, 1)");
    if (!(momentum >= 0 && momentum <= 1)) throw InvalidArgument("RMSprop: momentum must be in [0, 1]");
    learning_rate = lr;
}

// v = rho*v + (1-rho)*g^2; (centered: a = rho*a + (1-rho)*g; v' = v - a^2)
// inc = lr*g/sqrt(v' + eps); momentum: mom = momentum*mom + inc, p -= mom; else p -= inc
void RMSprop::init_state(Index n) {
    velocity_.assign(static_cast<std::size_t>(n), 0.f);
    average_grad_.assign(centered_ ? static_cast<std::size_t>(n) : 0, 0.f);
    momentum_buf_.assign(momentum_ > 0 ? static_cast<std::size_t>(n) : 0, 0.f);
}

void RMSprop::update(float* p, const float* g, Index begin, Index end, std::int64_t) {
    const float lr = static_cast<float>(learning_rate), rho = static_cast<float>(rho_);
    const float eps = static_cast<float>(epsilon_), mom = static_cast<float>(momentum_);
    for (Index i = begin; i < end; ++i) {
        float& v = velocity_[i];
        v = rho * v + (1.f - rho) * g[i] * g[i];
        float denom = v;
        if (centered_) {
            float& a = average_grad_[i];
            a = rho * a + (1.f - rho) * g[i];
            denom = v - a * a;
        }
        const float inc = lr * g[i] / std::sqrt(denom + eps);
        if (momentum_ > 0) {
            momentum_buf_[i] = mom * momentum_buf_[i] + inc;
            p[i] -= momentum_buf_[i];
        } else {
            p[i] -= inc;
        }
    }
}

}  // namespace maasfin
