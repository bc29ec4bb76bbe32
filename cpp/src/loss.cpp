// Keras loss definitions. Shapes: y_pred N x D, y_true N x D (N x 1 class ids for sparse), w N.
#include "maasfin/loss.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace maasfin {

namespace {
constexpr float kEps = 1e-7f;  // Keras backend.epsilon()

inline double weight(const float* w, Index i) { return w ? w[i] : 1.0; }

// -(t log p + (1-t) log(1-p)) with p clipped to [eps, 1-eps]; mean over D.
class BinaryCrossentropy : public Loss {
public:
    explicit BinaryCrossentropy(bool from_logits) : from_logits_(from_logits) {}
    double compute(const float* p, const float* t, const float* w, Index N, Index D, float* g,
                   float scale, double* per_sample) const override {
        double total = 0.0;
        const double invD = 1.0 / static_cast<double>(D);
        for (Index i = 0; i < N; ++i) {
            double li = 0.0;
            const double wi = weight(w, i);
            for (Index j = 0; j < D; ++j) {
                const Index k = i * D + j;
                const double y = t[k];
                if (from_logits_) {
                    const double z = p[k];
                    // log(1 + e^-|z|) + max(z, 0) - z*y
                    li += std::max(z, 0.0) - z * y + std::log1p(std::exp(-std::fabs(z)));
                    if (g) {
                        const double s = 1.0 / (1.0 + std::exp(-z));
                        g[k] = static_cast<float>(scale * wi * invD * (s - y));
                    }
                } else {
                    const float pc = std::clamp(p[k], kEps, 1.f - kEps);
                    const double q = pc;
                    li += -(y * std::log(q) + (1.0 - y) * std::log(1.0 - q));
                    if (g) {
                        const bool clipped = p[k] != pc;
                        g[k] = clipped ? 0.f
                                       : static_cast<float>(scale * wi * invD * (-(y / q) + (1.0 - y) / (1.0 - q)));
                    }
                }
            }
            total += wi * li * invD;
            if (per_sample) per_sample[i] = li * invD;
        }
        return total;
    }

private:
    bool from_logits_;
};

// Categorical cross-entropy over the last axis, one-hot (or soft) targets; `sparse` reads class ids.
class CategoricalCrossentropy : public Loss {
public:
    CategoricalCrossentropy(bool from_logits, bool sparse) : from_logits_(from_logits), sparse_(sparse) {}
    Index target_width(Index D) const override { return sparse_ ? 1 : D; }
    double compute(const float* p, const float* t, const float* w, Index N, Index D, float* g,
                   float scale, double* per_sample) const override {
        double total = 0.0;
        std::vector<double> tv(static_cast<std::size_t>(D));
        for (Index i = 0; i < N; ++i) {
            const float* pi = p + i * D;
            const double wi = weight(w, i);
            if (sparse_) {
                const float c = t[i];
                if (!(c >= 0.f && c < static_cast<float>(D)) || c != std::floor(c))
                    throw InvalidArgument("sparse_categorical_crossentropy: label " + std::to_string(c) +
                                          " at row " + std::to_string(i) + " is not a class id in [0, " +
                                          std::to_string(D) + ")");
                std::fill(tv.begin(), tv.end(), 0.0);
                tv[static_cast<std::size_t>(c)] = 1.0;
            } else {
                for (Index j = 0; j < D; ++j) tv[j] = t[i * D + j];
            }
            double tsum = 0.0;
            for (double v : tv) tsum += v;
            double li = 0.0;
            if (from_logits_) {
                double mx = pi[0];
                for (Index j = 1; j < D; ++j) mx = std::max(mx, double(pi[j]));
                double se = 0.0;
                for (Index j = 0; j < D; ++j) se += std::exp(pi[j] - mx);
                const double lse = mx + std::log(se);
                for (Index j = 0; j < D; ++j) li -= tv[j] * (pi[j] - lse);
                if (g)
                    for (Index j = 0; j < D; ++j)
                        g[i * D + j] = static_cast<float>(scale * wi * (tsum * std::exp(pi[j] - lse) - tv[j]));
            } else {
                // Keras: q = p / sum(p), clipped to [eps, 1-eps], loss = -sum t log q.
                double s = 0.0;
                for (Index j = 0; j < D; ++j) s += pi[j];
                double dot = 0.0;  // sum_k dL/dq_k * q_k
                for (Index j = 0; j < D; ++j) {
                    const double q = pi[j] / s;
                    const double qc = std::clamp(q, double(kEps), 1.0 - kEps);
                    li -= tv[j] * std::log(qc);
                    if (g) {
                        const double dq = q == qc ? -tv[j] / q : 0.0;
                        g[i * D + j] = static_cast<float>(dq);
                        dot += dq * q;
                    }
                }
                if (g)
                    for (Index j = 0; j < D; ++j)
                        g[i * D + j] = static_cast<float>(scale * wi * (g[i * D + j] - dot) / s);
            }
            total += wi * li;
            if (per_sample) per_sample[i] = li;
        }
        return total;
    }

private:
    bool from_logits_, sparse_;
};

enum class Elementwise { mse, mae, hinge };

// Mean over D of an elementwise penalty.
class ElementwiseLoss : public Loss {
public:
    explicit ElementwiseLoss(Elementwise kind) : kind_(kind) {}
    double compute(const float* p, const float* t, const float* w, Index N, Index D, float* g,
                   float scale, double* per_sample) const override {
        // Keras's hinge maps {0, 1} labels to {-1, 1} when every label of the batch is 0 or 1.
        bool binary01 = kind_ == Elementwise::hinge;
        for (Index k = 0; binary01 && k < N * D; ++k) binary01 = t[k] == 0.f || t[k] == 1.f;
        double total = 0.0;
        const double invD = 1.0 / static_cast<double>(D);
        for (Index i = 0; i < N; ++i) {
            const double wi = weight(w, i);
            double li = 0.0;
            for (Index j = 0; j < D; ++j) {
                const Index k = i * D + j;
                double v = 0.0, d = 0.0;
                const double e = double(p[k]) - t[k];
                switch (kind_) {
                    case Elementwise::mse: v = e * e; d = 2.0 * e; break;
                    case Elementwise::mae: v = std::fabs(e); d = (e > 0) - (e < 0); break;
                    case Elementwise::hinge: {
                        const double y = binary01 ? 2.0 * t[k] - 1.0 : t[k];
                        const double m = 1.0 - y * p[k];
                        v = m > 0 ? m : 0.0;
                        d = m > 0 ? -y : 0.0;
                        break;
                    }
                }
                li += v;
                if (g) g[k] = static_cast<float>(scale * wi * invD * d);
            }
            total += wi * li * invD;
            if (per_sample) per_sample[i] = li * invD;
        }
        return total;
    }

private:
    Elementwise kind_;
};

const char* const kLossNames[] = {"binary_crossentropy", "categorical_crossentropy",
                                  "sparse_categorical_crossentropy", "mean_squared_error",
                                  "mean_absolute_error", "hinge"};
}  // namespace

std::string loss_names() {
    std::string s;
    for (const char* n : kLossNames) s += (s.empty() ? "" : ", ") + std::string(n);
    return s;
}

std::unique_ptr<Loss> make_loss(const std::string& name, bool from_logits) {
    if (name == "binary_crossentropy") return std::make_unique<BinaryCrossentropy>(from_logits);
    if (name == "categorical_crossentropy") return std::make_unique<CategoricalCrossentropy>(from_logits, false);
    if (name == "sparse_categorical_crossentropy")
        return std::make_unique<CategoricalCrossentropy>(from_logits, true);
    if (name == "mean_squared_error") return std::make_unique<ElementwiseLoss>(Elementwise::mse);
    if (name == "mean_absolute_error") return std::make_unique<ElementwiseLoss>(Elementwise::mae);
    if (name == "hinge") return std::make_unique<ElementwiseLoss>(Elementwise::hinge);
    throw InvalidArgument("unknown loss '" + name + "'; valid names: " + loss_names());
}

}  // namespace maasfin
