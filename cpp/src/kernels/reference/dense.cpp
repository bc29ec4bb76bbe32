// Reference dense kernels on Eigen maps. Shapes: src N x D_in, weights D_in x D_out, dst N x D_out.
#include <Eigen/Core>

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
void dense_fwd(const float* src, const float* weights, const float* bias, float* dst, float* pre,
               Index N, Index D_in, Index D_out, Activation act) {
    float* out = pre ? pre : dst;
    Map y(out, N, D_out);
    MapCU x(src, N, D_in);
    MapCU w(weights, D_in, D_out);
    y.noalias() = x * w;
    if (bias) y.rowwise() += RowC(bias, D_out);
    if (pre || act != Activation::linear) eltwise_fwd(act, out, dst, N, D_out);
}

void dense_bwd(const float* src, const float* weights, const float* diff_dst, float* diff_src,
               float* diff_weights, float* diff_bias, Index N, Index D_in, Index D_out) {
    MapCU dy(diff_dst, N, D_out);
    MapCU x(src, N, D_in);
    MapCU w(weights, D_in, D_out);
    Map(diff_weights, D_in, D_out).noalias() = x.transpose() * dy;
    if (diff_bias) Row(diff_bias, D_out) = dy.colwise().sum();
    if (diff_src) Map(diff_src, N, D_in).noalias() = dy * w.transpose();
}

}  // namespace maasfin::kernels::reference
