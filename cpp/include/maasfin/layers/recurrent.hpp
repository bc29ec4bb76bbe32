// LSTM, GRU and SimpleRNN over (T, D_in) sequences, Keras 3 semantics and weight layout:
//   kernel (D_in, G*u), recurrent_kernel (u, G*u), bias (G*u,) or, for GRU with reset_after,
//   (2, G*u) = [input bias; recurrent bias]. Gate order: LSTM i, f, c, o (G = 4); GRU z, r, h (G = 3).
// The time loop runs here; each step's matmul is a kernels::dense_fwd call, and the input
// projections of all steps are one dense call (N*T rows) in forward and one in backward.
// go_backwards reads the sequence from its end and returns the outputs in processing order (as Keras).
//
// Inputs: x (T, D_in) [, mask (T,) when has_mask] [, initial states (u,) each: h (and c for LSTM)].
// Without initial states the states start at zero. A mask entry 0 marks a masked step: the states
// carry over unchanged and the step's output is the carried h (Keras's scan semantics), or zeros
// with zero_output_for_mask (what Keras's Bidirectional sets when returning sequences).
// Output: the Keras output, followed with return_state by the final states (u each) in one flat
// row: per sample [output (T*u or u), h, (c)]. The graph splits it with TakeOutput nodes.
#pragma once

#include <cstdint>
#include <string>

#include "maasfin/activation.hpp"
#include "maasfin/layer.hpp"

namespace maasfin {

struct RecurrentOptions {
    Index units = 0;
    Activation activation = Activation::tanh;
    Activation recurrent_activation = Activation::sigmoid;
    bool use_bias = true;
    bool return_sequences = false;
    bool go_backwards = false;
    Initializer kernel_initializer = Initializer::glorot_uniform;
    Initializer recurrent_initializer = Initializer::orthogonal;
    Initializer bias_initializer = Initializer::zeros;
    bool return_state = false;
    bool has_mask = false;
    bool zero_output_for_mask = false;
    // Keras's dropout (on x) and recurrent_dropout (on h before the recurrent kernel), training
    // only: masks drawn once per batch from (step seed, seed) and reused at every step. With
    // recurrent_dropout, LSTM/GRU draw one mask per gate (Keras's implementation 1), else one.
    float dropout = 0.f;
    float recurrent_dropout = 0.f;
    std::uint64_t seed = 0;
};

class Recurrent : public Layer {
public:
    std::string kind() const override { return kind_; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    // What a wrapper (Bidirectional) needs to split the inputs and outputs.
    Index state_count() const { return num_states(); }
    Index units() const { return o_.units; }
    bool reads_mask() const { return o_.has_mask; }
    bool returns_state() const { return o_.return_state; }

protected:
    Recurrent(std::string kind, Index gates, Index bias_rows, const RecurrentOptions& o);
    // Step s of the time loop reads input step t(s).
    Index t(Index s) const { return o_.go_backwards ? T_ - 1 - s : s; }
    // Number of states (LSTM: h and c).
    Index num_states() const { return kind_ == "LSTM" ? 2 : 1; }
    // The mask (N x T) or null, and initial state k (N x u) or null.
    const float* mask(const std::vector<const float*>& x) const { return o_.has_mask ? x[1] : nullptr; }
    const float* initial_state(const std::vector<const float*>& x, Index k) const {
        return has_initial_ ? x[(o_.has_mask ? 2 : 1) + k] : nullptr;
    }
    float* initial_state_grad(const std::vector<float*>& dx, Index k) const {
        return has_initial_ ? dx[static_cast<std::size_t>((o_.has_mask ? 2 : 1) + k)] : nullptr;
    }
    // Whether row n takes step s (not masked).
    bool takes(const float* m, Index n, Index s) const { return !m || m[n * T_ + t(s)] != 0.f; }
    // Fills the state (N x u) before step 0: the initial state k or zeros.
    void start_state(const ForwardArgs& a, Index k, float* S) const;
    // Whether the recurrent product of step 0 is needed (the initial state is not zero).
    bool first_product() const { return has_initial_; }
    // Masked rows of step s: the new state (N x u) takes the previous state's value.
    void carry(const float* m, Index s, const float* prev, float* next, Index N) const;
    // Floats per output row: the Keras output and, with return_state, the final states.
    Index y_row() const { return out_numel_ + (o_.return_state ? num_states() * u_ : 0); }
    // Writes final state k (N x u) into y's state part (return_state).
    void emit_state(const float* S, Index k, float* y, Index N) const;
    // S += the gradient of final state k from dy (return_state).
    void add_dstate(const float* dy, Index k, float* dS, Index N) const;
    // Writes the gradients of the initial states (or zeros the mask's gradient) after backward.
    void finish_inputs(const BackwardArgs& a, const float* dh, const float* dc) const;
    // P (N*T x G*u, rows in x's (n, t) order) = x . kernel + input bias (x dropped per gate in training).
    void project(const ForwardArgs& a, float* P) const;
    // Z (N x G*u) = h . recurrent_kernel (+ bias when not null), h dropped per gate in training.
    void recurrent_fwd(const float* params, const float* h, const float* bias, float* Z, Index N, bool training,
                       std::uint64_t seed) const;
    // dh (N x u) = dZ . recurrent_kernel^T (through the recurrent dropout masks in training). UT is
    // recurrent_transposed's result.
    void recurrent_bwd(const BackwardArgs& a, const FloatVec& UT, const float* dZ, float* dh) const;
    bool drops_inputs(bool training) const { return training && o_.dropout > 0.f; }
    bool drops_state(bool training) const { return training && o_.recurrent_dropout > 0.f; }
    // Dropout masks per batch: one per gate with recurrent_dropout (Keras's implementation 1), else one.
    Index mask_count() const { return o_.recurrent_dropout > 0.f ? G_ : 1; }
    // The dropout scales (0 or 1/(1-rate)) of a batch: N x mask_count() x width (D_in, or u for
    // recurrent), entry (n, g, d) for row n, gate block g, input feature (or unit) d.
    const float* drop_scales(bool recurrent, std::uint64_t seed, Index N) const;
    // Writes h (N x u, the state after step s) into y where Keras's output holds it (zeros for
    // masked rows with zero_output_for_mask).
    void emit(const float* h, const float* m, Index s, float* y, Index N) const;
    // dh += the part of dy that belongs to step s.
    void add_dy(const float* dy, const float* m, Index s, float* dh, Index N) const;
    // From dP (T x N x G*u in step order): the kernel and input-bias gradients and dx.
    void backprop_inputs(const BackwardArgs& a, const float* dP) const;
    // From dR (T x N x G*u, step order) and Hprev (T x N x u, undropped): the recurrent_kernel
    // gradient and, when db is not null, the recurrent bias's.
    void backprop_recurrent(const BackwardArgs& a, const float* Hprev, const float* dR, float* db) const;
    // recurrent_kernel transposed (G*u x u), for dh_prev = dR . U^T.
    void recurrent_transposed(const float* params, FloatVec& UT) const;

    std::string kind_;
    Index G_, bias_rows_;
    RecurrentOptions o_;
    Index T_ = 0, D_ = 0, u_ = 0, out_numel_ = 0;
    bool has_initial_ = false;
    Index kernel_ = -1, recurrent_ = -1, bias_ = -1;
    Initializer bias_arena_init_;  // what fills the bias (LSTM's unit_forget_bias differs from the Keras name)
};

class LSTM : public Recurrent {
public:
    LSTM(const RecurrentOptions& o, bool unit_forget_bias);
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    Index saved_size(Index N) const override;

private:
    // Whether the whole sequence may go to kernels::lstm_fwd (dispatch still decides): no mask,
    // initial or returned states, and no dropout when training.
    bool fusable(bool training) const;
};

// reset_after=True (Keras 3's default): hh = act(x W_h + b_in_h + r * (h U_h + b_rec_h)), bias (2, 3u).
// reset_after=False (Keras's original GRU, gru_reset_before.cpp): hh = act(x W_h + b_h + (r * h) U_h),
// bias (3u,).
class GRU : public Recurrent {
public:
    explicit GRU(const RecurrentOptions& o, bool reset_after = true);
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    Index saved_size(Index N) const override;

private:
    void forward_reset_before(const ForwardArgs& a) const;
    void backward_reset_before(const BackwardArgs& a) const;
    bool reset_after_;
};

class SimpleRNN : public Recurrent {
public:
    explicit SimpleRNN(const RecurrentOptions& o);
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    Index saved_size(Index N) const override;
};

}  // namespace maasfin
