#include "maasfin/layers/hashing.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "maasfin/fingerprint.hpp"

namespace maasfin {

Hashing::Hashing(Index num_bins, std::optional<std::int64_t> mask_value, OutputMode mode)
    : num_bins_(num_bins), mask_(mask_value) {
    if (num_bins < (mask_value ? 2 : 1))
        throw InvalidArgument("Hashing: num_bins must be >= 1 (>= 2 with a mask_value)");
    enc_.mode = mode;
    enc_.depth = num_bins;
}

Shape Hashing::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    if (inputs.size() != 1) throw InvalidArgument("Hashing '" + name_ + "' takes one input");
    return enc_.build(inputs[0], "Hashing '" + name_ + "'");
}

Index Hashing::bin(float v, Index row) const {
    if (std::isnan(v) && mask_) return 0;
    if (!(v == std::floor(v)) || std::fabs(v) >= 9.2e18f)
        throw InvalidArgument("Hashing '" + name_ + "': row " + std::to_string(row) + " holds " +
                              (std::isnan(v) ? std::string("a missing value (set mask_value to accept it)")
                                             : std::to_string(v) + ", not an integer"));
    const std::int64_t t = static_cast<std::int64_t>(v);
    if (mask_ && t == *mask_) return 0;
    return hash_bin(std::to_string(t), num_bins_, mask_.has_value());
}

void Hashing::forward(const ForwardArgs& a) const {
    const Index N = a.N, K = enc_.K, W = enc_.width();
    std::vector<Index> idx(static_cast<std::size_t>(K));
    for (Index n = 0; n < N; ++n) {
        for (Index k = 0; k < K; ++k) idx[k] = bin(a.x[0][n * K + k], n);
        enc_.encode(idx.data(), a.y + n * W);
    }
}

void Hashing::backward(const BackwardArgs& a) const {
    if (a.dx[0]) std::fill(a.dx[0], a.dx[0] + a.N * enc_.K, 0.f);
}

}  // namespace maasfin
