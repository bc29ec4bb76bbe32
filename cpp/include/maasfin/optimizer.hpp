// Optimizers stepping over the whole parameter arena in one loop, with Keras's update rules.
#pragma once

#include <memory>
#include <vector>
#include <string>
#include <utility>

#include "maasfin/common.hpp"

namespace maasfin {

// A half-open slice [begin, end) of the parameter arena.
struct Range {
    Index begin, end;
};

class Optimizer {
public:
    virtual ~Optimizer() = default;
    // Updates params[i] for i in `ranges` (every index in [0, n) when empty) from grads[i];
    // optimizer state is kept per arena index. Increments iterations once.
    void step(float* params, const float* grads, Index n, const std::vector<Range>& ranges = {});
    double learning_rate = 0.01;
    std::int64_t iterations = 0;

    // Optimizer state for saving and exact resumption: named per-parameter slots ("m", "v", ...),
    // each empty before the first step or as long as the arena.
    std::vector<std::string> slot_names();
    const FloatVec& slot(const std::string& name);
    // Replaces the state for an arena of n parameters; every slot must be given with n values
    // (or 0 for an unused slot). Throws InvalidArgument naming the slot on a mismatch.
    void set_slots(Index n, const std::vector<std::pair<std::string, FloatVec>>& values);

protected:
    // Sizes the state for an arena of n parameters (called on the first step).
    virtual void init_state(Index n) = 0;
    // The optimizer's state slots by name.
    virtual std::vector<std::pair<std::string, FloatVec*>> slots() = 0;
    // Updates indices [begin, end); `t` is the 1-based step number.
    virtual void update(float* params, const float* grads, Index begin, Index end, std::int64_t t) = 0;

private:
    Index state_size_ = -1;
};

class SGD : public Optimizer {
public:
    SGD(double lr, double momentum, bool nesterov);
protected:
    void init_state(Index n) override;
    void update(float* params, const float* grads, Index begin, Index end, std::int64_t t) override;
    std::vector<std::pair<std::string, FloatVec*>> slots() override { return {{"velocity", &velocity_}}; }

private:
    double momentum_;
    bool nesterov_;
    FloatVec velocity_;
};

class Adam : public Optimizer {
public:
    Adam(double lr, double beta_1, double beta_2, double epsilon, bool amsgrad);
protected:
    void init_state(Index n) override;
    void update(float* params, const float* grads, Index begin, Index end, std::int64_t t) override;
    std::vector<std::pair<std::string, FloatVec*>> slots() override {
        return {{"m", &m_}, {"v", &v_}, {"v_hat", &v_hat_}};
    }

private:
    double beta_1_, beta_2_, epsilon_;
    bool amsgrad_;
    FloatVec m_, v_, v_hat_;
};

class RMSprop : public Optimizer {
public:
    RMSprop(double lr, double rho, double momentum, double epsilon, bool centered);
protected:
    void init_state(Index n) override;
    void update(float* params, const float* grads, Index begin, Index end, std::int64_t t) override;
    std::vector<std::pair<std::string, FloatVec*>> slots() override {
        return {{"velocity", &velocity_}, {"average_grad", &average_grad_}, {"momentum", &momentum_buf_}};
    }

private:
    double rho_, momentum_, epsilon_;
    bool centered_;
    FloatVec velocity_, average_grad_, momentum_buf_;
};

}  // namespace maasfin
