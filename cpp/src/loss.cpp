// Keras 3 loss definitions. Shapes: y_pred N x D, y_true N x D (N x 1 class ids for sparse), w N.
#include "maasfin/loss.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace maasfin {

namespace {
constexpr double kEps = 1e-7;  // Keras backend.epsilon()
constexpr float kEpsF = 1e-7f;

inline double weight(const float* w, Index i) { return w ? w[i] : 1.0; }
inline double sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z)); }
inline double sign(double v) { return (v > 0) - (v < 0); }

enum class Kind {
    // elementwise
    bce,
    focal,
    mse,
    mae,
    mape,
    msle,
    huber,
    log_cosh,
    hinge,
    squared_hinge,
    poisson,
    // over classes (kind_ >= cce)
    cce,
    scce,
    kld,
    categorical_hinge
};

// Value and derivative (w.r.t. the prediction) of one element of an elementwise loss.
struct VD {
    double v, d;
};

class KerasLoss : public Loss {
public:
    KerasLoss(Kind kind, const LossSpec& s) : kind_(kind), s_(s) {}
    Index target_width(Index D) const override { return kind_ == Kind::scce ? 1 : D; }

    double compute(const float* p, const float* t, const float* w, Index N, Index D, float* g, float scale,
                   double* per_sample) const override {
        return kind_ >= Kind::cce ? over_classes(p, t, w, N, D, g, scale, per_sample)
                                  : elementwise(p, t, w, N, D, g, scale, per_sample);
    }

private:
    // Binary cross-entropy of one element given the (smoothed) target y.
    VD bce(double p, double y) const {
        if (s_.from_logits) {  // max(z,0) - z*y + log(1 + e^-|z|)
            return {std::max(p, 0.0) - p * y + std::log1p(std::exp(-std::fabs(p))), sigmoid(p) - y};
        }
        // Clipped in float32, as Keras does: 1 - eps rounds to 0.99999988.
        const double pc = std::clamp(static_cast<float>(p), kEpsF, 1.f - kEpsF);
        const double v = -(y * std::log(pc) + (1.0 - y) * std::log(1.0 - pc));
        return {v, p == pc ? -(y / pc) + (1.0 - y) / (1.0 - pc) : 0.0};
    }

    VD element(double p, double t, bool binary01) const {
        const double e = p - t;
        switch (kind_) {
            case Kind::bce: return bce(p, t * (1.0 - s_.label_smoothing) + 0.5 * s_.label_smoothing);
            case Kind::focal: {
                // Keras smooths the label first and uses it everywhere: p_t = y*p + (1-y)*(1-p).
                const double y = t * (1.0 - s_.label_smoothing) + 0.5 * s_.label_smoothing;
                const VD b = bce(p, y);
                const double prob = s_.from_logits ? sigmoid(p) : p;
                const double dprob = s_.from_logits ? prob * (1.0 - prob) : 1.0;
                const double pt = y * prob + (1.0 - y) * (1.0 - prob);
                const double base = std::max(1.0 - pt, 0.0);
                const double factor = std::pow(base, s_.gamma);
                const double dfactor =
                    base > 0 ? -s_.gamma * std::pow(base, s_.gamma - 1.0) * (2.0 * y - 1.0) * dprob : 0.0;
                const double balance = s_.apply_class_balancing ? y * s_.alpha + (1.0 - y) * (1.0 - s_.alpha) : 1.0;
                return {balance * factor * b.v, balance * (dfactor * b.v + factor * b.d)};
            }
            case Kind::mse: return {e * e, 2.0 * e};
            case Kind::mae: return {std::fabs(e), sign(e)};
            case Kind::mape: {
                const double den = std::max(std::fabs(t), kEps);
                return {100.0 * std::fabs(e) / den, 100.0 * sign(e) / den};
            }
            case Kind::msle: {
                const double pc = std::max(p, kEps), lp = std::log(pc + 1.0);
                const double lt = std::log(std::max(t, kEps) + 1.0);
                return {(lp - lt) * (lp - lt), p > kEps ? 2.0 * (lp - lt) / (pc + 1.0) : 0.0};
            }
            case Kind::huber: {
                const double a = std::fabs(e);
                return a <= s_.delta ? VD{0.5 * e * e, e}
                                     : VD{s_.delta * a - 0.5 * s_.delta * s_.delta, s_.delta * sign(e)};
            }
            case Kind::log_cosh: {  // log(cosh(e)) = |e| + log1p(e^-2|e|) - log 2, stable for large |e|
                const double a = std::fabs(e);
                return {a + std::log1p(std::exp(-2.0 * a)) - std::log(2.0), std::tanh(e)};
            }
            case Kind::hinge:
            case Kind::squared_hinge: {
                const double y = binary01 ? 2.0 * t - 1.0 : t;
                const double m = std::max(1.0 - y * p, 0.0);
                return kind_ == Kind::hinge ? VD{m, m > 0 ? -y : 0.0} : VD{m * m, -2.0 * y * m};
            }
            case Kind::poisson: return {p - t * std::log(p + kEps), 1.0 - t / (p + kEps)};
            default: return {0, 0};
        }
    }

    double elementwise(const float* p, const float* t, const float* w, Index N, Index D, float* g, float scale,
                       double* per_sample) const {
        // Keras's hinge losses map {0, 1} labels to {-1, 1} when every label of the batch is 0 or 1.
        bool binary01 = kind_ == Kind::hinge || kind_ == Kind::squared_hinge;
        for (Index k = 0; binary01 && k < N * D; ++k) binary01 = t[k] == 0.f || t[k] == 1.f;
        double total = 0.0;
        const double invD = 1.0 / static_cast<double>(D);
        for (Index i = 0; i < N; ++i) {
            const double wi = weight(w, i);
            double li = 0.0;
            for (Index j = 0; j < D; ++j) {
                const Index k = i * D + j;
                const VD r = element(p[k], t[k], binary01);
                li += r.v;
                if (g) g[k] = static_cast<float>(scale * wi * invD * r.d);
            }
            total += wi * li * invD;
            if (per_sample) per_sample[i] = li * invD;
        }
        return total;
    }

    double over_classes(const float* p, const float* t, const float* w, Index N, Index D, float* g, float scale,
                        double* per_sample) const {
        double total = 0.0;
        std::vector<double> tv(static_cast<std::size_t>(D)), dv(static_cast<std::size_t>(D));
        for (Index i = 0; i < N; ++i) {
            const float* pi = p + i * D;
            const double wi = weight(w, i);
            if (kind_ == Kind::scce) {
                const float c = t[i];
                if (!(c >= 0.f && c < static_cast<float>(D)) || c != std::floor(c))
                    throw InvalidArgument("sparse_categorical_crossentropy: label " + std::to_string(c) + " at row " +
                                          std::to_string(i) + " is not a class id in [0, " + std::to_string(D) + ")");
                std::fill(tv.begin(), tv.end(), 0.0);
                tv[static_cast<std::size_t>(c)] = 1.0;
            } else {
                for (Index j = 0; j < D; ++j) tv[j] = t[i * D + j];
                if (kind_ == Kind::cce && s_.label_smoothing > 0)
                    for (Index j = 0; j < D; ++j) tv[j] = tv[j] * (1.0 - s_.label_smoothing) + s_.label_smoothing / D;
            }
            const double li = sample(pi, tv.data(), dv.data(), D);
            if (g)
                for (Index j = 0; j < D; ++j) g[i * D + j] = static_cast<float>(scale * wi * dv[j]);
            total += wi * li;
            if (per_sample) per_sample[i] = li;
        }
        return total;
    }

    // Loss of one sample over D classes; writes dl/dp into d.
    double sample(const float* p, const double* t, double* d, Index D) const {
        double l = 0.0;
        switch (kind_) {
            case Kind::kld:  // sum t log(t/p) with both clipped to [eps, 1]
                for (Index j = 0; j < D; ++j) {
                    const double tc = std::clamp(t[j], kEps, 1.0), pc = std::clamp(double(p[j]), kEps, 1.0);
                    l += tc * std::log(tc / pc);
                    d[j] = pc == p[j] ? -tc / pc : 0.0;
                }
                return l;
            case Kind::categorical_hinge: {  // max(max((1-t) p) - sum(t p) + 1, 0)
                double pos = 0.0, neg = -INFINITY;
                Index arg = 0;
                for (Index j = 0; j < D; ++j) {
                    pos += t[j] * p[j];
                    const double nv = (1.0 - t[j]) * p[j];
                    if (nv > neg) neg = nv, arg = j;
                }
                l = std::max(neg - pos + 1.0, 0.0);
                for (Index j = 0; j < D; ++j) d[j] = l > 0 ? -t[j] + (j == arg ? 1.0 - t[j] : 0.0) : 0.0;
                return l;
            }
            default: break;
        }
        double tsum = 0.0;
        for (Index j = 0; j < D; ++j) tsum += t[j];
        if (s_.from_logits) {
            double mx = p[0];
            for (Index j = 1; j < D; ++j) mx = std::max(mx, double(p[j]));
            double se = 0.0;
            for (Index j = 0; j < D; ++j) se += std::exp(p[j] - mx);
            const double lse = mx + std::log(se);
            for (Index j = 0; j < D; ++j) {
                l -= t[j] * (p[j] - lse);
                d[j] = tsum * std::exp(p[j] - lse) - t[j];
            }
            return l;
        }
        // Keras: q = p / sum(p), clipped to [eps, 1-eps], loss = -sum t log q.
        double s = 0.0;
        for (Index j = 0; j < D; ++j) s += p[j];
        double dot = 0.0;  // sum_k dL/dq_k * q_k
        for (Index j = 0; j < D; ++j) {
            const double q = p[j] / s;
            const float qf = static_cast<float>(q);
            const bool clipped = qf < kEpsF || qf > 1.f - kEpsF;
            l -= t[j] * std::log(clipped ? double(std::clamp(qf, kEpsF, 1.f - kEpsF)) : q);
            d[j] = clipped ? 0.0 : -t[j] / q;
            dot += d[j] * q;
        }
        for (Index j = 0; j < D; ++j) d[j] = (d[j] - dot) / s;
        return l;
    }

    Kind kind_;
    LossSpec s_;
};

const std::pair<const char*, Kind> kNames[] = {
    {"binary_crossentropy", Kind::bce},
    {"binary_focal_crossentropy", Kind::focal},
    {"categorical_crossentropy", Kind::cce},
    {"sparse_categorical_crossentropy", Kind::scce},
    {"mean_squared_error", Kind::mse},
    {"mean_absolute_error", Kind::mae},
    {"mean_absolute_percentage_error", Kind::mape},
    {"mean_squared_logarithmic_error", Kind::msle},
    {"huber", Kind::huber},
    {"log_cosh", Kind::log_cosh},
    {"hinge", Kind::hinge},
    {"squared_hinge", Kind::squared_hinge},
    {"categorical_hinge", Kind::categorical_hinge},
    {"kl_divergence", Kind::kld},
    {"poisson", Kind::poisson},
};
}  // namespace

double Loss::divisor(const float* w, Index N) const {
    if (reduction == "sum") return 1.0;
    if (reduction == "mean_with_sample_weight" && w) {
        double s = 0.0;
        for (Index i = 0; i < N; ++i) s += w[i];
        return s;
    }
    return static_cast<double>(N);
}

double Loss::reduced(const float* y_pred, const float* y_true, const float* w, Index N, Index D, float* grad,
                     double* per_sample) const {
    const double div = divisor(w, N);
    if (div > 0) return compute(y_pred, y_true, w, N, D, grad, static_cast<float>(1.0 / div), per_sample) / div;
    if (per_sample) compute(y_pred, y_true, w, N, D, nullptr, 0.f, per_sample);
    if (grad) std::fill(grad, grad + N * D, 0.f);
    return 0.0;
}

std::string loss_names() {
    std::string s;
    for (const auto& [n, _] : kNames) s += (s.empty() ? "" : ", ") + std::string(n);
    return s;
}

std::unique_ptr<Loss> make_loss(const LossSpec& spec) {
    for (const auto& [n, kind] : kNames) {
        if (spec.name != n) continue;
        if (!(spec.label_smoothing >= 0 && spec.label_smoothing <= 1))
            throw InvalidArgument(spec.name + ": label_smoothing must be in [0, 1]");
        if (!(spec.delta > 0)) throw InvalidArgument(spec.name + ": delta must be > 0");
        if (!(spec.gamma >= 0)) throw InvalidArgument(spec.name + ": gamma must be >= 0");
        if (!(spec.alpha >= 0 && spec.alpha <= 1)) throw InvalidArgument(spec.name + ": alpha must be in [0, 1]");
        const std::string& r = spec.reduction;
        if (r != "sum_over_batch_size" && r != "mean" && r != "sum" && r != "mean_with_sample_weight")
            throw InvalidArgument(spec.name + ": unknown reduction '" + r +
                                  "'; valid: sum_over_batch_size, mean, sum, mean_with_sample_weight");
        auto loss = std::make_unique<KerasLoss>(kind, spec);
        loss->reduction = r;
        return loss;
    }
    throw InvalidArgument("unknown loss '" + spec.name + "'; valid names: " + loss_names());
}

}  // namespace maasfin
