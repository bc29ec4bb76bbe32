// Convolution forward / backward-data / backward-weights as oneDNN primitives on channels_last
// buffers. Shapes: src N x H x W x C_in, weights KH x KW x C_in x C_out (Keras), dst N x OH x OW x C_out.
//
// Weights: Keras's (KH, KW, C_in, C_out) is oneDNN's plain `hwio` format, so a primitive could read
// it in place. The fast (jit/brgemm) implementations want a blocked weights layout, though, so each
// primitive is created with weights `any` and the Keras buffer is reordered into the layout it
// picks (and diff_weights back out of it). That costs one pass over the weights per call,
// KH*KW*C_in*C_out floats, which is small next to the N*OH*OW*C_out*KH*KW*C_in multiply-adds of
// the convolution itself (for the 3x3x1x32 CNN layer at batch 64: 288 floats vs 12 M MACs).
// Activations stay in the user's nhwc layout: reordering them would cost as much as the op.
#include <string>

#include "../backends.hpp"
#include "context.hpp"

namespace maasfin::kernels::onednn {

namespace {
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;
using prop = dnnl::prop_kind;

struct Descs {
    dnnl::memory::desc src, weights_user, weights_any, bias, dst;
    dims strides, dilates, pad_l, pad_r;
};

Descs descs(Index N, Index C_in, Index C_out, const Window& w) {
    Descs d;
    d.src = dnnl::memory::desc({N, C_in, w.H, w.W}, dt::f32, tag::nhwc);
    d.weights_user = dnnl::memory::desc({C_out, C_in, w.KH, w.KW}, dt::f32, tag::hwio);
    d.weights_any = dnnl::memory::desc({C_out, C_in, w.KH, w.KW}, dt::f32, tag::any);
    d.bias = dnnl::memory::desc({C_out}, dt::f32, tag::a);
    d.dst = dnnl::memory::desc({N, C_out, w.OH, w.OW}, dt::f32, tag::nhwc);
    d.strides = {w.SH, w.SW};
    d.dilates = {w.DH - 1, w.DW - 1};  // oneDNN counts the gaps, Keras the step
    d.pad_l = {w.PT, w.PL};
    d.pad_r = {w.PB, w.PR};
    return d;
}

std::string key(const char* op, Index N, Index C_in, Index C_out, const Window& w) {
    std::string k = op;
    for (Index v : {N, C_in, C_out, w.H, w.W, w.KH, w.KW, w.SH, w.SW, w.DH, w.DW, w.PT, w.PB, w.PL, w.PR})
        k += ":" + std::to_string(v);
    return k;
}

dnnl::convolution_forward::primitive_desc fwd_pd(const Descs& d, bool bias, Activation act, bool training) {
    dnnl::post_ops ops;
    append_activation(ops, act);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const auto pk = training ? prop::forward_training : prop::forward_inference;
    return bias ? dnnl::convolution_forward::primitive_desc(engine(), pk, dnnl::algorithm::convolution_direct, d.src,
                                                            d.weights_any, d.bias, d.dst, d.strides, d.dilates, d.pad_l,
                                                            d.pad_r, attr)
                : dnnl::convolution_forward::primitive_desc(engine(), pk, dnnl::algorithm::convolution_direct, d.src,
                                                            d.weights_any, d.dst, d.strides, d.dilates, d.pad_l,
                                                            d.pad_r, attr);
}

// The user's weights in `want`: the buffer itself when the layouts agree, else a reorder into a
// per-thread buffer (slot 0: forward/backward-data weights, 1: backward-weights result).
dnnl::memory weights_in(const dnnl::memory::desc& user, const dnnl::memory::desc& want, const float* data, int slot) {
    auto& eng = engine();
    dnnl::memory user_mem(user, eng, const_cast<float*>(data));
    if (want == user) return user_mem;
    thread_local std::vector<float> buffers[2];
    auto& buf = buffers[slot];
    if (buf.size() * sizeof(float) < want.get_size()) buf.resize(want.get_size() / sizeof(float) + 1);
    dnnl::memory m(want, eng, buf.data());
    dnnl::reorder(user_mem, m).execute(stream(), user_mem, m);
    stream().wait();
    return m;
}
}  // namespace

bool conv_fwd(const float* src, const float* weights, const float* bias, float* dst, Index N, Index C_in, Index C_out,
              const Window& w, Activation act) {
    dnnl::post_ops probe;
    if (!append_activation(probe, act)) return false;
    const Descs d = descs(N, C_in, C_out, w);
    const std::string k =
        key("conv_fwd", N, C_in, C_out, w) + ":" + std::to_string(bias != nullptr) + ":" + activation_name(act);
    const Cached cached = get_primitive(k, [&] {
        auto pd = fwd_pd(d, bias != nullptr, act, true);
        return Cached{dnnl::convolution_forward(pd), pd.scratchpad_desc(), pd.weights_desc()};
    });
    const dnnl::memory::desc& wdesc = cached.aux;
    auto& eng = engine();
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(d.src, eng, const_cast<float*>(src))},
                                               {DNNL_ARG_WEIGHTS, weights_in(d.weights_user, wdesc, weights, 0)},
                                               {DNNL_ARG_DST, dnnl::memory(d.dst, eng, dst)}};
    if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(d.bias, eng, const_cast<float*>(bias)));
    execute(cached, args);
    return true;
}

void conv_bwd(const float* src, const float* weights, const float* diff_dst, float* diff_src, float* diff_weights,
              float* diff_bias, Index N, Index C_in, Index C_out, const Window& w) {
    const Descs d = descs(N, C_in, C_out, w);
    auto& eng = engine();
    const bool has_bias = diff_bias != nullptr;
    // Backward weights (and bias).
    {
        const Cached cached = get_primitive(key("conv_bwd_w", N, C_in, C_out, w) + std::to_string(has_bias), [&] {
            auto hint = fwd_pd(d, has_bias, Activation::linear, true);
            dnnl::primitive_attr attr;
            attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
            auto pd = has_bias ? dnnl::convolution_backward_weights::primitive_desc(
                                     engine(), dnnl::algorithm::convolution_direct, d.src, d.weights_any, d.bias, d.dst,
                                     d.strides, d.dilates, d.pad_l, d.pad_r, hint, attr)
                               : dnnl::convolution_backward_weights::primitive_desc(
                                     engine(), dnnl::algorithm::convolution_direct, d.src, d.weights_any, d.dst,
                                     d.strides, d.dilates, d.pad_l, d.pad_r, hint, attr);
            return Cached{dnnl::convolution_backward_weights(pd), pd.scratchpad_desc(), pd.diff_weights_desc()};
        });
        const dnnl::memory::desc& want = cached.aux;
        dnnl::memory user(d.weights_user, eng, diff_weights);
        dnnl::memory out = user;
        thread_local std::vector<float> buf;
        if (want != d.weights_user) {
            if (buf.size() * sizeof(float) < want.get_size()) buf.resize(want.get_size() / sizeof(float) + 1);
            out = dnnl::memory(want, eng, buf.data());
        }
        std::unordered_map<int, dnnl::memory> args{
            {DNNL_ARG_SRC, dnnl::memory(d.src, eng, const_cast<float*>(src))},
            {DNNL_ARG_DIFF_DST, dnnl::memory(d.dst, eng, const_cast<float*>(diff_dst))},
            {DNNL_ARG_DIFF_WEIGHTS, out}};
        if (has_bias) args.emplace(DNNL_ARG_DIFF_BIAS, dnnl::memory(d.bias, eng, diff_bias));
        execute(cached, args);
        if (want != d.weights_user) {
            dnnl::reorder(out, user).execute(stream(), out, user);
            stream().wait();
        }
    }
    if (!diff_src) return;
    const Cached cached = get_primitive(key("conv_bwd_d", N, C_in, C_out, w), [&] {
        auto hint = fwd_pd(d, false, Activation::linear, true);
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        auto pd = dnnl::convolution_backward_data::primitive_desc(engine(), dnnl::algorithm::convolution_direct, d.src,
                                                                  d.weights_any, d.dst, d.strides, d.dilates, d.pad_l,
                                                                  d.pad_r, hint, attr);
        return Cached{dnnl::convolution_backward_data(pd), pd.scratchpad_desc(), pd.weights_desc()};
    });
    const dnnl::memory::desc& want = cached.aux;
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_DIFF_DST, dnnl::memory(d.dst, eng, const_cast<float*>(diff_dst))},
        {DNNL_ARG_WEIGHTS, weights_in(d.weights_user, want, weights, 1)},
        {DNNL_ARG_DIFF_SRC, dnnl::memory(d.src, eng, diff_src)}};
    execute(cached, args);
}

}  // namespace maasfin::kernels::onednn
