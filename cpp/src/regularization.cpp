#include "maasfin/regularization.hpp"

#include <algorithm>
#include <cmath>

namespace maasfin {

namespace {
constexpr double kEps = 1e-7;  // Keras backend.epsilon()
inline float sign(float v) { return static_cast<float>((v > 0) - (v < 0)); }
}  // namespace

double penalty_value(const Penalty& p, const float* params) {
    return activity_penalty(p.l1, p.l2, params + p.range.begin, p.range.end - p.range.begin);
}

void add_penalty_grad(const Penalty& p, const float* params, float* grads) {
    add_activity_grad(p.l1, p.l2, params + p.range.begin, grads + p.range.begin, p.range.end - p.range.begin);
}

double activity_penalty(double l1, double l2, const float* y, Index n) {
    double a = 0.0, s = 0.0;
    for (Index i = 0; i < n; ++i) {
        a += std::fabs(y[i]);
        s += double(y[i]) * y[i];
    }
    return l1 * a + l2 * s;
}

void add_activity_grad(double l1, double l2, const float* y, float* dy, Index n) {
    const float a = static_cast<float>(l1), b = static_cast<float>(2.0 * l2);
    for (Index i = 0; i < n; ++i) dy[i] += a * sign(y[i]) + b * y[i];
}

void check_constraint(const Constraint& c) {
    if (c.kind != "non_neg" && c.kind != "max_norm" && c.kind != "unit_norm" && c.kind != "min_max_norm")
        throw InvalidArgument("unknown constraint '" + c.kind + "'; valid: non_neg, max_norm, unit_norm, min_max_norm");
    if (c.rows * c.cols != c.range.end - c.range.begin)
        throw InvalidArgument("constraint: rows x cols does not match the weight's size");
    if (!(c.max_value >= 0) || !(c.min_value >= 0) || c.min_value > c.max_value)
        throw InvalidArgument("constraint: need 0 <= min_value <= max_value");
    if (!(c.rate >= 0 && c.rate <= 1)) throw InvalidArgument("constraint: rate must be in [0, 1]");
}

// Tensor w: rows x cols. Norms are taken over rows (one per column) or over cols (one per row).
void apply_constraint(const Constraint& c, float* params) {
    float* w = params + c.range.begin;
    const Index n = c.range.end - c.range.begin;
    if (c.kind == "non_neg") {
        for (Index i = 0; i < n; ++i) w[i] = std::max(w[i], 0.f);
        return;
    }
    const Index groups = c.over_rows ? c.cols : c.rows, len = c.over_rows ? c.rows : c.cols;
    const Index stride = c.over_rows ? c.cols : 1, step = c.over_rows ? 1 : c.cols;
    for (Index g = 0; g < groups; ++g) {
        float* base = w + g * step;
        double sq = 0.0;
        for (Index k = 0; k < len; ++k) sq += double(base[k * stride]) * base[k * stride];
        const double norm = std::sqrt(sq);
        double factor;
        if (c.kind == "unit_norm") {
            factor = 1.0 / (kEps + norm);
        } else {
            const double lo = c.kind == "max_norm" ? 0.0 : c.min_value;
            const double clipped = std::clamp(norm, lo, c.max_value);
            const double desired = c.kind == "max_norm" ? clipped : c.rate * clipped + (1.0 - c.rate) * norm;
            factor = desired / (kEps + norm);
        }
        for (Index k = 0; k < len; ++k) base[k * stride] = static_cast<float>(base[k * stride] * factor);
    }
}

}  // namespace maasfin
