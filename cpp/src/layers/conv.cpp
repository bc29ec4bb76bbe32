#include "maasfin/layers/conv.hpp"

#include "maasfin/kernels.hpp"

namespace maasfin {

Conv::Conv(int rank, Index filters, Index kh, Index kw, Index sh, Index sw, Index dh, Index dw, std::string padding,
           Activation activation, bool use_bias, Initializer kernel_initializer, Initializer bias_initializer)
    : rank_(rank), filters_(filters), kh_(rank == 1 ? 1 : kh), kw_(kw), sh_(rank == 1 ? 1 : sh), sw_(sw),
      dh_(rank == 1 ? 1 : dh), dw_(dw), padding_(std::move(padding)), activation_(activation), use_bias_(use_bias),
      kernel_init_(kernel_initializer), bias_init_(bias_initializer) {
    const std::string who = kind();
    if (rank != 1 && rank != 2) throw InvalidArgument("Conv: rank must be 1 or 2");
    if (filters <= 0)
        throw InvalidArgument(who + ": filters must be a positive integer, got " + std::to_string(filters));
    if (kh_ <= 0 || kw_ <= 0 || sh_ <= 0 || sw_ <= 0 || dh_ <= 0 || dw_ <= 0)
        throw InvalidArgument(who + ": kernel_size, strides and dilation_rate must be positive integers");
    if (padding_ != "valid" && padding_ != "same" && !(rank == 1 && padding_ == "causal"))
        throw InvalidArgument(who + ": padding must be 'valid' or 'same'" + (rank == 1 ? " or 'causal'" : "") +
                              ", got '" + padding_ + "'");
}

// Conv2D: (H, W, C_in) -> (OH, OW, filters); Conv1D: (T, C_in) -> (OT, filters)
Shape Conv::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    const std::string who = kind() + " '" + name_ + "'";
    const Shape& in = inputs.empty() ? Shape{} : inputs[0];
    if (inputs.size() != 1 || static_cast<int>(in.size()) != rank_ + 1)
        throw InvalidArgument(who + " expects one input of shape " +
                              (rank_ == 1 ? "(steps, channels)" : "(height, width, channels)") + " per sample, got " +
                              (inputs.empty() ? std::string("none") : shape_str(in)));
    const Index H = rank_ == 1 ? 1 : in[0], W = in[rank_ - 1];
    c_in_ = in.back();
    win_ = make_window(H, W, kh_, kw_, sh_, sw_, dh_, dw_, padding_, who + " on input " + shape_str(in));
    kernel_ = rank_ == 1 ? params.add("kernel", {kw_, c_in_, filters_}, kernel_init_)
                         : params.add("kernel", {kh_, kw_, c_in_, filters_}, kernel_init_);
    if (use_bias_) bias_ = params.add("bias", {filters_}, bias_init_);
    return rank_ == 1 ? Shape{win_.OW, filters_} : Shape{win_.OH, win_.OW, filters_};
}

Index Conv::saved_size(Index N) const {
    return activation_needs_src(activation_) ? N * win_.OH * win_.OW * filters_ : 0;
}

// x: N x H x W x C_in -> y: N x OH x OW x C_out
void Conv::forward(const ForwardArgs& a) const {
    kernels::conv_fwd(a.x[0], a.params + kernel_, use_bias_ ? a.params + bias_ : nullptr, a.y,
                      activation_needs_src(activation_) ? a.saved : nullptr, a.N, c_in_, filters_, win_, activation_);
}

// dy: N x OH x OW x C_out -> dx: N x H x W x C_in, dkernel: KH x KW x C_in x C_out, dbias: C_out
void Conv::backward(const BackwardArgs& a) const {
    const Index rows = a.N * win_.OH * win_.OW;
    const float* dpre = a.dy;
    thread_local FloatVec scratch;
    if (activation_ != Activation::linear) {
        scratch.resize(static_cast<std::size_t>(rows * filters_));
        kernels::eltwise_bwd(activation_, a.saved, a.y, a.dy, scratch.data(), rows, filters_);
        dpre = scratch.data();
    }
    kernels::conv_bwd(a.x[0], a.params + kernel_, dpre, a.dx[0], a.grads + kernel_,
                      use_bias_ ? a.grads + bias_ : nullptr, a.N, c_in_, filters_, win_);
}

}  // namespace maasfin
