// Conv1D / Conv2D, channels_last: y = activation(conv(x, kernel) + bias).
// kernel is Keras's (KH, KW, C_in, C_out) for Conv2D and (K, C_in, C_out) for Conv1D; a Conv1D is
// run as a Conv2D with H = KH = 1 (the same memory).
#pragma once

#include <string>

#include "maasfin/activation.hpp"
#include "maasfin/layer.hpp"
#include "maasfin/window.hpp"

namespace maasfin {

class Conv : public Layer {
public:
    // rank 1 or 2; for rank 1 only the second entry of kernel/strides/dilation is used.
    // padding: "valid", "same", or (rank 1) "causal".
    Conv(int rank, Index filters, Index kh, Index kw, Index sh, Index sw, Index dh, Index dw, std::string padding,
         Activation activation, bool use_bias, Initializer kernel_initializer, Initializer bias_initializer);
    std::string kind() const override { return rank_ == 1 ? "Conv1D" : "Conv2D"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    Index saved_size(Index N) const override;

private:
    int rank_;
    Index filters_, kh_, kw_, sh_, sw_, dh_, dw_;
    std::string padding_;
    Activation activation_;
    bool use_bias_;
    Initializer kernel_init_, bias_init_;
    Window win_;
    Index c_in_ = 0;
    Index kernel_ = -1, bias_ = -1;
};

}  // namespace maasfin
