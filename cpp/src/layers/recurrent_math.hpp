// Internal to the recurrent layers: the activations they allow (forward runs through
// kernels::eltwise_fwd) and their derivatives taken from the activation's output, so that forward
// saves outputs only.
#pragma once

#include <cmath>

#include "maasfin/activation.hpp"

namespace maasfin::recurrent {

inline bool supported(Activation a) {
    return a == Activation::tanh || a == Activation::sigmoid || a == Activation::relu || a == Activation::linear;
}

// d act / d v at the v for which act(v) = y.
inline float grad(Activation a, float y) {
    switch (a) {
        case Activation::tanh: return 1.f - y * y;
        case Activation::sigmoid: return y * (1.f - y);
        case Activation::relu: return y > 0.f ? 1.f : 0.f;
        default: return 1.f;
    }
}

}  // namespace maasfin::recurrent
