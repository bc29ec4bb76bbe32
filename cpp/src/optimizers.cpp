// Keras 3 update rules, each over arena indices [b, e). g: gradients, p: parameters.
#include <algorithm>
#include <cmath>

#include "maasfin/optimizer.hpp"

namespace maasfin {

namespace {
void check_lr(const char* who, double lr) {
    if (!(lr >= 0)) throw InvalidArgument(std::string(who) + ": learning_rate must be >= 0");
}
void check_beta(const char* who, const char* arg, double v) {
    if (!(v >= 0 && v < 1)) throw InvalidArgument(std::string(who) + ": " + arg + " must be in [0, 1)");
}

// v = momentum*v - lr*g; p += v (nesterov: p += momentum*v - lr*g); no momentum: p -= lr*g
class SGD : public Optimizer {
public:
    SGD(double momentum, bool nesterov) : momentum_(momentum), nesterov_(nesterov) {}

protected:
    std::vector<Slot> slots() override { return {{"velocity", &velocity_, momentum_ != 0.0}}; }
    void update(float* p, const float* g, Index b, Index e, std::int64_t, float lr) override {
        if (momentum_ == 0.0) {
            for (Index i = b; i < e; ++i) p[i] -= lr * g[i];
            return;
        }
        const float m = static_cast<float>(momentum_);
        float* v = velocity_.data();
        for (Index i = b; i < e; ++i) {
            v[i] = m * v[i] - lr * g[i];
            p[i] += nesterov_ ? m * v[i] - lr * g[i] : v[i];
        }
    }

private:
    double momentum_;
    bool nesterov_;
    FloatVec velocity_;
};

// m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); p -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)
class Adam : public Optimizer {
public:
    Adam(double b1, double b2, double eps, bool amsgrad) : b1_(b1), b2_(b2), eps_(eps), amsgrad_(amsgrad) {}

protected:
    std::vector<Slot> slots() override { return {{"m", &m_}, {"v", &v_}, {"v_hat", &v_hat_, amsgrad_}}; }
    void update(float* p, const float* g, Index b, Index e, std::int64_t step, float lr) override {
        const double t = static_cast<double>(step);
        const float alpha = static_cast<float>(lr * std::sqrt(1.0 - std::pow(b2_, t)) / (1.0 - std::pow(b1_, t)));
        const float b1c = static_cast<float>(1.0 - b1_), b2c = static_cast<float>(1.0 - b2_);
        const float eps = static_cast<float>(eps_);
        float *m = m_.data(), *v = v_.data();
        for (Index i = b; i < e; ++i) {
            m[i] += (g[i] - m[i]) * b1c;
            v[i] += (g[i] * g[i] - v[i]) * b2c;
            float denom_v = v[i];
            if (amsgrad_) denom_v = v_hat_[i] = std::max(v_hat_[i], v[i]);
            p[i] -= alpha * m[i] / (std::sqrt(denom_v) + eps);
        }
    }

private:
    double b1_, b2_, eps_;
    bool amsgrad_;
    FloatVec m_, v_, v_hat_;
};

// v = rho*v + (1-rho)*g^2; (centered: a = rho*a + (1-rho)*g; v' = v - a^2)
// inc = lr*g/sqrt(v' + eps); momentum: mom = momentum*mom + inc, p -= mom; else p -= inc
class RMSprop : public Optimizer {
public:
    RMSprop(double rho, double momentum, double eps, bool centered)
        : rho_(rho), momentum_(momentum), eps_(eps), centered_(centered) {}

protected:
    std::vector<Slot> slots() override {
        return {{"velocity", &velocity_},
                {"average_grad", &average_grad_, centered_},
                {"momentum", &momentum_buf_, momentum_ > 0}};
    }
    void update(float* p, const float* g, Index b, Index e, std::int64_t, float lr) override {
        const float rho = static_cast<float>(rho_), eps = static_cast<float>(eps_), mom = static_cast<float>(momentum_);
        for (Index i = b; i < e; ++i) {
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

private:
    double rho_, momentum_, eps_;
    bool centered_;
    FloatVec velocity_, average_grad_, momentum_buf_;
};

// acc += g^2; p -= lr * g / sqrt(acc + eps)
class Adagrad : public Optimizer {
public:
    Adagrad(double initial, double eps) : initial_(initial), eps_(eps) {}

protected:
    std::vector<Slot> slots() override { return {{"accumulator", &acc_, true, static_cast<float>(initial_)}}; }
    void update(float* p, const float* g, Index b, Index e, std::int64_t, float lr) override {
        const float eps = static_cast<float>(eps_);
        for (Index i = b; i < e; ++i) {
            acc_[i] += g[i] * g[i];
            p[i] -= lr * g[i] / std::sqrt(acc_[i] + eps);
        }
    }

private:
    double initial_, eps_;
    FloatVec acc_;
};

// m += (g - m)(1 - b1); u = max(b2*u, |g|); p -= lr/(1 - b1^t) * m / (u + eps)
class Adamax : public Optimizer {
public:
    Adamax(double b1, double b2, double eps) : b1_(b1), b2_(b2), eps_(eps) {}

protected:
    std::vector<Slot> slots() override { return {{"m", &m_}, {"u", &u_}}; }
    void update(float* p, const float* g, Index b, Index e, std::int64_t step, float lr) override {
        const float scale = static_cast<float>(lr / (1.0 - std::pow(b1_, static_cast<double>(step))));
        const float b1c = static_cast<float>(1.0 - b1_), b2 = static_cast<float>(b2_), eps = static_cast<float>(eps_);
        for (Index i = b; i < e; ++i) {
            m_[i] += (g[i] - m_[i]) * b1c;
            u_[i] = std::max(b2 * u_[i], std::fabs(g[i]));
            p[i] -= scale * m_[i] / (u_[i] + eps);
        }
    }

private:
    double b1_, b2_, eps_;
    FloatVec m_, u_;
};

// Keras's Nadam with the momentum schedule u_t = b1 * (1 - 0.5 * 0.96^t):
// m_hat = u_{t+1} m / (1 - prod_{k<=t+1} u_k) + (1 - u_t) g / (1 - prod_{k<=t} u_k);
// v_hat = v / (1 - b2^t); p -= lr * m_hat / (sqrt(v_hat) + eps)
class Nadam : public Optimizer {
public:
    Nadam(double b1, double b2, double eps) : b1_(b1), b2_(b2), eps_(eps) {}

protected:
    std::vector<Slot> slots() override { return {{"m", &m_}, {"v", &v_}}; }
    void update(float* p, const float* g, Index b, Index e, std::int64_t step, float lr) override {
        const double t = static_cast<double>(step);
        const double u_t = momentum_at(t), u_t1 = momentum_at(t + 1);
        const double prod_t = product_through(step), prod_t1 = prod_t * u_t1;
        const float c1 = static_cast<float>(u_t1 / (1.0 - prod_t1)),
                    c2 = static_cast<float>((1.0 - u_t) / (1.0 - prod_t));
        const float vc = static_cast<float>(1.0 / (1.0 - std::pow(b2_, t)));
        const float b1c = static_cast<float>(1.0 - b1_), b2c = static_cast<float>(1.0 - b2_),
                    eps = static_cast<float>(eps_);
        for (Index i = b; i < e; ++i) {
            m_[i] += (g[i] - m_[i]) * b1c;
            v_[i] += (g[i] * g[i] - v_[i]) * b2c;
            const float m_hat = c1 * m_[i] + c2 * g[i];
            p[i] -= lr * m_hat / (std::sqrt(v_[i] * vc) + eps);
        }
    }

private:
    double momentum_at(double t) const { return b1_ * (1.0 - 0.5 * std::pow(0.96, t)); }
    // prod_{k=1..t} u_k, cached for consecutive steps (recomputed after a restore).
    double product_through(std::int64_t t) {
        if (t != cached_t_) {
            if (t == cached_t_ + 1) {
                cached_product_ *= momentum_at(static_cast<double>(t));
            } else {
                cached_product_ = 1.0;
                for (std::int64_t k = 1; k <= t; ++k) cached_product_ *= momentum_at(static_cast<double>(k));
            }
            cached_t_ = t;
        }
        return cached_product_;
    }
    double b1_, b2_, eps_;
    FloatVec m_, v_;
    std::int64_t cached_t_ = 0;
    double cached_product_ = 1.0;
};

template <class T, class... Args>
std::shared_ptr<Optimizer> make(double lr, Args... args) {
    auto o = std::make_shared<T>(args...);
    o->learning_rate = lr;
    return o;
}
}  // namespace

std::shared_ptr<Optimizer> make_sgd(double lr, double momentum, bool nesterov) {
    check_lr("SGD", lr);
    if (!(momentum >= 0 && momentum <= 1)) throw InvalidArgument("SGD: momentum must be in [0, 1]");
    return make<SGD>(lr, momentum, nesterov);
}

std::shared_ptr<Optimizer> make_adam(double lr, double beta_1, double beta_2, double epsilon, bool amsgrad) {
    check_lr("Adam", lr);
    check_beta("Adam", "beta_1", beta_1);
    check_beta("Adam", "beta_2", beta_2);
    return make<Adam>(lr, beta_1, beta_2, epsilon, amsgrad);
}

std::shared_ptr<Optimizer> make_rmsprop(double lr, double rho, double momentum, double epsilon, bool centered) {
    check_lr("RMSprop", lr);
    check_beta("RMSprop", "rho", rho);
    if (!(momentum >= 0 && momentum <= 1)) throw InvalidArgument("RMSprop: momentum must be in [0, 1]");
    return make<RMSprop>(lr, rho, momentum, epsilon, centered);
}

std::shared_ptr<Optimizer> make_adagrad(double lr, double initial_accumulator_value, double epsilon) {
    check_lr("Adagrad", lr);
    if (!(initial_accumulator_value >= 0)) throw InvalidArgument("Adagrad: initial_accumulator_value must be >= 0");
    return make<Adagrad>(lr, initial_accumulator_value, epsilon);
}

std::shared_ptr<Optimizer> make_adamax(double lr, double beta_1, double beta_2, double epsilon) {
    check_lr("Adamax", lr);
    check_beta("Adamax", "beta_1", beta_1);
    check_beta("Adamax", "beta_2", beta_2);
    return make<Adamax>(lr, beta_1, beta_2, epsilon);
}

std::shared_ptr<Optimizer> make_nadam(double lr, double beta_1, double beta_2, double epsilon) {
    check_lr("Nadam", lr);
    check_beta("Nadam", "beta_1", beta_1);
    check_beta("Nadam", "beta_2", beta_2);
    return make<Nadam>(lr, beta_1, beta_2, epsilon);
}

}  // namespace maasfin
