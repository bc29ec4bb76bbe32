// x, y: N x P x C (P positions, C channels); y[n, p, c] = x[n, p, c] * keep(n, c) in training.
#include "maasfin/layers/spatial_dropout.hpp"

#include <cstring>

#include "maasfin/rng.hpp"

namespace maasfin {

SpatialDropout::SpatialDropout(int rank, float rate, std::uint64_t seed) : rank_(rank), rate_(rate), seed_(seed) {
    if (rank < 1 || rank > 3) throw InvalidArgument("SpatialDropout: rank must be 1, 2 or 3");
    if (!(rate >= 0.f && rate < 1.f))
        throw InvalidArgument(kind() + ": rate must be in [0, 1), got " + std::to_string(rate));
}

std::string SpatialDropout::kind() const { return "SpatialDropout" + std::to_string(rank_) + "D"; }

Shape SpatialDropout::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    static const char* layouts[] = {"", "(steps, channels)", "(height, width, channels)",
                                    "(depth, height, width, channels)"};
    if (inputs.size() != 1 || static_cast<int>(inputs[0].size()) != rank_ + 1)
        throw InvalidArgument(kind() + " '" + name_ + "' expects one input of shape " + layouts[rank_] +
                              " per sample, got " + (inputs.empty() ? std::string("none") : shape_str(inputs[0])));
    C_ = inputs[0].back();
    P_ = numel(inputs[0]) / C_;
    return inputs[0];
}

float SpatialDropout::keep(std::uint64_t step_seed, Index n, Index c) const {
    return rng::uniform(step_seed, seed_, static_cast<std::uint64_t>(n * C_ + c)) >= rate_ ? 1.f / (1.f - rate_) : 0.f;
}

void SpatialDropout::apply(const float* src, float* dst, Index N, bool training, std::uint64_t seed) const {
    if (!training || rate_ == 0.f) {
        std::memcpy(dst, src, sizeof(float) * static_cast<std::size_t>(N * P_ * C_));
        return;
    }
    thread_local FloatVec k;
    k.resize(static_cast<std::size_t>(C_));
    for (Index n = 0; n < N; ++n) {
        for (Index c = 0; c < C_; ++c) k[static_cast<std::size_t>(c)] = keep(seed, n, c);
        for (Index p = 0; p < P_; ++p) {
            const Index row = (n * P_ + p) * C_;
            for (Index c = 0; c < C_; ++c) dst[row + c] = src[row + c] * k[static_cast<std::size_t>(c)];
        }
    }
}

void SpatialDropout::forward(const ForwardArgs& a) const { apply(a.x[0], a.y, a.N, a.training, a.seed); }

// The layer is linear in x with the same per-channel scales, so dx = apply(dy).
void SpatialDropout::backward(const BackwardArgs& a) const {
    if (a.dx[0]) apply(a.dy, a.dx[0], a.N, a.training, a.seed);
}

}  // namespace maasfin
