#include "maasfin/layers/dense.hpp"

#include "maasfin/kernels.hpp"

namespace maasfin {

Dense::Dense(Index units, Activation activation, bool use_bias, Initializer kernel_initializer,
             Initializer bias_initializer)
    : units_(units), activation_(activation), use_bias_(use_bias), kernel_init_(kernel_initializer),
      bias_init_(bias_initializer) {
    if (units <= 0) throw InvalidArgument("Dense: units must be a positive integer, got " + std::to_string(units));
}

// in: (..., D_in) -> out: (..., units)
Shape Dense::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    if (inputs.size() != 1 || inputs[0].empty())
        throw InvalidArgument("Dense '" + name_ + "' expects one input of rank >= 1 per sample, got " +
                              (inputs.empty() ? std::string("none") : shape_str(inputs[0])));
    Shape out = inputs[0];
    d_in_ = out.back();
    rows_per_sample_ = numel(out) / d_in_;
    out.back() = units_;
    kernel_ = params.add("kernel", {d_in_, units_}, kernel_init_);
    if (use_bias_) bias_ = params.add("bias", {units_}, bias_init_);
    return out;
}

Index Dense::saved_size(Index N) const { return activation_needs_src(activation_) ? N * rows_per_sample_ * units_ : 0; }

// x: N*R x D_in, y: N*R x D_out (R = rows per sample)
void Dense::forward(const ForwardArgs& a) const {
    const Index rows = a.N * rows_per_sample_;
    kernels::dense_fwd(a.x[0], a.params + kernel_, use_bias_ ? a.params + bias_ : nullptr, a.y,
                       activation_needs_src(activation_) ? a.saved : nullptr, rows, d_in_, units_, activation_);
}

// dy: N*R x D_out -> dx: N*R x D_in, dkernel: D_in x D_out, dbias: D_out
void Dense::backward(const BackwardArgs& a) const {
    const Index rows = a.N * rows_per_sample_;
    const float* dpre = a.dy;
    thread_local FloatVec scratch;
    if (activation_ != Activation::linear) {
        scratch.resize(static_cast<std::size_t>(rows * units_));
        kernels::eltwise_bwd(activation_, a.saved, a.y, a.dy, scratch.data(), rows, units_);
        dpre = scratch.data();
    }
    kernels::dense_bwd(a.x[0], a.params + kernel_, dpre, a.dx[0], a.grads + kernel_,
                       use_bias_ ? a.grads + bias_ : nullptr, rows, d_in_, units_);
}

}  // namespace maasfin
