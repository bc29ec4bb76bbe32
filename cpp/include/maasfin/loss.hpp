// Losses with Keras's definitions and the "sum_over_batch_size" reduction:
//   batch loss = sum_i w_i * l_i / N, with l_i the per-sample loss (mean over the last axis for
//   elementwise losses, sum over classes for cross-entropies).
#pragma once

#include <memory>
#include <string>

#include "maasfin/common.hpp"

namespace maasfin {

class Loss {
public:
    virtual ~Loss() = default;
    // y_pred: N x D; y_true: N x target_width(D); w: N sample weights or null (all ones).
    // Returns sum_i w_i * l_i. When grad is non-null, writes grad_scale * d(sum_i w_i l_i)/d y_pred;
    // when per_sample is non-null, writes the unweighted l_i there (N values).
    virtual double compute(const float* y_pred, const float* y_true, const float* w, Index N, Index D,
                           float* grad, float grad_scale, double* per_sample = nullptr) const = 0;
    // Columns of y_true for an output of width D.
    virtual Index target_width(Index D) const { return D; }
};

// Names as in Keras ("binary_crossentropy", ...). Throws InvalidArgument listing valid names.
std::unique_ptr<Loss> make_loss(const std::string& name, bool from_logits);
std::string loss_names();

}  // namespace maasfin
