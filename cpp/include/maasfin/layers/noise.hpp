// Regularisation by noise, active only in training (identity at inference). The noise of
// element i is a pure function of (step seed, layer seed, i), so backward recomputes it.
//   GaussianNoise:   y = x + N(0, stddev)
//   GaussianDropout: y = x * N(1, sqrt(rate / (1 - rate)))
//   AlphaDropout:    keeps SELU's self-normalisation: dropped units go to -alpha*scale, then an
//                    affine correction a*x + b restores mean and variance (Keras's formula).
#pragma once

#include "maasfin/layer.hpp"

namespace maasfin {

class NoiseLayer : public Layer {
public:
    enum class Kind { gaussian_noise, gaussian_dropout, alpha_dropout };
    NoiseLayer(Kind kind, double amount, std::uint64_t seed);
    std::string kind() const override;
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    Kind kind_;
    double amount_;  // stddev or rate
    std::uint64_t seed_;
    Index d_ = 0;
};

}  // namespace maasfin
