// Optimizers stepping over the whole parameter arena in one loop, with Keras's update rules.
#pragma once

#include <memory>
#include <string>

#include "maasfin/common.hpp"

namespace maasfin {

class Optimizer {
public:
    virtual ~Optimizer() = default;
    // params -= update(grads); increments iterations.
    virtual void step(float* params, const float* grads, Index n) = 0;
    double learning_rate = 0.01;
    std::int64_t iterations = 0;
};

class SGD : public Optimizer {
public:
    SGD(double lr, double momentum, bool nesterov);
    void step(float* params, const float* grads, Index n) override;

private:
    double momentum_;
    bool nesterov_;
    FloatVec velocity_;
};

class Adam : public Optimizer {
public:
    Adam(double lr, double beta_1, double beta_2, double epsilon, bool amsgrad);
    void step(float* params, const float* grads, Index n) override;

private:
    double beta_1_, beta_2_, epsilon_;
    bool amsgrad_;
    FloatVec m_, v_, v_hat_;
};

class RMSprop : public Optimizer {
public:
    RMSprop(double lr, double rho, double momentum, double epsilon, bool centered);
    void step(float* params, const float* grads, Index n) override;

private:
    double rho_, momentum_, epsilon_;
    bool centered_;
    FloatVec velocity_, average_grad_, momentum_buf_;
};

}  // namespace maasfin
