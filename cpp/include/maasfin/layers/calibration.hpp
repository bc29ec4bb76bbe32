// Calibration: maps a predicted probability p (one value per sample) to a calibrated one. Keras has
// no such layer; maasfin.calibration.calibrate fits it and appends it to a model.
//   isotonic: piecewise-linear interpolation through K knots (x_thresholds ascending, y_thresholds),
//             p clipped to [x_0, x_{K-1}] first (scikit-learn's IsotonicRegression, out_of_bounds="clip")
//   platt:    sigmoid(slope * logit(p) + intercept)
//   beta:     sigmoid(a * ln(p) - b * ln(1 - p) + c)   (Kull, Silva Filho and Flach, 2017)
// Platt and beta clip p to [kCalibrationEpsilon, 1 - kCalibrationEpsilon] before the logarithms.
// Everything is computed in double and rounded to float32 once; the parameters are non-trainable
// arena weights.
#pragma once

#include "maasfin/layer.hpp"

namespace maasfin {

enum class CalibrationMethod { isotonic, platt, beta };

constexpr double kCalibrationEpsilon = 1e-7;

// "isotonic", "platt" or "beta"; throws InvalidArgument naming the valid methods.
CalibrationMethod parse_calibration_method(const std::string& method);

class Calibration : public Layer {
public:
    // num_knots: K >= 1 for isotonic (ignored otherwise).
    Calibration(CalibrationMethod method, Index num_knots);
    std::string kind() const override { return "Calibration"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

    // The calibrated value of one probability and its derivative d(value)/dp.
    double value(double p, const float* params, double* derivative) const;

private:
    CalibrationMethod method_;
    Index knots_;
    Index first_ = -1;  // arena offset of the first weight; the others follow their own offsets
    Index second_ = -1, third_ = -1;
};

}  // namespace maasfin
