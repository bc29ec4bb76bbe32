#include "maasfin/schedule.hpp"

#include <algorithm>
#include <cmath>

namespace maasfin {

namespace {
constexpr double kPi = 3.14159265358979323846;
}

void check_schedule(const ScheduleSpec& s) {
    const std::string& k = s.kind;
    if (k == "piecewise_constant_decay") {
        if (s.values.size() != s.boundaries.size() + 1)
            throw InvalidArgument("PiecewiseConstantDecay: values must have one more entry than boundaries (got " +
                                  std::to_string(s.values.size()) + " values, " + std::to_string(s.boundaries.size()) +
                                  " boundaries)");
        if (!std::is_sorted(s.boundaries.begin(), s.boundaries.end()))
            throw InvalidArgument("PiecewiseConstantDecay: boundaries must be increasing");
        return;
    }
    if (k != "exponential_decay" && k != "inverse_time_decay" && k != "cosine_decay" && k != "polynomial_decay")
        throw InvalidArgument("unknown learning-rate schedule '" + k + "'");
    if (!(s.decay_steps > 0)) throw InvalidArgument(k + ": decay_steps must be > 0");
    if (!(s.initial_learning_rate >= 0)) throw InvalidArgument(k + ": initial_learning_rate must be >= 0");
    if (k == "cosine_decay" && !(s.warmup_steps >= 0)) throw InvalidArgument(k + ": warmup_steps must be >= 0");
}

double schedule_value(const ScheduleSpec& s, double step) {
    const double lr0 = s.initial_learning_rate;
    if (s.kind == "exponential_decay") {
        double p = step / s.decay_steps;
        if (s.staircase) p = std::floor(p);
        return lr0 * std::pow(s.decay_rate, p);
    }
    if (s.kind == "inverse_time_decay") {
        double p = step / s.decay_steps;
        if (s.staircase) p = std::floor(p);
        return lr0 / (1.0 + s.decay_rate * p);
    }
    if (s.kind == "piecewise_constant_decay") {
        // values[0] while step <= boundaries[0], values[i] while boundaries[i-1] < step <= boundaries[i].
        std::size_t i = 0;
        while (i < s.boundaries.size() && step > s.boundaries[i]) ++i;
        return s.values[i];
    }
    if (s.kind == "cosine_decay") {
        const bool warm = s.warmup_target >= 0 && s.warmup_steps > 0;
        if (warm && step < s.warmup_steps) return lr0 + (s.warmup_target - lr0) * (step / s.warmup_steps);
        const double peak = s.warmup_target >= 0 ? s.warmup_target : lr0;
        const double t = std::min(step - (warm ? s.warmup_steps : 0.0), s.decay_steps);
        const double cosine = 0.5 * (1.0 + std::cos(kPi * t / s.decay_steps));
        return peak * ((1.0 - s.alpha) * cosine + s.alpha);
    }
    // polynomial_decay
    double steps = s.decay_steps, t = step;
    if (s.cycle) {
        const double mult = step == 0 ? 1.0 : std::ceil(step / s.decay_steps);
        steps = s.decay_steps * mult;
    } else {
        t = std::min(step, s.decay_steps);
    }
    return (lr0 - s.end_learning_rate) * std::pow(1.0 - t / steps, s.power) + s.end_learning_rate;
}

}  // namespace maasfin
