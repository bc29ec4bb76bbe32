// Layer wrappers: TimeDistributed (an inner layer applied to every timestep) and Bidirectional
// (a recurrent layer run forwards and backwards, outputs merged).
#pragma once

#include <memory>

#include "maasfin/layer.hpp"

namespace maasfin {

// (T, ...) -> (T, inner output): the inner layer sees N*T rows of the per-step shape, which is
// the same memory as N rows of (T, ...), so no copy is made. Parameters are the inner layer's.
class TimeDistributed : public Layer {
public:
    explicit TimeDistributed(std::shared_ptr<Layer> inner);
    std::string kind() const override { return "TimeDistributed"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    Index saved_size(Index N) const override { return inner_->saved_size(N * T_); }
    void update_state(float* params, const float* saved, Index N) const override {
        inner_->update_state(params, saved, N * T_);
    }
    void set_trainable(bool t) override { inner_->set_trainable(t); }

private:
    std::shared_ptr<Layer> inner_;
    Index T_ = 0;
};

// Keras's Bidirectional: `forward_layer` reads the sequence in order, `backward_layer` (the same
// layer with go_backwards flipped, made by the caller) reads it reversed and emits its outputs in
// processing order; with sequence outputs (T, u) the backward outputs are reversed in time before
// merging, as Keras does. merge: concat (forward then backward on the last axis), sum, mul, ave.
// Weights: the forward layer's ("forward_" + name) then the backward layer's ("backward_" + name).
// Inputs: x [, mask when the inner layers read one] [, the forward layer's initial states, then the
// backward layer's]. With return_state in the inner layers the output row is
// [merged output, forward states, backward states] (Keras's order), split by TakeOutput nodes.
class Bidirectional : public Layer {
public:
    enum class Merge { concat, sum, mul, ave };
    Bidirectional(std::shared_ptr<Layer> forward_layer, std::shared_ptr<Layer> backward_layer, Merge merge);
    std::string kind() const override { return "Bidirectional"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    Index saved_size(Index N) const override;

private:
    // Offset of the backward output's element (n, t, 0) when the merged output is at time t.
    Index b_row(Index n, Index t) const { return n * inner_row_ + (seq_ ? T_ - 1 - t : t) * u_; }
    Index f_row(Index n, Index t) const { return n * inner_row_ + t * u_; }
    // The inputs of the forward (dir 0) or backward (dir 1) layer, taken from the wrapper's.
    template <class P>
    std::vector<P> inner_inputs(const std::vector<P>& all, int dir) const;

    std::shared_ptr<Layer> f_, b_;
    Merge merge_;
    bool seq_ = false;      // the inner output is a sequence (T, u)
    Index T_ = 1, u_ = 0;   // T_ = 1 for a final-state output (u,)
    Index in_numel_ = 0;    // floats per input sample
    Index lead_ = 1;        // inputs before the initial states: x [, mask]
    Index S_ = 0;           // states per direction given as inputs (0 or the layer's state count)
    Index out_states_ = 0;  // states per direction in the output (return_state), else 0
    Index inner_row_ = 0;   // floats per sample of an inner layer's output
    Index merged_ = 0;      // floats per sample of the merged output
};

}  // namespace maasfin
