// MonotonicDense: a dense layer whose output is monotone in chosen inputs for every value of its
// weights (constrained monotonic networks, Runje & Shankaranarayana, ICML 2023).
//
//   effective kernel  W'_ij = s_i |W_ij| for an input with indicator s_i = +1 or -1, W_ij for s_i = 0
//   h = x . W' + b    (x: N x D_in, W': D_in x D_out)
//   y_j = rho_j(h_j)  with rho one of three monotone shapes of a monotone activation rho:
//       convex    rho(h)
//       concave   -rho(-h)
//       saturated rho(h + 1) - rho(1) for h < 0, rho(1) - rho(1 - h) otherwise
//   the first n_convex units are convex, the next n_concave concave, the rest saturated
//   (split_units); with all three a stack of these layers can fit any monotone function.
//
// rho is evaluated in double and rounded to float once (rounding is monotone), so the float32
// outputs are monotone too. The stored kernel is unconstrained (the optimizer, set_weights and
// loaded files may put any value there); monotonicity comes from the forward pass, never from a
// penalty or a projection.
#pragma once

#include <array>
#include <vector>

#include "maasfin/activation.hpp"
#include "maasfin/layer.hpp"

namespace maasfin {

// True for the activations that are non-decreasing (linear, relu, sigmoid, tanh, elu, selu, leaky_relu).
bool activation_is_monotone(Activation a);

// Units of each shape (convex, concave, saturated) for `units` units: round(units * w_k / sum w)
// for the first two (half away from zero), the rest saturated; all convex or all concave when asked.
std::array<Index, 3> split_units(Index units, const std::array<double, 3>& weights, bool is_convex, bool is_concave);

class MonotonicDense : public Layer {
public:
    // indicator: one value in {-1, 0, +1} per input feature, or a single value for all of them.
    MonotonicDense(Index units, Activation activation, std::vector<int> indicator, bool is_convex, bool is_concave,
                   std::array<double, 3> activation_weights, bool use_bias, Initializer kernel_initializer,
                   Initializer bias_initializer);
    std::string kind() const override { return "MonotonicDense"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    Index saved_size(Index N) const override;

    // The kernel the forward pass multiplies by (D_in x D_out), from the stored one.
    void effective_kernel(const float* kernel, float* out) const;
    std::array<Index, 3> split() const { return split_; }

private:
    // h (rows x D_out, pre-activations) -> y; keeps h in saved (rows x D_out) when it is not null.
    void activate(const float* h, float* y, float* saved, Index rows) const;

    Index units_;
    Activation activation_;
    std::vector<int> indicator_;
    bool use_bias_;
    Initializer kernel_init_, bias_init_;
    std::array<Index, 3> split_;
    Index d_in_ = 0, rows_per_sample_ = 1;
    Index kernel_ = -1, bias_ = -1;
};

}  // namespace maasfin
