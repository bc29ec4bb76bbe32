// Optimizers stepping over the parameter arena with Keras 3's update rules.
// One step = clip the gradients -> decoupled weight decay -> the optimizer's update, using the
// learning rate of the current step (a constant or a schedule evaluated at `iterations`).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "maasfin/common.hpp"
#include "maasfin/schedule.hpp"

namespace maasfin {

// Options every Keras optimizer takes. 0 turns a clipping option off; at most one may be set.
struct OptimizerOptions {
    double weight_decay = 0.0;
    double clipnorm = 0.0;         // per variable: g * c / max(||g||, c)
    double clipvalue = 0.0;        // element-wise clip to [-c, c]
    double global_clipnorm = 0.0;  // all trainable gradients together
};

class Optimizer {
public:
    virtual ~Optimizer() = default;
    // Updates params[i] for i in `ranges` (every index in [0, n) when empty) from grads[i].
    // Gradient clipping happens in place in `grads`. `variables` are the weight tensors (arena
    // slices) for per-variable clipping; empty means one variable spanning the arena. State is
    // kept per arena index. Increments iterations once.
    void step(float* params, float* grads, Index n, const std::vector<Range>& ranges = {},
              const std::vector<Range>& variables = {});

    // The learning rate the next step uses.
    double current_learning_rate() const;
    void set_schedule(std::optional<ScheduleSpec> schedule);
    void set_options(const OptimizerOptions& options);
    const OptimizerOptions& options() const { return options_; }

    double learning_rate = 0.01;  // used when there is no schedule
    std::int64_t iterations = 0;

    // Optimizer state for saving and exact resumption: named per-parameter slots ("m", "v", ...),
    // each empty before the first step or as long as the arena.
    std::vector<std::string> slot_names();
    // The size of each slot for an arena of n parameters, by name: n, or 0 for a slot that this
    // configuration never uses (SGD's velocity without momentum, Adam's v_hat without amsgrad).
    std::map<std::string, Index> slot_sizes(Index n);
    const FloatVec& slot(const std::string& name);
    // Replaces the state for an arena of n parameters; every slot must be given with n values
    // (or 0 for an unused slot). Throws InvalidArgument naming the slot on a mismatch.
    void set_slots(Index n, const std::vector<std::pair<std::string, FloatVec>>& values);

protected:
    // One state slot: its storage, whether this configuration uses it, and the value it starts from.
    struct Slot {
        std::string name;
        FloatVec* values;
        bool used = true;
        float initial = 0.f;
    };
    // The optimizer's state slots; the base class sizes and fills them (first step, set_slots).
    virtual std::vector<Slot> slots() = 0;
    // Updates indices [begin, end); `t` is the 1-based step number, `lr` this step's learning rate.
    virtual void update(float* params, const float* grads, Index begin, Index end, std::int64_t t, float lr) = 0;

private:
    // Sizes every slot for an arena of n parameters and fills it with its initial value.
    void init_state(Index n);
    void clip(float* grads, Index n, const std::vector<Range>& ranges, const std::vector<Range>& variables) const;
    Index state_size_ = -1;
    std::optional<ScheduleSpec> schedule_;
    OptimizerOptions options_;
};

// Keras optimizers. Constructors validate their arguments (InvalidArgument names the field).
std::shared_ptr<Optimizer> make_sgd(double lr, double momentum, bool nesterov);
std::shared_ptr<Optimizer> make_adam(double lr, double beta_1, double beta_2, double epsilon, bool amsgrad);
std::shared_ptr<Optimizer> make_rmsprop(double lr, double rho, double momentum, double epsilon, bool centered);
std::shared_ptr<Optimizer> make_adagrad(double lr, double initial_accumulator_value, double epsilon);
std::shared_ptr<Optimizer> make_adamax(double lr, double beta_1, double beta_2, double epsilon);
std::shared_ptr<Optimizer> make_nadam(double lr, double beta_1, double beta_2, double epsilon);

}  // namespace maasfin
