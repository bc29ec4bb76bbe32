// Metrics accumulated per batch. Shapes: y_pred N x D, y_true N x D (N x 1 for sparse).
#include "maasfin/metric.hpp"

#include <cmath>

namespace maasfin {

namespace {
class BinaryAccuracy : public Metric {
public:
    explicit BinaryAccuracy(float threshold) : threshold_(threshold) {}
    void update(const float* p, const float* t, Index N, Index D) override {
        for (Index k = 0; k < N * D; ++k) total_ += ((p[k] > threshold_) == (t[k] > 0.5f)) ? 1.0 : 0.0;
        count_ += static_cast<double>(N * D);
    }

private:
    float threshold_;
};

inline Index argmax(const float* v, Index D) {
    Index best = 0;
    for (Index j = 1; j < D; ++j)
        if (v[j] > v[best]) best = j;
    return best;
}

class CategoricalAccuracy : public Metric {
public:
    explicit CategoricalAccuracy(bool sparse) : sparse_(sparse) {}
    void update(const float* p, const float* t, Index N, Index D) override {
        for (Index i = 0; i < N; ++i) {
            const Index pred = argmax(p + i * D, D);
            const Index truth = sparse_ ? static_cast<Index>(t[i]) : argmax(t + i * D, D);
            total_ += pred == truth ? 1.0 : 0.0;
        }
        count_ += static_cast<double>(N);
    }

private:
    bool sparse_;
};

class MeanError : public Metric {
public:
    explicit MeanError(bool squared) : squared_(squared) {}
    void update(const float* p, const float* t, Index N, Index D) override {
        for (Index k = 0; k < N * D; ++k) {
            const double e = double(p[k]) - t[k];
            total_ += squared_ ? e * e : std::fabs(e);
        }
        count_ += static_cast<double>(N * D);
    }

private:
    bool squared_;
};
}  // namespace

std::unique_ptr<Metric> make_metric(const std::string& kind, float threshold) {
    if (kind == "binary_accuracy") return std::make_unique<BinaryAccuracy>(threshold);
    if (kind == "categorical_accuracy") return std::make_unique<CategoricalAccuracy>(false);
    if (kind == "sparse_categorical_accuracy") return std::make_unique<CategoricalAccuracy>(true);
    if (kind == "mean_squared_error") return std::make_unique<MeanError>(true);
    if (kind == "mean_absolute_error") return std::make_unique<MeanError>(false);
    throw InvalidArgument("unknown metric '" + kind +
                          "'; valid names: binary_accuracy, categorical_accuracy, "
                          "sparse_categorical_accuracy, mean_squared_error, mean_absolute_error");
}

}  // namespace maasfin
