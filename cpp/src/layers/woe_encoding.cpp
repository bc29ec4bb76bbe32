#include "maasfin/layers/woe_encoding.hpp"

#include <algorithm>
#include <cmath>

namespace maasfin {

WoEEncoding::WoEEncoding(Index num_boundaries, Index num_special, Index num_categories)
    : b_(num_boundaries), s_(num_special), v_(num_categories) {
    if (b_ < 0 || s_ < 0 || v_ < 0) throw InvalidArgument("WoEEncoding: counts of bins and values must be >= 0");
    if (v_ > 0 && (b_ > 0 || s_ > 0))
        throw InvalidArgument("WoEEncoding: a categorical encoding has no bin boundaries or special values");
}

// in: (1,) -> out: (1,)
Shape WoEEncoding::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    if (inputs.size() != 1 || numel(inputs[0]) != 1)
        throw InvalidArgument("WoEEncoding '" + name_ + "' encodes one feature per sample (shape (1,)), got " +
                              (inputs.empty() ? std::string("no input") : "shape " + shape_str(inputs[0])));
    if (v_ > 0) {
        woe_ = params.add("woe", {v_}, Initializer::zeros, false);
        return inputs[0];
    }
    if (b_ > 0) boundaries_ = params.add("bin_boundaries", {b_}, Initializer::zeros, false);
    if (s_ > 0) special_ = params.add("special_values", {s_}, Initializer::zeros, false);
    woe_ = params.add("woe", {b_ + 3}, Initializer::zeros, false);
    return inputs[0];
}

float WoEEncoding::value(float x, const float* params) const {
    const float* woe = params + woe_;
    if (v_ > 0) {
        // Indices come from the string boundary; the check only protects memory.
        if (!(x >= 0.f && x < static_cast<float>(v_)) || x != std::floor(x))
            throw InvalidArgument("WoEEncoding '" + name_ + "': category index " + std::to_string(x) +
                                  " is outside [0, " + std::to_string(v_) + ")");
        return woe[static_cast<Index>(x)];
    }
    if (std::isnan(x)) return woe[b_ + 2];
    if (s_ > 0) {
        const float* sv = params + special_;
        for (Index s = 0; s < s_; ++s)
            if (sv[s] == x) return woe[b_ + 1];
    }
    if (b_ == 0) return woe[0];
    const float* b = params + boundaries_;
    return woe[std::upper_bound(b, b + b_, x) - b];
}

// x, y: N x 1
void WoEEncoding::forward(const ForwardArgs& a) const {
    for (Index n = 0; n < a.N; ++n) a.y[n] = value(a.x[0][n], a.params);
}

// Piecewise constant: zero gradient everywhere it exists.
void WoEEncoding::backward(const BackwardArgs& a) const {
    if (a.dx[0]) std::fill(a.dx[0], a.dx[0] + a.N, 0.f);
    if (boundaries_ >= 0) std::fill(a.grads + boundaries_, a.grads + boundaries_ + b_, 0.f);
    if (special_ >= 0) std::fill(a.grads + special_, a.grads + special_ + s_, 0.f);
    const Index w = v_ > 0 ? v_ : b_ + 3;
    std::fill(a.grads + woe_, a.grads + woe_ + w, 0.f);
}

}  // namespace maasfin
