// Stateful metrics, usable inside the C++ batch loops and standalone from Python.
// Sample weights weight each sample's value (the metric's weighted mean), as Keras does.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "maasfin/common.hpp"

namespace maasfin {

class Metric {
public:
    virtual ~Metric() = default;
    // y_pred: N x D; y_true: N x T (T = D, or 1 for the sparse metrics); w: N weights or null.
    virtual void update(const float* y_pred, const float* y_true, const float* w, Index N, Index D, Index T) = 0;
    // One value, or one per class for per-class metrics (F-beta with average=None).
    virtual std::vector<double> result() const = 0;
    virtual void reset() = 0;
    // Target columns this metric expects for an output of width D.
    virtual Index target_width(Index D) const { return D; }
};

struct MetricSpec {
    std::string kind;                  // see make_metric
    std::vector<float> thresholds;     // binary_accuracy, precision, recall, fbeta (empty: argmax)
    Index k = 5;                       // top-k accuracies
    Index class_id = -1;               // precision/recall on one column
    double beta = 1.0;                 // fbeta
    std::string average;               // fbeta: "", "micro", "macro", "weighted"
    bool from_logits = false;          // auc, ks, gini
    Index top_k = 0;                   // precision/recall: only a row's top_k scores can be positive (0: off)
    bool multi_label = false;          // auc, ks, gini: one value per output column, then their (weighted) mean
    std::vector<float> label_weights;  // auc: per column, weighting the mean (multi_label) or every entry
    Index n_bins = 10;                 // expected_calibration_error
    std::string strategy = "uniform";  // expected_calibration_error: "uniform" or "quantile" bin edges
};

// Kinds: binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
// top_k_categorical_accuracy, sparse_top_k_categorical_accuracy, mean_squared_error,
// root_mean_squared_error, mean_absolute_error, precision, recall, fbeta, roc_auc, pr_auc, ks, gini,
// brier_score, expected_calibration_error.
// Throws InvalidArgument listing valid kinds or naming a bad parameter.
std::unique_ptr<Metric> make_metric(const MetricSpec& spec);

// The calibration metrics (calibration_metric.cpp), each output entry a probability of the
// positive class: brier_score (weighted mean of (p - y)^2) and expected_calibration_error
// (scikit-learn's calibration_curve bins; sum over bins of |sum w*y - sum w*p| / sum w). Null for
// any other kind.
std::unique_ptr<Metric> make_calibration_metric(const MetricSpec& spec);

}  // namespace maasfin
