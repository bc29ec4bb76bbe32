// MaxPooling1D/2D, AveragePooling1D/2D (channels_last, Keras padding) and the global poolings.
#pragma once

#include <string>

#include "maasfin/kernels.hpp"
#include "maasfin/layer.hpp"
#include "maasfin/window.hpp"

namespace maasfin {

class Pooling : public Layer {
public:
    // rank 1 or 2; for rank 1 only the second entry of pool/strides is used.
    Pooling(int rank, kernels::Pool kind, Index ph, Index pw, Index sh, Index sw, std::string padding);
    std::string kind() const override;
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    Index saved_size(Index N) const override;

private:
    int rank_;
    kernels::Pool pool_;
    Index ph_, pw_, sh_, sw_;
    std::string padding_;
    Window win_;
    Index c_ = 0;
};

// Max or mean over every spatial position: (..., C) -> (C,), or (1, ..., 1, C) with keepdims.
class GlobalPooling : public Layer {
public:
    GlobalPooling(int rank, kernels::Pool kind, bool keepdims);
    std::string kind() const override;
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    int rank_;
    kernels::Pool pool_;
    bool keepdims_;
    bool masked_ = false;  // a mask input follows x
    Index positions_ = 0, c_ = 0;
};

}  // namespace maasfin
