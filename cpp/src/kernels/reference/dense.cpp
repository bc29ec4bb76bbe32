// Reference dense kernels on Eigen maps. Shapes: src N x D_in, weights D_in x D_out, dst N x D_out.
#include <Eigen/Core>
#include <cmath>

#include "../backends.hpp"

namespace maasfin::kernels::reference {

namespace {
using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapC = Eigen::Map<const Mat, Eigen::Aligned16>;
using Map = Eigen::Map<Mat, Eigen::Unaligned>;
using MapCU = Eigen::Map<const Mat, Eigen::Unaligned>;
using RowC = Eigen::Map<const Eigen::RowVectorXf, Eigen::Unaligned>;
using Row = Eigen::Map<Eigen::RowVectorXf, Eigen::Unaligned>;
}  // namespace

// N x D_in . D_in x D_out + bias -> act -> N x D_out
void dense_fwd(const float* src, const float* weights, const float* bias, float* dst, float* pre, Index N, Index D_in,
               Index D_out, Activation act) {
    float* out = pre ? pre : dst;
    Map y(out, N, D_out);
    MapCU x(src, N, D_in);
    MapCU w(weights, D_in, D_out);
    y.noalias() = x * w;
    if (bias) y.rowwise() += RowC(bias, D_out);
    if (pre || act != Activation::linear) eltwise_fwd(act, out, dst, N, D_out);
}

// The batch-invariant twin, in the same two schemes as kernels/rowwise/dense.cpp. Column scheme
// (D_out >= kRowwiseDotMaxOut): one accumulator per output, std::fma in k order from 0. Dot scheme:
// 8 lane accumulators (lane l takes k = l, l + 8, ... below K - K % 8), summed as
// ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), then the tail by std::fma in k order. Then + bias,
// then the activation.
void dense_fwd_rowwise(const float* src, const float* weights, const float* bias, float* dst, Index N, Index D_in,
                       Index D_out, Activation act) {
    const bool dot = D_out < kRowwiseDotMaxOut;
    const Index K8 = D_in - D_in % 8;
    for (Index n = 0; n < N; ++n) {
        const float* x = src + n * D_in;
        for (Index m = 0; m < D_out; ++m) {
            float acc = 0.f;
            if (dot) {
                float l[8] = {};
                for (Index k = 0; k < K8; ++k) l[k % 8] = std::fma(x[k], weights[k * D_out + m], l[k % 8]);
                acc = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
                for (Index k = K8; k < D_in; ++k) acc = std::fma(x[k], weights[k * D_out + m], acc);
            } else {
                for (Index k = 0; k < D_in; ++k) acc = std::fma(x[k], weights[k * D_out + m], acc);
            }
            dst[n * D_out + m] = bias ? acc + bias[m] : acc;
        }
    }
    if (act != Activation::linear) eltwise_fwd(act, dst, dst, N, D_out);
}

void dense_bwd(const float* src, const float* weights, const float* diff_dst, float* diff_src, float* diff_weights,
               float* diff_bias, Index N, Index D_in, Index D_out) {
    MapCU dy(diff_dst, N, D_out);
    MapCU x(src, N, D_in);
    MapCU w(weights, D_in, D_out);
    Map(diff_weights, D_in, D_out).noalias() = x.transpose() * dy;
    if (diff_bias) Row(diff_bias, D_out) = dy.colwise().sum();
    if (diff_src) Map(diff_src, N, D_in).noalias() = dy * w.transpose();
}

// B products of op(a[b]) (M x K) and op(b[b]) (K x N); transposed operands are Eigen views.
void batch_matmul(const float* a, bool a_t, const float* b, bool b_t, float* dst, Index B, Index M, Index K, Index N) {
    for (Index i = 0; i < B; ++i) {
        const float* ai = a + i * M * K;
        const float* bi = b + i * K * N;
        Map y(dst + i * M * N, M, N);
        if (!a_t && !b_t)
            y.noalias() = MapCU(ai, M, K) * MapCU(bi, K, N);
        else if (!a_t && b_t)
            y.noalias() = MapCU(ai, M, K) * MapCU(bi, N, K).transpose();
        else if (a_t && !b_t)
            y.noalias() = MapCU(ai, K, M).transpose() * MapCU(bi, K, N);
        else
            y.noalias() = MapCU(ai, K, M).transpose() * MapCU(bi, N, K).transpose();
    }
}

}  // namespace maasfin::kernels::reference
