#include "maasfin/explain.hpp"

#include <algorithm>
#include <cmath>

namespace maasfin {

void gauss_legendre(Index m, std::vector<double>& nodes, std::vector<double>& weights) {
    if (m < 1) throw InvalidArgument("steps must be >= 1");
    nodes.assign(m, 0.0);
    weights.assign(m, 0.0);
    constexpr double kPi = 3.14159265358979323846;
    // Roots of the Legendre polynomial P_m by Newton's method from Tricomi's initial guesses,
    // then mapped from [-1, 1] to [0, 1].
    for (Index i = 0; i < m; ++i) {
        double z = std::cos(kPi * (static_cast<double>(i) + 0.75) / (static_cast<double>(m) + 0.5));
        double dp = 1.0;
        for (int it = 0; it < 100; ++it) {
            double p0 = 1.0, p1 = z;
            for (Index k = 2; k <= m; ++k) {
                const double pk = ((2.0 * k - 1.0) * z * p1 - (k - 1.0) * p0) / static_cast<double>(k);
                p0 = p1;
                p1 = pk;
            }
            if (m == 1) p1 = z, p0 = 1.0;
            dp = static_cast<double>(m) * (z * p1 - p0) / (z * z - 1.0);
            const double dz = p1 / dp;
            z -= dz;
            if (std::fabs(dz) < 1e-15) break;
        }
        nodes[i] = 0.5 * (1.0 - z);
        weights[i] = 1.0 / ((1.0 - z * z) * dp * dp);  // 2/((1-z^2) P'^2) scaled by 1/2 for [0, 1]
    }
}

// x: N x F, baseline: B x F, attributions: N x F
void integrated_gradients(const Graph& g, const float* x, const float* baseline, Index B, Index N, Index output,
                          Index steps, float* attributions) {
    if (g.num_inputs() != 1) throw InvalidArgument("integrated gradients need a model with one input");
    const Index F = numel(g.input_shape(0)), D = numel(g.output_shape());
    if (output < 0 || output >= D)
        throw InvalidArgument("output index " + std::to_string(output) + " is out of range for " + std::to_string(D) +
                              " output(s)");
    if (B != 1 && B != N) throw InvalidArgument("the baseline must have 1 row or one row per input row");
    std::vector<double> t, w;
    gauss_legendre(steps, t, w);
    // Rows of the path batch: (row i, step k) -> b_i + t_k (x_i - b_i).
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
        g.input_gradients({path.data()}, M, d_out.data(), {grads.data()});
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

}  // namespace maasfin
