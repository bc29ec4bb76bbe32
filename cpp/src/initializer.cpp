#include "maasfin/initializer.hpp"

#include <algorithm>
#include <cmath>
#include <vector>
#include <utility>

#include "maasfin/layer.hpp"
#include "maasfin/rng.hpp"

namespace maasfin {

namespace {
const std::pair<const char*, Initializer> kNames[] = {
    {"zeros", Initializer::zeros},
    {"ones", Initializer::ones},
    {"glorot_uniform", Initializer::glorot_uniform},
    {"glorot_normal", Initializer::glorot_normal},
    {"he_uniform", Initializer::he_uniform},
    {"he_normal", Initializer::he_normal},
    {"lecun_uniform", Initializer::lecun_uniform},
    {"lecun_normal", Initializer::lecun_normal},
    {"random_uniform", Initializer::random_uniform},
    {"random_normal", Initializer::random_normal},
    {"orthogonal", Initializer::orthogonal},
};
// Keras divides the standard deviation by this so that a normal truncated at 2 sigma keeps the variance.
constexpr double kTruncatedStd = 0.87962566103423978;
}  // namespace

Initializer parse_initializer(const std::string& name) {
    for (const auto& [n, v] : kNames)
        if (name == n) return v;
    std::string valid;
    for (const auto& [n, _] : kNames) valid += (valid.empty() ? "" : ", ") + std::string(n);
    throw InvalidArgument("unknown initializer '" + name + "'; valid names: " + valid);
}

namespace {
// Keras's Orthogonal(gain=1): the Q factor of a normal (max(r, c) x min(r, c)) matrix, with
// columns signed so that R has a positive diagonal (modified Gram-Schmidt gives exactly that Q),
// transposed when the target has more columns than rows.
void orthogonal(float* data, Index rows, Index cols, std::uint64_t seed) {
    const Index m = std::max(rows, cols), k = std::min(rows, cols);
    std::vector<double> a(static_cast<std::size_t>(m * k));
    for (Index i = 0; i < m * k; ++i) a[static_cast<std::size_t>(i)] = rng::normal(seed, 5, i);
    auto at = [&](Index r, Index c) -> double& { return a[static_cast<std::size_t>(r * k + c)]; };
    for (Index j = 0; j < k; ++j) {
        for (Index p = 0; p < j; ++p) {
            double dot = 0;
            for (Index r = 0; r < m; ++r) dot += at(r, p) * at(r, j);
            for (Index r = 0; r < m; ++r) at(r, j) -= dot * at(r, p);
        }
        double norm = 0;
        for (Index r = 0; r < m; ++r) norm += at(r, j) * at(r, j);
        norm = std::sqrt(norm);
        for (Index r = 0; r < m; ++r) at(r, j) = norm > 0 ? at(r, j) / norm : 0.0;
    }
    for (Index r = 0; r < rows; ++r)
        for (Index c = 0; c < cols; ++c) data[r * cols + c] = static_cast<float>(rows >= cols ? at(r, c) : at(c, r));
}
}  // namespace

const char* initializer_name(Initializer init) {
    for (const auto& [n, v] : kNames)
        if (v == init) return n;
    return "zeros";
}

void initialize(Initializer init, float* data, const Shape& shape, std::uint64_t seed) {
    const Index n = numel(shape);
    double fan_in = 1, fan_out = 1;
    if (shape.size() == 1) {
        fan_in = fan_out = static_cast<double>(shape[0]);
    } else if (shape.size() >= 2) {
        double receptive = 1;
        for (std::size_t i = 0; i + 2 < shape.size(); ++i) receptive *= static_cast<double>(shape[i]);
        fan_in = receptive * static_cast<double>(shape[shape.size() - 2]);
        fan_out = receptive * static_cast<double>(shape.back());
    }
    double scale = 1.0, fan = fan_in;
    bool uniform = true;
    switch (init) {
        case Initializer::zeros:
            for (Index i = 0; i < n; ++i) data[i] = 0.f;
            return;
        case Initializer::ones:
            for (Index i = 0; i < n; ++i) data[i] = 1.f;
            return;
        case Initializer::random_uniform:  // Keras: U(-0.05, 0.05)
            for (Index i = 0; i < n; ++i) data[i] = -0.05f + 0.1f * rng::uniform(seed, 1, i);
            return;
        case Initializer::orthogonal:
            if (shape.size() < 2) throw InvalidArgument("the orthogonal initializer needs a weight of rank >= 2");
            orthogonal(data, n / shape.back(), shape.back(), seed);
            return;
        case Initializer::unit_forget_bias:
            for (Index i = 0; i < n; ++i) data[i] = (i >= n / 4 && i < n / 2) ? 1.f : 0.f;
            return;
        case Initializer::random_normal:  // Keras: N(0, 0.05)
            for (Index i = 0; i < n; ++i) data[i] = static_cast<float>(0.05 * rng::normal(seed, 2, i));
            return;
        case Initializer::glorot_uniform: fan = 0.5 * (fan_in + fan_out); break;
        case Initializer::glorot_normal:
            fan = 0.5 * (fan_in + fan_out);
            uniform = false;
            break;
        case Initializer::he_uniform: scale = 2.0; break;
        case Initializer::he_normal:
            scale = 2.0;
            uniform = false;
            break;
        case Initializer::lecun_uniform: break;
        case Initializer::lecun_normal: uniform = false; break;
    }
    if (uniform) {
        const double limit = std::sqrt(3.0 * scale / fan);
        for (Index i = 0; i < n; ++i) data[i] = static_cast<float>(limit * (2.0 * rng::uniform(seed, 3, i) - 1.0));
        return;
    }
    const double stddev = std::sqrt(scale / fan) / kTruncatedStd;
    for (Index i = 0; i < n; ++i) {
        // Truncated at two standard deviations by redrawing, each redraw on its own counter.
        double z = rng::normal(seed, 4, i);
        for (std::uint64_t k = 1; std::fabs(z) > 2.0; ++k) z = rng::normal(seed, 4 + k, i);
        data[i] = static_cast<float>(stddev * z);
    }
}

Index ParamAllocator::add(const std::string& name, const Shape& shape, Initializer init, bool trainable) {
    const Index offset = (size_ + 15) / 16 * 16;  // 64-byte aligned start
    specs_.push_back({name, shape, init, offset, trainable});
    size_ = offset + numel(shape);
    return offset;
}

}  // namespace maasfin
