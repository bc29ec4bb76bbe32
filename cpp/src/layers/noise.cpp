#include "maasfin/layers/noise.hpp"

#include <cmath>

#include "maasfin/rng.hpp"

namespace maasfin {

namespace {
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;
}  // namespace

NoiseLayer::NoiseLayer(Kind kind, double amount, std::uint64_t seed) : kind_(kind), amount_(amount), seed_(seed) {
    if (kind == Kind::gaussian_noise && !(amount >= 0)) throw InvalidArgument("GaussianNoise: stddev must be >= 0");
    if (kind != Kind::gaussian_noise && !(amount >= 0 && amount < 1))
        throw InvalidArgument(this->kind() + ": rate must be in [0, 1)");
}

std::string NoiseLayer::kind() const {
    switch (kind_) {
        case Kind::gaussian_noise: return "GaussianNoise";
        case Kind::gaussian_dropout: return "GaussianDropout";
        default: return "AlphaDropout";
    }
}

Shape NoiseLayer::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    if (inputs.size() != 1) throw InvalidArgument(kind() + " '" + name_ + "' expects one input");
    d_ = numel(inputs[0]);
    return inputs[0];
}

// x, y: N x D
void NoiseLayer::forward(const ForwardArgs& a) const {
    const Index n = a.N * d_;
    const float* x = a.x[0];
    if (!a.training || amount_ == 0.0) {
        for (Index i = 0; i < n; ++i) a.y[i] = x[i];
        return;
    }
    switch (kind_) {
        case Kind::gaussian_noise:
            for (Index i = 0; i < n; ++i)
                a.y[i] = x[i] + static_cast<float>(amount_ * rng::normal(a.seed, seed_, static_cast<std::uint64_t>(i)));
            return;
        case Kind::gaussian_dropout: {
            const double sd = std::sqrt(amount_ / (1.0 - amount_));
            for (Index i = 0; i < n; ++i)
                a.y[i] =
                    x[i] * static_cast<float>(1.0 + sd * rng::normal(a.seed, seed_, static_cast<std::uint64_t>(i)));
            return;
        }
        case Kind::alpha_dropout: {
            const double alpha_p = -kSeluAlpha * kSeluScale, rate = amount_;
            const double ac = 1.0 / std::sqrt((1.0 - rate) * (1.0 + rate * alpha_p * alpha_p));
            const double bc = -ac * alpha_p * rate;
            for (Index i = 0; i < n; ++i) {
                const bool kept = rng::uniform(a.seed, seed_, static_cast<std::uint64_t>(i)) >= rate;
                a.y[i] = static_cast<float>(ac * (kept ? x[i] : alpha_p) + bc);
            }
            return;
        }
    }
}

void NoiseLayer::backward(const BackwardArgs& a) const {
    if (!a.dx[0]) return;
    const Index n = a.N * d_;
    if (!a.training || kind_ == Kind::gaussian_noise || amount_ == 0.0) {
        for (Index i = 0; i < n; ++i) a.dx[0][i] = a.dy[i];
        return;
    }
    if (kind_ == Kind::gaussian_dropout) {
        const double sd = std::sqrt(amount_ / (1.0 - amount_));
        for (Index i = 0; i < n; ++i)
            a.dx[0][i] =
                a.dy[i] * static_cast<float>(1.0 + sd * rng::normal(a.seed, seed_, static_cast<std::uint64_t>(i)));
        return;
    }
    const double alpha_p = -kSeluAlpha * kSeluScale, rate = amount_;
    const float ac = static_cast<float>(1.0 / std::sqrt((1.0 - rate) * (1.0 + rate * alpha_p * alpha_p)));
    for (Index i = 0; i < n; ++i) {
        const bool kept = rng::uniform(a.seed, seed_, static_cast<std::uint64_t>(i)) >= rate;
        a.dx[0][i] = kept ? a.dy[i] * ac : 0.f;
    }
}

}  // namespace maasfin
