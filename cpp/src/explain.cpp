#include "maasfin/explain.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

namespace maasfin {

namespace {
// Gauss-Kronrod 7/15 on [-1, 1] (QUADPACK qk15): Kronrod nodes +-kX[i], kX[7] = 0; the Gauss
// nodes are the odd-indexed Kronrod nodes.
constexpr double kX[8] = {0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
                          0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
                          0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
                          0.207784955007898467600689403773245, 0.0};
constexpr double kWK[8] = {0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
                           0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
                           0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
                           0.204432940075298892414161999234649, 0.209482141084727828012999174891714};
constexpr double kWG[4] = {0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
                           0.381830050505118944950369775488975, 0.417959183673469387755102040816327};
constexpr int kPoints = 15;
constexpr int kMaxDepth = 12;

// Point p (0..14) of the rule: its position in [-1, 1], Kronrod weight, Gauss weight (0 if none).
void rule(int p, double& x, double& wk, double& wg) {
    const int i = p < 8 ? p : 14 - p;  // mirror: p = 8..14 are the positive nodes
    x = p < 8 ? -kX[i] : kX[i];
    wk = kWK[i];
    wg = (i % 2 == 1) ? kWG[i / 2] : 0.0;
}

struct Interval {
    Index row;
    double a, b;
    int depth;
};
}  // namespace

void gauss_legendre(Index m, std::vector<double>& nodes, std::vector<double>& weights) {
    if (m < 1) throw InvalidArgument("steps must be >= 1");
    nodes.assign(static_cast<std::size_t>(m), 0.0);
    weights.assign(static_cast<std::size_t>(m), 0.0);
    constexpr double kPi = 3.14159265358979323846;
    // Roots of the Legendre polynomial P_m by Newton's method, mapped from [-1, 1] to [0, 1].
    for (Index i = 0; i < m; ++i) {
        double z = std::cos(kPi * (static_cast<double>(i) + 0.75) / (static_cast<double>(m) + 0.5)), dp = 1.0;
        for (int it = 0; it < 100; ++it) {
            double p0 = 1.0, p1 = z;
            for (Index k = 2; k <= m; ++k) {
                const double pk = ((2.0 * k - 1.0) * z * p1 - (k - 1.0) * p0) / static_cast<double>(k);
                p0 = p1;
                p1 = pk;
            }
            dp = static_cast<double>(m) * (z * p1 - p0) / (z * z - 1.0);
            const double dz = p1 / dp;
            z -= dz;
            if (std::fabs(dz) < 1e-15) break;
        }
        nodes[i] = 0.5 * (1.0 - z);
        weights[i] = 1.0 / ((1.0 - z * z) * dp * dp);
    }
}

namespace {
// The gradients of the explained output at M points of width F (M x F each).
using GradientFn = std::function<void(const float* path, Index M, const float* d_out, float* grads)>;

// Fixed Gauss-Legendre: every row's `steps` path points in batches of at most ~8k rows.
void ig_fixed(const GradientFn& gradients, const float* x, const float* baseline, Index B, Index N, Index F, Index D,
              Index output, Index steps, float* attributions) {
    std::vector<double> t, w;
    gauss_legendre(steps, t, w);
    const Index rows_per_chunk = std::max<Index>(1, 8192 / steps);
    FloatVec path, d_out, grads;
    for (Index start = 0; start < N; start += rows_per_chunk) {
        const Index n = std::min(rows_per_chunk, N - start), M = n * steps;
        path.resize(static_cast<std::size_t>(M * F));
        grads.resize(static_cast<std::size_t>(M * F));
        d_out.assign(static_cast<std::size_t>(M * D), 0.f);
        for (Index i = 0; i < n; ++i) {
            const float* xi = x + (start + i) * F;
            const float* bi = baseline + (B == 1 ? 0 : start + i) * F;
            for (Index k = 0; k < steps; ++k) {
                float* p = path.data() + (i * steps + k) * F;
                for (Index j = 0; j < F; ++j) p[j] = static_cast<float>(bi[j] + t[k] * (double(xi[j]) - bi[j]));
                d_out[(i * steps + k) * D + output] = 1.f;
            }
        }
        gradients(path.data(), M, d_out.data(), grads.data());
        for (Index i = 0; i < n; ++i) {
            const float* xi = x + (start + i) * F;
            const float* bi = baseline + (B == 1 ? 0 : start + i) * F;
            for (Index j = 0; j < F; ++j) {
                double integral = 0.0;
                for (Index k = 0; k < steps; ++k) integral += w[k] * grads[(i * steps + k) * F + j];
                attributions[(start + i) * F + j] = static_cast<float>((double(xi[j]) - bi[j]) * integral);
            }
        }
    }
}

// x: N x F, baseline: B x F, attributions: N x F
void integrated_gradients_impl(const GradientFn& gradients, Index F, Index D, const float* x, const float* baseline,
                               Index B, Index N, Index output, Index steps, double tolerance, float* attributions) {
    if (output < 0 || output >= D)
        throw InvalidArgument("output index " + std::to_string(output) + " is out of range for " + std::to_string(D) +
                              " output(s)");
    if (B != 1 && B != N) throw InvalidArgument("the baseline must have 1 row or one row per input row");
    if (steps < 1) throw InvalidArgument("steps must be >= 1");
    if (!(tolerance >= 0)) throw InvalidArgument("tolerance must be >= 0");
    if (tolerance == 0) {
        ig_fixed(gradients, x, baseline, B, N, F, D, output, steps, attributions);
        return;
    }
    const Index initial = (steps + kPoints - 1) / kPoints;
    std::vector<double> sums(static_cast<std::size_t>(N * F), 0.0);
    std::vector<Interval> pending;
    for (Index i = 0; i < N; ++i)
        for (Index s = 0; s < initial; ++s) pending.push_back({i, double(s) / initial, double(s + 1) / initial, 0});
    auto row_x = [&](Index i) { return x + i * F; };
    auto row_b = [&](Index i) { return baseline + (B == 1 ? 0 : i) * F; };
    // Each round evaluates every pending interval's 15 points in batches of at most ~8k rows.
    const Index per_batch = std::max<Index>(1, 8192 / kPoints);
    FloatVec path, d_out, grads;
    std::vector<double> kron(static_cast<std::size_t>(F)), gauss(static_cast<std::size_t>(F));
    while (!pending.empty()) {
        std::vector<Interval> next;
        for (std::size_t start = 0; start < pending.size(); start += per_batch) {
            const Index n = std::min<Index>(per_batch, static_cast<Index>(pending.size() - start));
            const Index M = n * kPoints;
            path.resize(static_cast<std::size_t>(M * F));
            grads.resize(static_cast<std::size_t>(M * F));
            d_out.assign(static_cast<std::size_t>(M * D), 0.f);
            for (Index k = 0; k < n; ++k) {
                const Interval& iv = pending[start + k];
                const float *xi = row_x(iv.row), *bi = row_b(iv.row);
                for (int p = 0; p < kPoints; ++p) {
                    double u, wk, wg;
                    rule(p, u, wk, wg);
                    const double t = 0.5 * (iv.a + iv.b) + 0.5 * (iv.b - iv.a) * u;
                    float* dst = path.data() + (k * kPoints + p) * F;
                    for (Index j = 0; j < F; ++j) dst[j] = static_cast<float>(bi[j] + t * (double(xi[j]) - bi[j]));
                    d_out[(k * kPoints + p) * D + output] = 1.f;
                }
            }
            gradients(path.data(), M, d_out.data(), grads.data());
            for (Index k = 0; k < n; ++k) {
                const Interval& iv = pending[start + k];
                const double half = 0.5 * (iv.b - iv.a);
                std::fill(kron.begin(), kron.end(), 0.0);
                std::fill(gauss.begin(), gauss.end(), 0.0);
                for (int p = 0; p < kPoints; ++p) {
                    double u, wk, wg;
                    rule(p, u, wk, wg);
                    const float* gp = grads.data() + (k * kPoints + p) * F;
                    for (Index j = 0; j < F; ++j) {
                        kron[j] += wk * gp[j];
                        gauss[j] += wg * gp[j];
                    }
                }
                // The error that matters is that of the attribution sum (completeness).
                const float *xi = row_x(iv.row), *bi = row_b(iv.row);
                double err = 0.0;
                for (Index j = 0; j < F; ++j) err += (double(xi[j]) - bi[j]) * half * (kron[j] - gauss[j]);
                if (std::fabs(err) > tolerance * (iv.b - iv.a) && iv.depth < kMaxDepth) {
                    const double mid = 0.5 * (iv.a + iv.b);
                    next.push_back({iv.row, iv.a, mid, iv.depth + 1});
                    next.push_back({iv.row, mid, iv.b, iv.depth + 1});
                    continue;
                }
                double* acc = sums.data() + iv.row * F;
                for (Index j = 0; j < F; ++j) acc[j] += half * kron[j];
            }
        }
        pending.swap(next);
    }
    for (Index i = 0; i < N; ++i) {
        const float *xi = row_x(i), *bi = row_b(i);
        for (Index j = 0; j < F; ++j)
            attributions[i * F + j] = static_cast<float>((double(xi[j]) - bi[j]) * sums[i * F + j]);
    }
}
}  // namespace

void integrated_gradients(const Graph& g, const float* x, const float* baseline, Index B, Index N, Index output,
                          Index steps, double tolerance, float* attributions) {
    if (g.num_inputs() != 1) throw InvalidArgument("integrated gradients need a model with one input");
    const GradientFn gradients = [&g](const float* path, Index M, const float* d_out, float* grads) {
        g.input_gradients({path}, M, d_out, {grads});
    };
    integrated_gradients_impl(gradients, numel(g.input_shape(0)), numel(g.output_shape()), x, baseline, B, N, output,
                              steps, tolerance, attributions);
}

Index frontier_width(const Graph& g) {
    Index F = 0;
    for (int id : g.frontier()) F += numel(g.node_shape(id));
    return F;
}

void encode(const Graph& g, const std::vector<const float*>& x, Index N, float* z) {
    const std::vector<int>& fr = g.frontier();
    const Index F = frontier_width(g);
    std::vector<FloatVec> parts(fr.size());
    std::vector<float*> dst;
    for (std::size_t k = 0; k < fr.size(); ++k) {
        parts[k].resize(static_cast<std::size_t>(N * numel(g.node_shape(fr[k]))));
        dst.push_back(parts[k].data());
    }
    g.frontier_values(x, N, dst);
    // Interleave: row i is the concatenation of every frontier node's row i.
    Index offset = 0;
    for (std::size_t k = 0; k < fr.size(); ++k) {
        const Index w = numel(g.node_shape(fr[k]));
        for (Index i = 0; i < N; ++i)
            std::copy(parts[k].data() + i * w, parts[k].data() + (i + 1) * w, z + i * F + offset);
        offset += w;
    }
}

void integrated_gradients_encoded(const Graph& g, const float* z, const float* baseline, Index B, Index N, Index output,
                                  Index steps, double tolerance, float* attributions) {
    const std::vector<int>& fr = g.frontier();
    std::vector<Index> widths, offsets;
    Index F = 0;
    for (int id : fr) {
        offsets.push_back(F);
        widths.push_back(numel(g.node_shape(id)));
        F += widths.back();
    }
    // Split the concatenated path rows into one block per frontier node, and join the gradients.
    const GradientFn gradients = [&](const float* path, Index M, const float* d_out, float* grads) {
        if (fr.size() == 1) {
            g.frontier_gradients({path}, M, d_out, {grads});
            return;
        }
        std::vector<FloatVec> zin(fr.size()), dz(fr.size());
        std::vector<const float*> zp;
        std::vector<float*> dp;
        for (std::size_t k = 0; k < fr.size(); ++k) {
            const Index w = widths[k];
            zin[k].resize(static_cast<std::size_t>(M * w));
            dz[k].resize(static_cast<std::size_t>(M * w));
            for (Index i = 0; i < M; ++i)
                std::copy(path + i * F + offsets[k], path + i * F + offsets[k] + w, zin[k].data() + i * w);
            zp.push_back(zin[k].data());
            dp.push_back(dz[k].data());
        }
        g.frontier_gradients(zp, M, d_out, dp);
        for (std::size_t k = 0; k < fr.size(); ++k)
            for (Index i = 0; i < M; ++i)
                std::copy(dz[k].data() + i * widths[k], dz[k].data() + (i + 1) * widths[k], grads + i * F + offsets[k]);
    };
    integrated_gradients_impl(gradients, F, numel(g.output_shape()), z, baseline, B, N, output, steps, tolerance,
                              attributions);
}

}  // namespace maasfin
