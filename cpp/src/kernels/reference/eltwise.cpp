// Reference element-wise activations. Shapes: src, dst, diff_* are N x D; softmax runs over D.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../backends.hpp"

namespace maasfin::kernels::reference {

namespace {
constexpr float kSeluScale = 1.0507009873554804934193349852946f;
constexpr float kSeluAlpha = 1.6732632423543772848170429916717f;
constexpr float kLeakySlope = 0.2f;  // Keras's default negative_slope for "leaky_relu"
constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

// Padding unit of the aligned blocks: a multiple of every packet size Eigen may use (AVX-512: 16).
constexpr Index kLanes = 16;
constexpr Index kBlock = 1024;
using Block = Eigen::Map<Eigen::ArrayXf, Eigen::AlignedMax>;

// dst[0..n) = f(src[0..n)) applied to aligned blocks of kBlock floats (the last one zero-padded to
// kLanes), so that Eigen never peels unaligned heads or scalar tails.
template <class F>
void by_aligned_blocks(const float* src, float* dst, Index n, F f) {
    alignas(64) float buf[kBlock];
    for (Index i = 0; i < n; i += kBlock) {
        const Index m = std::min(kBlock, n - i);
        const Index padded = (m + kLanes - 1) / kLanes * kLanes;
        std::copy(src + i, src + i + m, buf);
        std::fill(buf + m, buf + padded, 0.f);
        f(Block(buf, padded));
        std::copy(buf, buf + m, dst + i);
    }
}

inline float sigmoid(float v) {
    if (v >= 0.f) return 1.f / (1.f + std::exp(-v));
    float e = std::exp(v);
    return e / (1.f + e);
}
}  // namespace

void eltwise_fwd(Activation act, const float* src, float* dst, Index N, Index D) {
    const Index n = N * D;
    switch (act) {
        case Activation::linear:
            if (dst != src)
                for (Index i = 0; i < n; ++i) dst[i] = src[i];
            return;
        case Activation::relu:
            for (Index i = 0; i < n; ++i) dst[i] = src[i] > 0.f ? src[i] : 0.f;
            return;
        // Vectorised (Eigen's packet exp and tanh, a few ulp): the recurrent layers apply these
        // to every gate of every step, where glibc's scalar tanhf/expf dominated the run time.
        // Through aligned, padded blocks, so every element takes the packet path: an element's
        // value never depends on its position (batch-invariant inference relies on this).
        case Activation::sigmoid:
            by_aligned_blocks(src, dst, n, [](Block b) { b = ((-b).exp() + 1.f).inverse(); });
            return;
        case Activation::tanh: by_aligned_blocks(src, dst, n, [](Block b) { b = b.tanh(); }); return;
        case Activation::elu:
            for (Index i = 0; i < n; ++i) dst[i] = src[i] > 0.f ? src[i] : std::expm1(src[i]);
            return;
        case Activation::selu:
            for (Index i = 0; i < n; ++i)
                dst[i] = kSeluScale * (src[i] > 0.f ? src[i] : kSeluAlpha * std::expm1(src[i]));
            return;
        case Activation::gelu:
            for (Index i = 0; i < n; ++i) dst[i] = 0.5f * src[i] * (1.f + std::erf(src[i] * kInvSqrt2));
            return;
        case Activation::leaky_relu:
            for (Index i = 0; i < n; ++i) dst[i] = src[i] > 0.f ? src[i] : kLeakySlope * src[i];
            return;
        case Activation::swish:
            for (Index i = 0; i < n; ++i) dst[i] = src[i] * sigmoid(src[i]);
            return;
        // Vectorised exp as above: attention applies softmax to every row of every head's scores.
        // src may alias dst (coefficient-wise expressions only).
        case Activation::softmax:
            // Each row through an aligned buffer padded with -inf (exp gives 0), so the packet
            // split and the order of the sum depend on D only, never on the row's address.
            for (Index r = 0; r < N; ++r) {
                thread_local std::vector<float, Eigen::aligned_allocator<float>> buf;
                const Index padded = (D + kLanes - 1) / kLanes * kLanes;
                buf.assign(static_cast<std::size_t>(padded), -std::numeric_limits<float>::infinity());
                std::copy(src + r * D, src + (r + 1) * D, buf.begin());
                Block b(buf.data(), padded);
                const float mx = b.maxCoeff();
                b = (b - mx).exp();
                b *= static_cast<float>(1.0 / static_cast<double>(b.sum()));
                std::copy(buf.begin(), buf.begin() + D, dst + r * D);
            }
            return;
    }
}

void eltwise_bwd(Activation act, const float* src, const float* dst, const float* diff_dst, float* diff_src, Index N,
                 Index D) {
    const Index n = N * D;
    const float* y = dst;
    const float* dy = diff_dst;
    float* dx = diff_src;
    switch (act) {
        case Activation::linear:
            if (dx != dy)
                for (Index i = 0; i < n; ++i) dx[i] = dy[i];
            return;
        case Activation::relu:
            for (Index i = 0; i < n; ++i) dx[i] = y[i] > 0.f ? dy[i] : 0.f;
            return;
        case Activation::sigmoid:
            for (Index i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (1.f - y[i]);
            return;
        case Activation::tanh:
            for (Index i = 0; i < n; ++i) dx[i] = dy[i] * (1.f - y[i] * y[i]);
            return;
        case Activation::elu:
            for (Index i = 0; i < n; ++i) dx[i] = y[i] > 0.f ? dy[i] : dy[i] * (y[i] + 1.f);
            return;
        case Activation::selu:
            for (Index i = 0; i < n; ++i)
                dx[i] = y[i] > 0.f ? dy[i] * kSeluScale : dy[i] * (y[i] + kSeluScale * kSeluAlpha);
            return;
        case Activation::leaky_relu:
            for (Index i = 0; i < n; ++i) dx[i] = y[i] > 0.f ? dy[i] : dy[i] * kLeakySlope;
            return;
        case Activation::gelu:
            for (Index i = 0; i < n; ++i) {
                const float x = src[i];
                const float cdf = 0.5f * (1.f + std::erf(x * kInvSqrt2));
                const float pdf = kInvSqrt2Pi * std::exp(-0.5f * x * x);
                dx[i] = dy[i] * (cdf + x * pdf);
            }
            return;
        case Activation::swish:
            for (Index i = 0; i < n; ++i) {
                const float s = sigmoid(src[i]);
                dx[i] = dy[i] * (s + src[i] * s * (1.f - s));
            }
            return;
        case Activation::softmax:
            for (Index r = 0; r < N; ++r) {
                const float* yr = y + r * D;
                const float* dyr = dy + r * D;
                float* dxr = dx + r * D;
                double dot = 0.0;
                for (Index j = 0; j < D; ++j) dot += double(dyr[j]) * yr[j];
                const float fdot = static_cast<float>(dot);
                for (Index j = 0; j < D; ++j) dxr[j] = yr[j] * (dyr[j] - fdot);
            }
            return;
    }
}

}  // namespace maasfin::kernels::reference
