// Calibration metrics. Shapes: y_pred N x D, y_true N x D, w N (or null = all ones); every entry
// is one binary prediction (a probability) and its 0/1 label.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "maasfin/metric.hpp"

namespace maasfin {

namespace {
inline double weight(const float* w, Index i) { return w ? w[i] : 1.0; }

// Labels and probabilities outside [0, 1] are user errors; a NaN probability makes the result NaN
// (as the ranking metrics do) so that a diverging fit shows in the logs instead of stopping.
bool check_entry(const std::string& kind, float p, float label, Index row) {
    if (!(label >= 0.f && label <= 1.f))
        throw InvalidArgument(kind + ": labels must be in [0, 1], got " + std::to_string(label) + " at row " +
                              std::to_string(row));
    if (std::isnan(p)) return false;
    if (!(p >= 0.f && p <= 1.f))
        throw InvalidArgument(kind + ": y_pred must be probabilities in [0, 1], got " + std::to_string(p) + " at row " +
                              std::to_string(row) + "; end the model with a sigmoid");
    return true;
}

class BrierScore : public Metric {
public:
    void update(const float* p, const float* t, const float* w, Index N, Index D, Index) override {
        for (Index i = 0; i < N; ++i) {
            const double wi = weight(w, i);
            for (Index j = 0; j < D; ++j) {
                const Index k = i * D + j;
                if (!check_entry("brier_score", p[k], t[k], i)) {
                    nonfinite_ = true;
                    continue;
                }
                const double e = double(p[k]) - t[k];
                total_ += wi * e * e;
                count_ += wi;
            }
        }
    }
    std::vector<double> result() const override {
        if (nonfinite_) return {std::nan("")};
        return {count_ > 0 ? total_ / count_ : 0.0};
    }
    void reset() override {
        total_ = count_ = 0.0;
        nonfinite_ = false;
    }

private:
    double total_ = 0.0, count_ = 0.0;
    bool nonfinite_ = false;
};

// numpy.percentile(sorted, 100 * q) with the default linear method, step by step as NumPy computes it.
double percentile(const std::vector<double>& sorted, double q) {
    const Index n = static_cast<Index>(sorted.size());
    const double v = static_cast<double>(n - 1) * q;
    if (v >= static_cast<double>(n - 1)) return sorted.back();
    if (v < 0) return sorted.front();
    const double prev = std::floor(v);
    const double t = v - prev;
    const double a = sorted[static_cast<std::size_t>(prev)], b = sorted[static_cast<std::size_t>(prev) + 1];
    const double d = b - a;
    return t >= 0.5 ? b - d * (1 - t) : a + d * t;
}

// Keeps every (probability, label, weight) of the epoch: quantile bins need all of them.
class CalibrationError : public Metric {
public:
    CalibrationError(Index n_bins, bool quantile) : n_bins_(n_bins), quantile_(quantile) {}

    void update(const float* p, const float* t, const float* w, Index N, Index D, Index) override {
        for (Index i = 0; i < N; ++i)
            for (Index j = 0; j < D; ++j) {
                const Index k = i * D + j;
                if (!check_entry("expected_calibration_error", p[k], t[k], i)) {
                    nonfinite_ = true;
                    continue;
                }
                probs_.push_back(p[k]);
                labels_.push_back(t[k]);
                weights_.push_back(static_cast<float>(weight(w, i)));
            }
    }

    std::vector<double> result() const override {
        if (nonfinite_) return {std::nan("")};
        if (probs_.empty()) return {0.0};
        const std::vector<double> edges = interior_edges();
        std::vector<double> wsum(n_bins_, 0.0), wy(n_bins_, 0.0), wp(n_bins_, 0.0);
        double total = 0.0;
        for (std::size_t i = 0; i < probs_.size(); ++i) {
            // numpy.searchsorted(edges, p, side="left"): the number of edges below p
            const double p = probs_[i];
            const auto b = static_cast<std::size_t>(std::lower_bound(edges.begin(), edges.end(), p) - edges.begin());
            wsum[b] += weights_[i];
            wy[b] += double(weights_[i]) * labels_[i];
            wp[b] += double(weights_[i]) * p;
            total += weights_[i];
        }
        if (!(total > 0)) return {0.0};
        double ece = 0.0;
        for (Index b = 0; b < n_bins_; ++b) ece += std::fabs(wy[b] - wp[b]);
        return {ece / total};
    }

    void reset() override {
        probs_.clear();
        labels_.clear();
        weights_.clear();
        nonfinite_ = false;
    }

private:
    // The n_bins - 1 edges between the bins, as scikit-learn's calibration_curve draws them.
    std::vector<double> interior_edges() const {
        std::vector<double> edges;
        const double step = 1.0 / static_cast<double>(n_bins_);  // numpy.linspace(0, 1, n_bins + 1)
        std::vector<double> sorted;
        if (quantile_) {
            sorted.assign(probs_.begin(), probs_.end());
            std::sort(sorted.begin(), sorted.end());
        }
        for (Index b = 1; b < n_bins_; ++b) {
            const double q = static_cast<double>(b) * step;
            edges.push_back(quantile_ ? percentile(sorted, q * 100.0 / 100.0) : q);
        }
        return edges;
    }

    Index n_bins_;
    bool quantile_;
    std::vector<float> probs_, labels_, weights_;
    bool nonfinite_ = false;
};
}  // namespace

std::unique_ptr<Metric> make_calibration_metric(const MetricSpec& s) {
    if (s.kind == "brier_score") return std::make_unique<BrierScore>();
    if (s.kind == "expected_calibration_error") {
        if (s.n_bins < 1)
            throw InvalidArgument("expected_calibration_error: n_bins must be >= 1, got " + std::to_string(s.n_bins));
        if (s.strategy != "uniform" && s.strategy != "quantile")
            throw InvalidArgument("expected_calibration_error: strategy must be 'uniform' or 'quantile', got '" +
                                  s.strategy + "'");
        return std::make_unique<CalibrationError>(s.n_bins, s.strategy == "quantile");
    }
    return nullptr;
}

}  // namespace maasfin
