// SpatialDropout1D/2D/3D (Keras): in training, drops whole channels, i.e. one draw per (sample,
// channel) shared by every position (Keras's noise_shape (batch, 1, ..., 1, channels)); kept
// channels are scaled by 1/(1-rate); identity at inference. Channels last. As Dropout, the mask is
// a pure function of (step seed, layer seed, n * C + c), so backward recomputes it.
#pragma once

#include "maasfin/layer.hpp"

namespace maasfin {

class SpatialDropout : public Layer {
public:
    // rank: 1 (steps, channels), 2 (h, w, channels) or 3 (d, h, w, channels).
    SpatialDropout(int rank, float rate, std::uint64_t seed);
    std::string kind() const override;
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    float keep(std::uint64_t step_seed, Index n, Index c) const;
    void apply(const float* src, float* dst, Index N, bool training, std::uint64_t seed) const;
    int rank_;
    float rate_;
    std::uint64_t seed_;
    Index P_ = 0, C_ = 0;  // positions and channels per sample
};

}  // namespace maasfin
