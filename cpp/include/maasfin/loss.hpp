// Losses with Keras 3's definitions and reductions.
//   l_i: per-sample loss (mean over the last axis for elementwise losses; a sum over classes for
//        cross-entropy, KL divergence and categorical hinge).
//   reduced loss: sum_i w_i l_i / divisor, divisor = N ("sum_over_batch_size", "mean"),
//        1 ("sum"), or sum_i w_i ("mean_with_sample_weight").
#pragma once

#include <memory>
#include <string>

#include "maasfin/common.hpp"

namespace maasfin {

struct LossSpec {
    std::string name;                  // snake_case Keras name, see loss_names()
    bool from_logits = false;          // binary/categorical cross-entropy, focal
    double label_smoothing = 0.0;      // binary/categorical cross-entropy, focal
    double delta = 1.0;                // huber
    double alpha = 0.25, gamma = 2.0;  // binary focal
    bool apply_class_balancing = false;
    std::string reduction = "sum_over_batch_size";
};

class Loss {
public:
    virtual ~Loss() = default;
    // y_pred: N x D; y_true: N x target_width(D); w: N sample weights or null (all ones).
    // Returns sum_i w_i * l_i. When grad is non-null, writes grad_scale * d(sum_i w_i l_i)/d y_pred;
    // when per_sample is non-null, writes the unweighted l_i there (N values).
    virtual double compute(const float* y_pred, const float* y_true, const float* w, Index N, Index D, float* grad,
                           float grad_scale, double* per_sample = nullptr) const = 0;
    // Columns of y_true for an output of width D.
    virtual Index target_width(Index D) const { return D; }
    // The reduced loss of a batch, sum_i w_i l_i / divisor, as Keras's divide_no_nan: a divisor
    // <= 0 (sample weights summing to zero) gives 0 and a zero gradient. grad (N x D, d(reduced
    // loss)/d y_pred) and per_sample (the unweighted l_i) are written when non-null.
    double reduced(const float* y_pred, const float* y_true, const float* w, Index N, Index D, float* grad,
                   double* per_sample = nullptr) const;
    std::string reduction = "sum_over_batch_size";

private:
    // The divisor of the reduction for a batch (see the file comment).
    double divisor(const float* w, Index N) const;
};

// Throws InvalidArgument listing valid names or naming the bad parameter.
std::unique_ptr<Loss> make_loss(const LossSpec& spec);
std::string loss_names();

}  // namespace maasfin
