// Reference convolution: direct loops over channels_last buffers, the test oracle for oneDNN.
// Shapes: src N x H x W x C_in, weights KH x KW x C_in x C_out (Keras), dst N x OH x OW x C_out.
// The innermost loop always runs over C_out, which is contiguous in both weights and dst.
#include <algorithm>

#include "../backends.hpp"

namespace maasfin::kernels::reference {

namespace {
// Input row/column read by output position o and window tap k, or -1 when it falls in padding.
inline Index tap(Index o, Index k, Index stride, Index dilation, Index pad, Index in) {
    const Index i = o * stride + k * dilation - pad;
    return i >= 0 && i < in ? i : -1;
}
}  // namespace

void conv_fwd(const float* src, const float* weights, const float* bias, float* dst, Index N, Index C_in, Index C_out,
              const Window& w) {
    for (Index n = 0; n < N; ++n)
        for (Index oh = 0; oh < w.OH; ++oh)
            for (Index ow = 0; ow < w.OW; ++ow) {
                float* d = dst + ((n * w.OH + oh) * w.OW + ow) * C_out;
                for (Index co = 0; co < C_out; ++co) d[co] = bias ? bias[co] : 0.f;
                for (Index kh = 0; kh < w.KH; ++kh) {
                    const Index ih = tap(oh, kh, w.SH, w.DH, w.PT, w.H);
                    if (ih < 0) continue;
                    for (Index kw = 0; kw < w.KW; ++kw) {
                        const Index iw = tap(ow, kw, w.SW, w.DW, w.PL, w.W);
                        if (iw < 0) continue;
                        const float* s = src + ((n * w.H + ih) * w.W + iw) * C_in;
                        const float* wk = weights + (kh * w.KW + kw) * C_in * C_out;
                        for (Index ci = 0; ci < C_in; ++ci) {
                            const float v = s[ci];
                            const float* wr = wk + ci * C_out;
                            for (Index co = 0; co < C_out; ++co) d[co] += v * wr[co];
                        }
                    }
                }
            }
}

void conv_bwd(const float* src, const float* weights, const float* diff_dst, float* diff_src, float* diff_weights,
              float* diff_bias, Index N, Index C_in, Index C_out, const Window& w) {
    std::fill(diff_weights, diff_weights + w.KH * w.KW * C_in * C_out, 0.f);
    if (diff_src) std::fill(diff_src, diff_src + N * w.H * w.W * C_in, 0.f);
    if (diff_bias) std::fill(diff_bias, diff_bias + C_out, 0.f);
    for (Index n = 0; n < N; ++n)
        for (Index oh = 0; oh < w.OH; ++oh)
            for (Index ow = 0; ow < w.OW; ++ow) {
                const float* dd = diff_dst + ((n * w.OH + oh) * w.OW + ow) * C_out;
                if (diff_bias)
                    for (Index co = 0; co < C_out; ++co) diff_bias[co] += dd[co];
                for (Index kh = 0; kh < w.KH; ++kh) {
                    const Index ih = tap(oh, kh, w.SH, w.DH, w.PT, w.H);
                    if (ih < 0) continue;
                    for (Index kw = 0; kw < w.KW; ++kw) {
                        const Index iw = tap(ow, kw, w.SW, w.DW, w.PL, w.W);
                        if (iw < 0) continue;
                        const Index at = ((n * w.H + ih) * w.W + iw) * C_in;
                        const float* s = src + at;
                        const Index wk = (kh * w.KW + kw) * C_in * C_out;
                        for (Index ci = 0; ci < C_in; ++ci) {
                            const float* wr = weights + wk + ci * C_out;
                            float* dw = diff_weights + wk + ci * C_out;
                            float acc = 0.f;
                            const float v = s[ci];
                            for (Index co = 0; co < C_out; ++co) {
                                dw[co] += v * dd[co];
                                acc += wr[co] * dd[co];
                            }
                            if (diff_src) diff_src[at + ci] += acc;
                        }
                    }
                }
            }
}

}  // namespace maasfin::kernels::reference
