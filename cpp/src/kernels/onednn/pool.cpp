// Max and average pooling as oneDNN primitives on channels_last buffers.
// Shapes: src N x H x W x C, dst N x OH x OW x C. Training max pooling keeps oneDNN's workspace
// (the winning cell per output) for backward; average pooling excludes padding, as Keras does.
#include <string>

#include "../backends.hpp"
#include "context.hpp"

namespace maasfin::kernels::onednn {

namespace {
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;

dnnl::algorithm algorithm(Pool kind) {
    return kind == Pool::max ? dnnl::algorithm::pooling_max : dnnl::algorithm::pooling_avg_exclude_padding;
}

dnnl::memory::desc src_md(Index N, Index C, const Window& w) {
    return dnnl::memory::desc({N, C, w.H, w.W}, dt::f32, tag::nhwc);
}
dnnl::memory::desc dst_md(Index N, Index C, const Window& w) {
    return dnnl::memory::desc({N, C, w.OH, w.OW}, dt::f32, tag::nhwc);
}

dnnl::pooling_forward::primitive_desc fwd_pd(Pool kind, Index N, Index C, const Window& w, bool training) {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return dnnl::pooling_forward::primitive_desc(
        engine(), training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, algorithm(kind),
        src_md(N, C, w), dst_md(N, C, w), dims{w.SH, w.SW}, dims{w.KH, w.KW}, dims{0, 0}, dims{w.PT, w.PL},
        dims{w.PB, w.PR}, attr);
}

std::string key(const char* op, Pool kind, Index N, Index C, const Window& w) {
    std::string k = std::string(op) + (kind == Pool::max ? ":max" : ":avg");
    for (Index v : {N, C, w.H, w.W, w.KH, w.KW, w.SH, w.SW, w.PT, w.PB, w.PL, w.PR}) k += ":" + std::to_string(v);
    return k;
}

Cached fwd(Pool kind, Index N, Index C, const Window& w, bool training) {
    return get_primitive(key(training ? "pool_fwd_t" : "pool_fwd_i", kind, N, C, w), [&] {
        auto pd = fwd_pd(kind, N, C, w, training);
        return Cached{dnnl::pooling_forward(pd), pd.scratchpad_desc(), pd.workspace_desc()};
    });
}
}  // namespace

Index pool_workspace_bytes(Index N, Index C, const Window& w) {
    return static_cast<Index>(fwd(Pool::max, N, C, w, true).aux.get_size());
}

void pool_fwd(Pool kind, const float* src, float* dst, void* workspace, Index N, Index C, const Window& w) {
    const bool training = workspace != nullptr && kind == Pool::max;
    const Cached cached = fwd(kind, N, C, w, training);
    auto& eng = engine();
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, dnnl::memory(src_md(N, C, w), eng, const_cast<float*>(src))},
        {DNNL_ARG_DST, dnnl::memory(dst_md(N, C, w), eng, dst)}};
    if (training) args.emplace(DNNL_ARG_WORKSPACE, dnnl::memory(cached.aux, eng, workspace));
    execute(cached, args);
}

void pool_bwd(Pool kind, const void* workspace, const float* diff_dst, float* diff_src, Index N, Index C,
              const Window& w) {
    const Cached cached = get_primitive(key("pool_bwd", kind, N, C, w), [&] {
        auto hint = fwd_pd(kind, N, C, w, true);
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        auto pd = dnnl::pooling_backward::primitive_desc(engine(), algorithm(kind), src_md(N, C, w), dst_md(N, C, w),
                                                         dims{w.SH, w.SW}, dims{w.KH, w.KW}, dims{0, 0},
                                                         dims{w.PT, w.PL}, dims{w.PB, w.PR}, hint, attr);
        return Cached{dnnl::pooling_backward(pd), pd.scratchpad_desc(), hint.workspace_desc()};
    });
    auto& eng = engine();
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_DIFF_DST, dnnl::memory(dst_md(N, C, w), eng, const_cast<float*>(diff_dst))},
        {DNNL_ARG_DIFF_SRC, dnnl::memory(src_md(N, C, w), eng, diff_src)}};
    if (kind == Pool::max)
        args.emplace(DNNL_ARG_WORKSPACE, dnnl::memory(cached.aux, eng, const_cast<void*>(workspace)));
    execute(cached, args);
}

}  // namespace maasfin::kernels::onednn
