// Dense: y = activation(x . kernel + bias) over the last axis. kernel is (D_in, D_out) as in Keras.
#pragma once

#include "maasfin/activation.hpp"
#include "maasfin/layer.hpp"

namespace maasfin {

class Dense : public Layer {
public:
    Dense(Index units, Activation activation, bool use_bias, Initializer kernel_initializer,
          Initializer bias_initializer);
    std::string kind() const override { return "Dense"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    Index saved_size(Index N) const override;

private:
    Index units_;
    Activation activation_;
    bool use_bias_;
    Initializer kernel_init_, bias_init_;
    Index d_in_ = 0, rows_per_sample_ = 1;
    Index kernel_ = -1, bias_ = -1;
};

}  // namespace maasfin
