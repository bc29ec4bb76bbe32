// Batch-invariant dense forward. Shapes: src N x K, weights K x M, bias M, dst N x M.
//
// The arithmetic of one output depends on (K, M) only, never on N, the row's position or the
// thread count. Column scheme (M >= 8): dst[n,m] = fma-chain over k = 0..K-1 of src[n,k] *
// weights[k,m] from 0, then + bias[m]. Dot scheme (M < 8): per output, 8 lane accumulators over
// k in steps of 8, the lanes summed in one fixed order, the K % 8 tail by fma in k order, + bias.
// A fused multiply-add rounds once, so a vector lane, a masked lane and std::fma give the same
// bits: blocking over rows and columns changes which instructions run, never the result. The
// scalar twin (reference::dense_fwd_rowwise) follows the same schemes and agrees bit for bit.
#include <algorithm>
#include <cmath>
#include <omp.h>

#include "../backends.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define MAASFIN_ROWWISE_AVX2 1
#endif

namespace maasfin::kernels::rowwise {

namespace {

constexpr Index kChunkRows = 96;             // rows per task: a chunk of src stays in L2 across panels
constexpr Index kParallelMacs = 256 * 1024;  // below this, one thread (thread start-up costs more)
constexpr Index kPackMinRows = 24;           // from this many rows, weights are packed into panels

#ifdef MAASFIN_ROWWISE_AVX2
inline __m256i lane_mask(Index valid) {
    alignas(32) int m[8];
    for (int i = 0; i < 8; ++i) m[i] = i < valid ? -1 : 0;
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
}

template <bool FULL>
inline __m256 load8(const float* p, __m256i mask) {
    if constexpr (FULL) return _mm256_loadu_ps(p);
    return _mm256_maskload_ps(p, mask);
}

// MR rows x 16 columns of the column scheme; the masks select the valid lanes of each 8-wide half
// of a partial panel.
template <int MR, bool FULL>
inline void panel16(const float* src, Index K, const float* w, Index ldw, Index M, const float* bias, float* dst,
                    __m256i lo, __m256i hi, bool relu) {
    __m256 acc[MR][2];
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (Index k = 0; k < K; ++k) {
        const __m256 w0 = load8<FULL>(w + k * ldw, lo), w1 = load8<FULL>(w + k * ldw + 8, hi);
        for (int r = 0; r < MR; ++r) {
            const __m256 x = _mm256_broadcast_ss(src + r * K + k);
            acc[r][0] = _mm256_fmadd_ps(x, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, w1, acc[r][1]);
        }
    }
    if (bias) {
        const __m256 b0 = load8<FULL>(bias, lo), b1 = load8<FULL>(bias + 8, hi);
        for (int r = 0; r < MR; ++r) {
            acc[r][0] = _mm256_add_ps(acc[r][0], b0);
            acc[r][1] = _mm256_add_ps(acc[r][1], b1);
        }
    }
    if (relu)  // max(x, +0) is the twin's `x > 0 ? x : 0` bit for bit (NaN and -0 give +0)
        for (int r = 0; r < MR; ++r) {
            acc[r][0] = _mm256_max_ps(acc[r][0], _mm256_setzero_ps());
            acc[r][1] = _mm256_max_ps(acc[r][1], _mm256_setzero_ps());
        }
    for (int r = 0; r < MR; ++r) {
        if constexpr (FULL) {
            _mm256_storeu_ps(dst + r * M, acc[r][0]);
            _mm256_storeu_ps(dst + r * M + 8, acc[r][1]);
        } else {
            _mm256_maskstore_ps(dst + r * M, lo, acc[r][0]);
            _mm256_maskstore_ps(dst + r * M + 8, hi, acc[r][1]);
        }
    }
}

// One row x 64 columns (8 accumulators: enough independent fma chains to hide the fma latency
// when a single row passes, as in one-row predictions).
inline void row64(const float* src, Index K, const float* w, Index M, const float* bias, float* dst, bool relu) {
    __m256 acc[8];
    for (int v = 0; v < 8; ++v) acc[v] = _mm256_setzero_ps();
    for (Index k = 0; k < K; ++k) {
        const __m256 x = _mm256_broadcast_ss(src + k);
        const float* wk = w + k * M;
        for (int v = 0; v < 8; ++v) acc[v] = _mm256_fmadd_ps(x, _mm256_loadu_ps(wk + 8 * v), acc[v]);
    }
    for (int v = 0; v < 8; ++v) {
        if (bias) acc[v] = _mm256_add_ps(acc[v], _mm256_loadu_ps(bias + 8 * v));
        if (relu) acc[v] = _mm256_max_ps(acc[v], _mm256_setzero_ps());
        _mm256_storeu_ps(dst + 8 * v, acc[v]);
    }
}

template <bool FULL>
void panel_rows(const float* src, Index K, const float* w, Index ldw, Index M, const float* bias, float* dst,
                Index rows, __m256i lo, __m256i hi, bool relu) {
    Index r = 0;
    for (; r + 6 <= rows; r += 6) panel16<6, FULL>(src + r * K, K, w, ldw, M, bias, dst + r * M, lo, hi, relu);
    const float* s = src + r * K;
    float* d = dst + r * M;
    switch (rows - r) {
        case 5: panel16<5, FULL>(s, K, w, ldw, M, bias, d, lo, hi, relu); break;
        case 4: panel16<4, FULL>(s, K, w, ldw, M, bias, d, lo, hi, relu); break;
        case 3: panel16<3, FULL>(s, K, w, ldw, M, bias, d, lo, hi, relu); break;
        case 2: panel16<2, FULL>(s, K, w, ldw, M, bias, d, lo, hi, relu); break;
        case 1: panel16<1, FULL>(s, K, w, ldw, M, bias, d, lo, hi, relu); break;
        default: break;
    }
}

// Column scheme over `rows` rows, panel by panel, so that a K x 16 panel of weights stays in L1
// while every row of the chunk passes. `packed` (or null): the weights as contiguous K x 16 panels,
// the last one zero-padded; without it the panels are read from the K x M weights in place.
void column_scheme(const float* src, const float* w, const float* packed, const float* bias, float* dst, Index rows,
                   Index K, Index M, bool relu) {
    const __m256i all = _mm256_set1_epi32(-1);
    Index m = 0;
    if (!packed && rows < kPackMinRows)  // few rows: 64-column panels, row by row
        for (; m + 64 <= M; m += 64)
            for (Index r = 0; r < rows; ++r)
                row64(src + r * K, K, w + m, M, bias ? bias + m : nullptr, dst + r * M + m, relu);
    for (; m + 16 <= M; m += 16) {
        const float* wp = packed ? packed + m * K : w + m;
        panel_rows<true>(src, K, wp, packed ? 16 : M, M, bias ? bias + m : nullptr, dst + m, rows, all, all, relu);
    }
    if (m < M) {
        const Index rem = M - m;
        const float* wp = packed ? packed + m * K : w + m;
        panel_rows<false>(src, K, wp, packed ? 16 : M, M, bias ? bias + m : nullptr, dst + m, rows,
                          lane_mask(std::min<Index>(rem, 8)), lane_mask(rem > 8 ? rem - 8 : 0), relu);
    }
}

// The column scheme with AVX-512 (chosen at run time where the CPU has it): MR rows x 32 columns,
// the same fma chain per output, so the same bits as the AVX2 path and the twin.
#define MAASFIN_AVX512 __attribute__((target("avx512f")))
template <int MR, bool FULL>
MAASFIN_AVX512 inline void panel32(const float* src, Index K, const float* w, Index ldw, Index M, const float* bias,
                                   float* dst, __mmask16 lo, __mmask16 hi, bool relu) {
    __m512 acc[MR][2];
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (Index k = 0; k < K; ++k) {
        const float* wk = w + k * ldw;
        const __m512 w0 = FULL ? _mm512_loadu_ps(wk) : _mm512_maskz_loadu_ps(lo, wk);
        const __m512 w1 = FULL ? _mm512_loadu_ps(wk + 16) : _mm512_maskz_loadu_ps(hi, wk + 16);
        for (int r = 0; r < MR; ++r) {
            const __m512 x = _mm512_set1_ps(src[r * K + k]);
            acc[r][0] = _mm512_fmadd_ps(x, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(x, w1, acc[r][1]);
        }
    }
    if (bias) {
        const __m512 b0 = FULL ? _mm512_loadu_ps(bias) : _mm512_maskz_loadu_ps(lo, bias);
        const __m512 b1 = FULL ? _mm512_loadu_ps(bias + 16) : _mm512_maskz_loadu_ps(hi, bias + 16);
        for (int r = 0; r < MR; ++r) {
            acc[r][0] = _mm512_add_ps(acc[r][0], b0);
            acc[r][1] = _mm512_add_ps(acc[r][1], b1);
        }
    }
    if (relu)
        for (int r = 0; r < MR; ++r) {
            acc[r][0] = _mm512_max_ps(acc[r][0], _mm512_setzero_ps());
            acc[r][1] = _mm512_max_ps(acc[r][1], _mm512_setzero_ps());
        }
    for (int r = 0; r < MR; ++r) {
        if constexpr (FULL) {
            _mm512_storeu_ps(dst + r * M, acc[r][0]);
            _mm512_storeu_ps(dst + r * M + 16, acc[r][1]);
        } else {
            _mm512_mask_storeu_ps(dst + r * M, lo, acc[r][0]);
            _mm512_mask_storeu_ps(dst + r * M + 16, hi, acc[r][1]);
        }
    }
}

template <bool FULL>
MAASFIN_AVX512 void panel32_rows(const float* src, Index K, const float* w, Index ldw, Index M, const float* bias,
                                 float* dst, Index rows, __mmask16 lo, __mmask16 hi, bool relu) {
    Index r = 0;
    for (; r + 8 <= rows; r += 8) panel32<8, FULL>(src + r * K, K, w, ldw, M, bias, dst + r * M, lo, hi, relu);
    const float* s = src + r * K;
    float* d = dst + r * M;
    switch (rows - r) {
        case 7: panel32<7, FULL>(s, K, w, ldw, M, bias, d, lo, hi, relu); break;
        case 6: panel32<6, FULL>(s, K, w, ldw, M, bias, d, lo, hi, relu); break;
        case 5: panel32<5, FULL>(s, K, w, ldw, M, bias, d, lo, hi, relu); break;
        case 4: panel32<4, FULL>(s, K, w, ldw, M, bias, d, lo, hi, relu); break;
        case 3: panel32<3, FULL>(s, K, w, ldw, M, bias, d, lo, hi, relu); break;
        case 2: panel32<2, FULL>(s, K, w, ldw, M, bias, d, lo, hi, relu); break;
        case 1: panel32<1, FULL>(s, K, w, ldw, M, bias, d, lo, hi, relu); break;
        default: break;
    }
}

inline __mmask16 mask16(Index valid) {
    return static_cast<__mmask16>(valid >= 16 ? 0xFFFF : (1u << static_cast<unsigned>(valid)) - 1u);
}

// `packed`: contiguous K x 32 panels (the last one zero-padded), or null to read in place.
MAASFIN_AVX512 void column_scheme512(const float* src, const float* w, const float* packed, const float* bias,
                                     float* dst, Index rows, Index K, Index M, bool relu) {
    Index m = 0;
    for (; m + 32 <= M; m += 32) {
        const float* wp = packed ? packed + m * K : w + m;
        panel32_rows<true>(src, K, wp, packed ? 32 : M, M, bias ? bias + m : nullptr, dst + m, rows, 0xFFFF, 0xFFFF,
                           relu);
    }
    if (m < M) {
        const Index rem = M - m;
        const float* wp = packed ? packed + m * K : w + m;
        panel32_rows<false>(src, K, wp, packed ? 32 : M, M, bias ? bias + m : nullptr, dst + m, rows,
                            mask16(std::min<Index>(rem, 16)), mask16(rem > 16 ? rem - 16 : 0), relu);
    }
}

bool has_avx512() {
    static const bool yes = __builtin_cpu_supports("avx512f");
    return yes;
}

// Sum of the 8 lanes in the twin's order: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
inline float lanes_sum(__m256 v) {
    const __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 b = _mm_add_ps(a, _mm_movehl_ps(a, a));
    return _mm_cvtss_f32(_mm_add_ss(b, _mm_movehdup_ps(b)));
}

// Dot scheme over `rows` rows; wt is M x K (the weights transposed).
void dot_scheme(const float* src, const float* wt, const float* bias, float* dst, Index rows, Index K, Index M) {
    const Index K8 = K - K % 8;
    for (Index r = 0; r < rows; ++r) {
        const float* x = src + r * K;
        for (Index m = 0; m < M; ++m) {
            const float* wm = wt + m * K;
            __m256 acc = _mm256_setzero_ps();
            for (Index k = 0; k < K8; k += 8)
                acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(wm + k), acc);
            float v = lanes_sum(acc);
            for (Index k = K8; k < K; ++k) v = std::fma(x[k], wm[k], v);
            dst[r * M + m] = bias ? v + bias[m] : v;
        }
    }
}
#endif

}  // namespace

void dense_fwd(const float* src, const float* weights, const float* bias, float* dst, Index N, Index K, Index M,
               Activation act) {
    if (N <= 0 || M <= 0) return;
    const Index chunks = (N + kChunkRows - 1) / kChunkRows;
    const int threads = N * K * M >= kParallelMacs ? std::max(1, std::min<int>(num_threads(), chunks)) : 1;
#ifdef MAASFIN_ROWWISE_AVX2
    const bool dot = M < reference::kRowwiseDotMaxOut;
    thread_local FloatVec wt;  // M x K for the dot scheme
    if (dot) {
        wt.resize(static_cast<std::size_t>(M * K));
        for (Index k = 0; k < K; ++k)
            for (Index m = 0; m < M; ++m) wt[static_cast<std::size_t>(m * K + k)] = weights[k * M + m];
    }
    // Packed panels pay off once several row blocks reuse them (the copy is K x M floats).
    thread_local FloatVec packed;
    const bool wide = N >= kPackMinRows && has_avx512();  // single rows: AVX2 (no 512-bit warm-up)
    const bool pack = !dot && N >= kPackMinRows;
    if (pack) {
        const Index P = wide ? 32 : 16;  // panel width
        const Index panels = (M + P - 1) / P;
        packed.resize(static_cast<std::size_t>(panels * P * K));
        float* out = packed.data();
        for (Index m0 = 0; m0 < M; m0 += P) {  // panel by panel, row by row: sequential writes
            const Index width = std::min(P, M - m0);
            for (Index k = 0; k < K; ++k, out += P) {
                std::copy(weights + k * M + m0, weights + k * M + m0 + width, out);
                std::fill(out + width, out + P, 0.f);
            }
        }
    }
    const float* wtp = wt.data();
    const float* pkp = pack ? packed.data() : nullptr;
#endif
    auto run = [&](Index c) {
        const Index r0 = c * kChunkRows, r1 = std::min(N, r0 + kChunkRows);
#ifdef MAASFIN_ROWWISE_AVX2
        const bool relu = !dot && act == Activation::relu;  // fused into the panels' stores
        if (dot)
            dot_scheme(src + r0 * K, wtp, bias, dst + r0 * M, r1 - r0, K, M);
        else if (wide)
            column_scheme512(src + r0 * K, weights, pkp, bias, dst + r0 * M, r1 - r0, K, M, relu);
        else
            column_scheme(src + r0 * K, weights, pkp, bias, dst + r0 * M, r1 - r0, K, M, relu);
#else
        const bool relu = false;
        reference::dense_fwd_rowwise(src + r0 * K, weights, bias, dst + r0 * M, r1 - r0, K, M, Activation::linear);
#endif
        if (act != Activation::linear && !relu) eltwise_fwd(act, dst + r0 * M, dst + r0 * M, r1 - r0, M);
    };
    if (threads == 1) {
        for (Index c = 0; c < chunks; ++c) run(c);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (Index c = 0; c < chunks; ++c) run(c);
}

}  // namespace maasfin::kernels::rowwise
