// BatchNormalization and LayerNormalization over the last axis (Keras axis=-1).
//   BatchNormalization: statistics over every row of the batch; moving statistics for inference.
//   LayerNormalization: statistics over each row's last axis.
// Weights in Keras order: gamma (scale), beta (center), then BN's moving_mean, moving_variance.
#pragma once

#include "maasfin/layer.hpp"

namespace maasfin {

class BatchNormalization : public Layer {
public:
    BatchNormalization(double momentum, double epsilon, bool center, bool scale, Initializer beta_init,
                       Initializer gamma_init, Initializer moving_mean_init, Initializer moving_variance_init);
    std::string kind() const override { return "BatchNormalization"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    Index saved_size(Index N) const override { return N * rows_per_sample_ * c_ + 2 * c_; }
    void update_state(float* params, const float* saved, Index N) const override;
    void set_trainable(bool trainable) override { frozen_ = !trainable; }

private:
    double momentum_, epsilon_;
    bool center_, scale_, frozen_ = false;
    Initializer beta_init_, gamma_init_, mean_init_, var_init_;
    Index c_ = 0, rows_per_sample_ = 1;
    Index gamma_ = -1, beta_ = -1, moving_mean_ = -1, moving_var_ = -1;
};

class LayerNormalization : public Layer {
public:
    LayerNormalization(double epsilon, bool center, bool scale, Initializer beta_init, Initializer gamma_init);
    std::string kind() const override { return "LayerNormalization"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    Index saved_size(Index N) const override { return N * rows_per_sample_ * (c_ + 1); }

private:
    double epsilon_;
    bool center_, scale_;
    Initializer beta_init_, gamma_init_;
    Index c_ = 0, rows_per_sample_ = 1;
    Index gamma_ = -1, beta_ = -1;
};

}  // namespace maasfin
