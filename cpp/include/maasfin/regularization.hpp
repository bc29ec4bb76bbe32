// Weight penalties (Keras kernel/bias/activity regularizers: l1 * sum|w| + l2 * sum w^2, added to
// the reported loss) and weight constraints (applied after every optimizer step).
#pragma once

#include <string>

#include "maasfin/common.hpp"

namespace maasfin {

struct Penalty {
    Range range;  // arena slice of one weight tensor
    double l1 = 0.0, l2 = 0.0;
};

// Penalty value of the slice, and its gradient added into grads.
double penalty_value(const Penalty& p, const float* params);
void add_penalty_grad(const Penalty& p, const float* params, float* grads);
// Same for a block of activations y[0..n).
double activity_penalty(double l1, double l2, const float* y, Index n);
void add_activity_grad(double l1, double l2, const float* y, float* dy, Index n);

struct Constraint {
    std::string kind;  // non_neg, max_norm, unit_norm, min_max_norm
    Range range;
    Index rows = 1, cols = 1;  // the tensor seen as rows x cols
    bool over_rows = true;     // norms over the first axis (Keras axis=0), else over the last
    double min_value = 0.0, max_value = 2.0, rate = 1.0;
};

// Throws InvalidArgument naming the bad field.
void check_constraint(const Constraint& c);
void apply_constraint(const Constraint& c, float* params);

}  // namespace maasfin
