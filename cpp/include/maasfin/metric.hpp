// Stateful metrics accumulated inside the C++ batch loops (unweighted, as Keras's `metrics`).
#pragma once

#include <memory>
#include <string>

#include "maasfin/common.hpp"

namespace maasfin {

class Metric {
public:
    virtual ~Metric() = default;
    // y_pred: N x D; y_true: N x D (or N x 1 class ids for the sparse metrics).
    virtual void update(const float* y_pred, const float* y_true, Index N, Index D) = 0;
    double result() const { return count_ > 0 ? total_ / count_ : 0.0; }
    void reset() { total_ = count_ = 0.0; }

protected:
    double total_ = 0.0, count_ = 0.0;
};

// Kinds: binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, mean_squared_error,
// mean_absolute_error. Throws InvalidArgument listing valid kinds.
std::unique_ptr<Metric> make_metric(const std::string& kind, float threshold);

}  // namespace maasfin
