// Reference pooling over channels_last buffers. Shapes: src N x H x W x C, dst N x OH x OW x C.
// Padded cells never take part: max ignores them, avg divides by the number of cells inside the
// input (Keras's 'same' average pooling).
#include <algorithm>
#include <limits>

#include "../backends.hpp"

namespace maasfin::kernels::reference {

namespace {
// The window of output (oh, ow) clipped to the input: rows [h0, h1), columns [w0, w1).
struct Span {
    Index h0, h1, w0, w1;
};
inline Span span(const Window& w, Index oh, Index ow) {
    const Index h = oh * w.SH - w.PT, c = ow * w.SW - w.PL;
    return {std::max<Index>(h, 0), std::min(h + w.KH, w.H), std::max<Index>(c, 0), std::min(c + w.KW, w.W)};
}
}  // namespace

void pool_fwd(Pool kind, const float* src, float* dst, Index N, Index C, const Window& w) {
    for (Index n = 0; n < N; ++n)
        for (Index oh = 0; oh < w.OH; ++oh)
            for (Index ow = 0; ow < w.OW; ++ow) {
                const Span sp = span(w, oh, ow);
                float* d = dst + ((n * w.OH + oh) * w.OW + ow) * C;
                const float init = kind == Pool::max ? -std::numeric_limits<float>::infinity() : 0.f;
                std::fill(d, d + C, init);
                for (Index ih = sp.h0; ih < sp.h1; ++ih)
                    for (Index iw = sp.w0; iw < sp.w1; ++iw) {
                        const float* s = src + ((n * w.H + ih) * w.W + iw) * C;
                        if (kind == Pool::max)
                            for (Index c = 0; c < C; ++c) d[c] = std::max(d[c], s[c]);
                        else
                            for (Index c = 0; c < C; ++c) d[c] += s[c];
                    }
                if (kind == Pool::avg) {
                    const float inv = 1.f / static_cast<float>((sp.h1 - sp.h0) * (sp.w1 - sp.w0));
                    for (Index c = 0; c < C; ++c) d[c] *= inv;
                }
            }
}

// Max: the gradient goes to the first cell (in window order) holding the maximum.
void pool_bwd(Pool kind, const float* src, const float* diff_dst, float* diff_src, Index N, Index C, const Window& w) {
    std::fill(diff_src, diff_src + N * w.H * w.W * C, 0.f);
    for (Index n = 0; n < N; ++n)
        for (Index oh = 0; oh < w.OH; ++oh)
            for (Index ow = 0; ow < w.OW; ++ow) {
                const Span sp = span(w, oh, ow);
                const float* dd = diff_dst + ((n * w.OH + oh) * w.OW + ow) * C;
                if (kind == Pool::avg) {
                    const float inv = 1.f / static_cast<float>((sp.h1 - sp.h0) * (sp.w1 - sp.w0));
                    for (Index ih = sp.h0; ih < sp.h1; ++ih)
                        for (Index iw = sp.w0; iw < sp.w1; ++iw) {
                            float* ds = diff_src + ((n * w.H + ih) * w.W + iw) * C;
                            for (Index c = 0; c < C; ++c) ds[c] += dd[c] * inv;
                        }
                    continue;
                }
                for (Index c = 0; c < C; ++c) {
                    Index best = -1;
                    float mx = -std::numeric_limits<float>::infinity();
                    for (Index ih = sp.h0; ih < sp.h1; ++ih)
                        for (Index iw = sp.w0; iw < sp.w1; ++iw) {
                            const Index at = ((n * w.H + ih) * w.W + iw) * C + c;
                            if (best < 0 || src[at] > mx) mx = src[at], best = at;
                        }
                    if (best >= 0) diff_src[best] += dd[c];
                }
            }
}

}  // namespace maasfin::kernels::reference
