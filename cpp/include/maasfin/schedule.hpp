// Learning-rate schedules with Keras 3's names and formulas, evaluated at the optimizer's step
// count (0 at the first update).
#pragma once

#include <string>
#include <vector>

#include "maasfin/common.hpp"

namespace maasfin {

struct ScheduleSpec {
    // exponential_decay, inverse_time_decay, piecewise_constant_decay, cosine_decay, polynomial_decay
    std::string kind;
    double initial_learning_rate = 0.0;
    double decay_steps = 1.0;
    double decay_rate = 0.0;                 // exponential, inverse time
    bool staircase = false;                  // exponential, inverse time
    std::vector<double> boundaries, values;  // piecewise constant
    double alpha = 0.0;                      // cosine: floor as a fraction of the peak
    double warmup_target = -1.0;             // cosine: peak after warm-up (< 0: no warm-up target)
    double warmup_steps = 0.0;               // cosine
    double end_learning_rate = 0.0001;       // polynomial
    double power = 1.0;                      // polynomial
    bool cycle = false;                      // polynomial
};

// Validates a spec (throws InvalidArgument naming the field).
void check_schedule(const ScheduleSpec& s);
// The learning rate at `step`.
double schedule_value(const ScheduleSpec& s, double step);

}  // namespace maasfin
