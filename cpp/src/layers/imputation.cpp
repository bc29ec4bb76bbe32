#include "maasfin/layers/imputation.hpp"

#include <algorithm>
#include <cmath>

namespace maasfin {

// in: (C) -> out: (C), or (2C) with the indicator columns after the values
Shape Imputation::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    if (inputs.size() != 1 || inputs[0].size() != 1)
        throw InvalidArgument("Imputation '" + name_ + "' expects inputs of shape (batch, features)" +
                              (inputs.size() == 1 ? ", got per-sample shape " + shape_str(inputs[0]) : ""));
    c_ = inputs[0][0];
    fill_ = params.add("fill_value", {c_}, Initializer::zeros, false);
    return {add_indicator_ ? 2 * c_ : c_};
}

// x: N x C, y: N x (C or 2C)
void Imputation::forward(const ForwardArgs& a) const {
    const Index N = a.N, C = c_, W = add_indicator_ ? 2 * C : C;
    const float* fill = a.params + fill_;
    for (Index n = 0; n < N; ++n)
        for (Index c = 0; c < C; ++c) {
            const float x = a.x[0][n * C + c];
            const bool missing = std::isnan(x);
            a.y[n * W + c] = missing ? fill[c] : x;
            if (add_indicator_) a.y[n * W + C + c] = missing ? 1.f : 0.f;
        }
}

// Identity where a value was present; an imputed value does not depend on the input.
void Imputation::backward(const BackwardArgs& a) const {
    const Index N = a.N, C = c_, W = add_indicator_ ? 2 * C : C;
    std::fill(a.grads + fill_, a.grads + fill_ + C, 0.f);
    if (!a.dx[0]) return;
    for (Index n = 0; n < N; ++n)
        for (Index c = 0; c < C; ++c) a.dx[0][n * C + c] = std::isnan(a.x[0][n * C + c]) ? 0.f : a.dy[n * W + c];
}

}  // namespace maasfin
