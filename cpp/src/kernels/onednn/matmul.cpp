// Dense forward/backward as oneDNN matmul primitives on plain row-major buffers.
// Transposed operands are expressed with strides, so no reorder ever runs: the Keras-layout
// kernel (D_in x D_out) is consumed in place, and nothing is copied per weight update.
#include <string>

#include "../backends.hpp"
#include "context.hpp"

namespace maasfin::kernels::onednn {

namespace {
using dt = dnnl::memory::data_type;
using dims = dnnl::memory::dims;

// A row-major M x K matrix, or its transpose viewed through strides.
dnnl::memory::desc mat(Index rows, Index cols, bool transposed) {
    return transposed ? dnnl::memory::desc({rows, cols}, dt::f32, dims{1, rows})
                      : dnnl::memory::desc({rows, cols}, dt::f32, dims{cols, 1});
}

// dst[M,N] = op(a)[M,K] . op(b)[K,N] (+ bias[N]) with optional activation post-op.
void matmul(const float* a, bool a_t, const float* b, bool b_t, const float* bias, float* dst, Index M, Index K,
            Index N, Activation act) {
    const std::string key = "mm:" + std::to_string(M) + "x" + std::to_string(K) + "x" + std::to_string(N) + ":" +
                            std::to_string(a_t) + std::to_string(b_t) + std::to_string(bias != nullptr) + ":" +
                            activation_name(act);
    const auto a_md = mat(M, K, a_t);
    const auto b_md = mat(K, N, b_t);
    const auto dst_md = mat(M, N, false);
    const auto bias_md = dnnl::memory::desc({1, N}, dt::f32, dims{N, 1});
    const Cached cached = get_primitive(key, [&] {
        dnnl::post_ops ops;
        append_activation(ops, act);
        dnnl::primitive_attr attr;
        attr.set_post_ops(ops);
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        auto pd = bias ? dnnl::matmul::primitive_desc(engine(), a_md, b_md, bias_md, dst_md, attr)
                       : dnnl::matmul::primitive_desc(engine(), a_md, b_md, dst_md, attr);
        return Cached{dnnl::matmul(pd), pd.scratchpad_desc()};
    });
    auto& eng = engine();
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(a_md, eng, const_cast<float*>(a))},
                                               {DNNL_ARG_WEIGHTS, dnnl::memory(b_md, eng, const_cast<float*>(b))},
                                               {DNNL_ARG_DST, dnnl::memory(dst_md, eng, dst)}};
    if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(bias_md, eng, const_cast<float*>(bias)));
    args.emplace(DNNL_ARG_SCRATCHPAD, thread_scratchpad(cached.scratchpad));
    apply_num_threads();
    auto& s = stream();
    cached.prim.execute(s, args);
    s.wait();
}
// B x rows x cols, row-major per batch, or each batch's transpose viewed through strides.
dnnl::memory::desc batch_mat(Index B, Index rows, Index cols, bool transposed) {
    return transposed ? dnnl::memory::desc({B, rows, cols}, dt::f32, dims{rows * cols, 1, rows})
                      : dnnl::memory::desc({B, rows, cols}, dt::f32, dims{rows * cols, cols, 1});
}
}  // namespace

void batch_matmul(const float* a, bool a_t, const float* b, bool b_t, float* dst, Index B, Index M, Index K, Index N) {
    const std::string key = "bmm:" + std::to_string(B) + "x" + std::to_string(M) + "x" + std::to_string(K) + "x" +
                            std::to_string(N) + ":" + std::to_string(a_t) + std::to_string(b_t);
    const auto a_md = batch_mat(B, M, K, a_t);
    const auto b_md = batch_mat(B, K, N, b_t);
    const auto dst_md = batch_mat(B, M, N, false);
    const Cached cached = get_primitive(key, [&] {
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        auto pd = dnnl::matmul::primitive_desc(engine(), a_md, b_md, dst_md, attr);
        return Cached{dnnl::matmul(pd), pd.scratchpad_desc()};
    });
    auto& eng = engine();
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(a_md, eng, const_cast<float*>(a))},
                                               {DNNL_ARG_WEIGHTS, dnnl::memory(b_md, eng, const_cast<float*>(b))},
                                               {DNNL_ARG_DST, dnnl::memory(dst_md, eng, dst)}};
    args.emplace(DNNL_ARG_SCRATCHPAD, thread_scratchpad(cached.scratchpad));
    apply_num_threads();
    auto& s = stream();
    cached.prim.execute(s, args);
    s.wait();
}

// src N x D_in, weights D_in x D_out, dst N x D_out
bool dense_fwd(const float* src, const float* weights, const float* bias, float* dst, Index N, Index D_in, Index D_out,
               Activation act) {
    dnnl::post_ops probe;
    if (!append_activation(probe, act)) return false;
    matmul(src, false, weights, false, bias, dst, N, D_in, D_out, act);
    return true;
}

// diff_dst N x D_out; diff_src N x D_in; diff_weights D_in x D_out; diff_bias D_out
void dense_bwd(const float* src, const float* weights, const float* diff_dst, float* diff_src, float* diff_weights,
               float* diff_bias, Index N, Index D_in, Index D_out) {
    matmul(src, true, diff_dst, false, nullptr, diff_weights, D_in, N, D_out, Activation::linear);
    if (diff_src) matmul(diff_dst, false, weights, true, nullptr, diff_src, N, D_out, D_in, Activation::linear);
    if (diff_bias) {
        for (Index j = 0; j < D_out; ++j) diff_bias[j] = 0.f;
        for (Index i = 0; i < N; ++i) {
            const float* row = diff_dst + i * D_out;
            for (Index j = 0; j < D_out; ++j) diff_bias[j] += row[j];
        }
    }
}

}  // namespace maasfin::kernels::onednn
