// The layer contract. A layer author writes exactly: build, forward (const), backward.
//
// Buffers: every activation is a row-major block of N rows (the batch), each row holding one
// sample laid out with that sample's Shape. Parameters live in the graph's one contiguous arena;
// a layer only remembers offsets into it, so an optimizer step is one loop and saving is one blob.
//
// Threading: forward is const and touches no layer state, so any number of threads may run
// inference through one layer at once. backward writes only into the caller's buffers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "maasfin/common.hpp"
#include "maasfin/initializer.hpp"

namespace maasfin {

struct ParamSpec {
    std::string name;  // Keras weight name: "kernel", "bias", ...
    Shape shape;       // Keras layout
    Initializer init;
    Index offset = 0;       // into the arena, set by ParamAllocator
    bool trainable = true;  // false for state such as BatchNormalization's moving statistics
};

// Hands out arena offsets during build.
class ParamAllocator {
public:
    // Reserves numel(shape) floats (64-byte aligned start) and returns the offset.
    Index add(const std::string& name, const Shape& shape, Initializer init, bool trainable = true);
    const std::vector<ParamSpec>& specs() const { return specs_; }
    Index size() const { return size_; }
    // Prefixes the names of the specs from index `first` on (wrappers name their inner layers' weights).
    void prefix_names(std::size_t first, const std::string& prefix) {
        for (std::size_t i = first; i < specs_.size(); ++i) specs_[i].name = prefix + specs_[i].name;
    }

private:
    std::vector<ParamSpec> specs_;
    Index size_ = 0;
};

struct ForwardArgs {
    std::vector<const float*> x;  // one per input, N x numel(input shape)
    float* y = nullptr;           // N x numel(output shape)
    float* saved = nullptr;       // saved_size(N) floats for backward; null at inference
    Index N = 0;
    const float* params = nullptr;  // arena base
    bool training = false;
    std::uint64_t seed = 0;  // differs per training step; stochastic layers derive their noise from it
};

struct BackwardArgs {
    std::vector<const float*> x;  // the forward inputs
    const float* y = nullptr;     // the forward output
    const float* dy = nullptr;    // dL/dy
    const float* saved = nullptr;
    std::vector<float*> dx;  // dL/dx per input, overwritten; an entry may be null (not needed)
    Index N = 0;
    const float* params = nullptr;
    float* grads = nullptr;  // gradient arena, same offsets as params; overwritten
    bool training = false;   // the mode forward ran in
    std::uint64_t seed = 0;
};

class Layer {
public:
    virtual ~Layer() = default;
    // Keras class name: "Dense", "Activation", ...
    virtual std::string kind() const = 0;
    // Checks the input shapes (throwing InvalidArgument in the user's terms), reserves parameters,
    // and returns the output shape.
    virtual Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) = 0;
    virtual void forward(const ForwardArgs& a) const = 0;
    virtual void backward(const BackwardArgs& a) const = 0;
    // Floats of scratch kept from forward to backward for a batch of N.
    virtual Index saved_size(Index /*N*/) const { return 0; }
    // Called once per training batch after forward, with what forward saved: the place where
    // non-trainable state (moving statistics) is updated. Default: nothing.
    virtual void update_state(float* /*params*/, const float* /*saved*/, Index /*N*/) const {}
    // Keras semantics of `trainable = False` beyond freezing weights (BatchNormalization then runs
    // in inference mode). Default: nothing.
    virtual void set_trainable(bool /*trainable*/) {}
    // False for layers whose output does not move smoothly with their inputs (lookups, hashing,
    // discretization, category encoding, embedding of indices, imputation): explanations start
    // after them, in the model's encoded space (Graph::frontier). Default: true.
    virtual bool differentiable() const { return true; }
    // For a non-differentiable layer with one input: the input element (per sample) that output
    // element `k` derives from alone, or -1 when it mixes several. Default: -1.
    virtual Index source_element(Index /*k*/, Index /*input_width*/) const { return -1; }

    const std::string& name() const { return name_; }
    void set_name(std::string n) { name_ = std::move(n); }

protected:
    std::string name_;
};

}  // namespace maasfin
