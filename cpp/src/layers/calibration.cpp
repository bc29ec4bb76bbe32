#include "maasfin/layers/calibration.hpp"

#include <algorithm>
#include <cmath>

namespace maasfin {

namespace {
inline double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
}  // namespace

CalibrationMethod parse_calibration_method(const std::string& method) {
    if (method == "isotonic") return CalibrationMethod::isotonic;
    if (method == "platt") return CalibrationMethod::platt;
    if (method == "beta") return CalibrationMethod::beta;
    throw InvalidArgument("unknown calibration method '" + method + "'; valid methods: isotonic, platt, beta");
}

Calibration::Calibration(CalibrationMethod method, Index num_knots) : method_(method), knots_(num_knots) {
    if (method_ == CalibrationMethod::isotonic && knots_ < 1)
        throw InvalidArgument("Calibration: isotonic calibration needs num_knots >= 1, got " + std::to_string(knots_));
}

// in: (1,) -> out: (1,)
Shape Calibration::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    if (inputs.size() != 1 || numel(inputs[0]) != 1)
        throw InvalidArgument("Calibration '" + name_ + "' expects one probability per sample (shape (1,)), got " +
                              (inputs.empty() ? std::string("no input") : "shape " + shape_str(inputs[0])));
    switch (method_) {
        case CalibrationMethod::isotonic:
            first_ = params.add("x_thresholds", {knots_}, Initializer::zeros, false);
            second_ = params.add("y_thresholds", {knots_}, Initializer::zeros, false);
            break;
        case CalibrationMethod::platt:
            first_ = params.add("slope", {1}, Initializer::ones, false);
            second_ = params.add("intercept", {1}, Initializer::zeros, false);
            break;
        case CalibrationMethod::beta:
            first_ = params.add("a", {1}, Initializer::ones, false);
            second_ = params.add("b", {1}, Initializer::ones, false);
            third_ = params.add("c", {1}, Initializer::zeros, false);
            break;
    }
    return inputs[0];
}

double Calibration::value(double p, const float* params, double* derivative) const {
    if (method_ == CalibrationMethod::isotonic) {
        if (std::isnan(p)) {  // the search below would place NaN on a knot
            *derivative = p;
            return p;
        }
        const float* xs = params + first_;
        const float* ys = params + second_;
        // Segment j: the last knot at or below p (p clipped to the knots' range).
        const Index above = std::upper_bound(xs, xs + knots_, static_cast<float>(p)) - xs;
        const bool inside = p > xs[0] && p < xs[knots_ - 1];
        if (above == 0) {
            *derivative = 0.0;
            return ys[0];
        }
        const Index j = above - 1;
        if (j == knots_ - 1) {
            *derivative = 0.0;
            return ys[j];
        }
        const double slope = (double(ys[j + 1]) - ys[j]) / (double(xs[j + 1]) - xs[j]);
        *derivative = inside ? slope : 0.0;
        return ys[j] + slope * (p - xs[j]);
    }
    const double lo = kCalibrationEpsilon, hi = 1.0 - kCalibrationEpsilon;
    const double q = std::min(std::max(p, lo), hi);
    const double clip = (p > lo && p < hi) ? 1.0 : 0.0;  // the clipped range has no slope
    const double lp = std::log(q), lq = std::log(1.0 - q);
    double z, dz;
    if (method_ == CalibrationMethod::platt) {
        const double slope = params[first_], intercept = params[second_];
        z = slope * (lp - lq) + intercept;
        dz = slope * (1.0 / q + 1.0 / (1.0 - q));
    } else {
        const double a = params[first_], b = params[second_], c = params[third_];
        z = a * lp - b * lq + c;
        dz = a / q + b / (1.0 - q);
    }
    const double s = sigmoid(z);
    *derivative = clip * s * (1.0 - s) * dz;
    return s;
}

// x, y: N x 1
void Calibration::forward(const ForwardArgs& a) const {
    double d = 0.0;
    for (Index i = 0; i < a.N; ++i) a.y[i] = static_cast<float>(value(a.x[0][i], a.params, &d));
}

void Calibration::backward(const BackwardArgs& a) const {
    const Index count = method_ == CalibrationMethod::isotonic ? knots_ : 1;
    std::fill(a.grads + first_, a.grads + first_ + count, 0.f);
    std::fill(a.grads + second_, a.grads + second_ + count, 0.f);
    if (third_ >= 0) a.grads[third_] = 0.f;
    if (!a.dx[0]) return;
    double d = 0.0;
    for (Index i = 0; i < a.N; ++i) {
        value(a.x[0][i], a.params, &d);
        a.dx[0][i] = static_cast<float>(a.dy[i] * d);
    }
}

}  // namespace maasfin
