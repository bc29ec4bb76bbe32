#include "maasfin/layers/hashed_crossing.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace maasfin {

namespace {
constexpr std::uint64_t kDefaultHashKey = 0xDECAFCAFFEULL;  // tf.sparse.cross_hashed's default
}

std::int64_t hashed_cross_bin(const std::int64_t* values, std::size_t n, std::int64_t num_bins) {
    std::uint64_t h = kDefaultHashKey;
    for (std::size_t i = 0; i < n; ++i) h = fingerprint_cat64(h, static_cast<std::uint64_t>(values[i]));
    return static_cast<std::int64_t>(h % static_cast<std::uint64_t>(num_bins));
}

HashedCrossing::HashedCrossing(Index num_bins, OutputMode mode) : num_bins_(num_bins) {
    if (num_bins < 1) throw InvalidArgument("HashedCrossing: num_bins must be >= 1");
    if (mode != OutputMode::int_index && mode != OutputMode::one_hot)
        throw InvalidArgument("HashedCrossing: output_mode must be 'int' or 'one_hot'");
    enc_.mode = mode;
    enc_.depth = num_bins;
}

Shape HashedCrossing::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    const std::string who = "HashedCrossing '" + name_ + "'";
    if (inputs.size() < 2)
        throw InvalidArgument(who + " crosses 2 or more inputs, got " + std::to_string(inputs.size()));
    for (std::size_t i = 0; i < inputs.size(); ++i)
        if (numel(inputs[i]) != 1)
            throw InvalidArgument(who + ": input " + std::to_string(i) + " has shape " + shape_str(inputs[i]) +
                                  "; each input must hold one value per sample, shape (1,)");
    n_inputs_ = inputs.size();
    return enc_.build(Shape{1}, who);
}

void HashedCrossing::forward(const ForwardArgs& a) const {
    const Index N = a.N, W = enc_.width();
    std::vector<std::int64_t> vals(n_inputs_);
    for (Index n = 0; n < N; ++n) {
        for (std::size_t i = 0; i < n_inputs_; ++i) {
            const float v = a.x[i][n];
            if (!(v == std::floor(v)) || std::fabs(v) >= 9.2e18f)
                throw InvalidArgument("HashedCrossing '" + name_ + "': input " + std::to_string(i) + " row " +
                                      std::to_string(n) + " holds " +
                                      (std::isnan(v) ? std::string("a missing value (NaN)") : std::to_string(v)) +
                                      ", not an integer; cross integer category indices (e.g. a lookup's "
                                      "output_mode=\"int\")");
            vals[i] = static_cast<std::int64_t>(v);
        }
        const Index idx = hashed_cross_bin(vals.data(), vals.size(), num_bins_);
        enc_.encode(&idx, a.y + n * W);
    }
}

void HashedCrossing::backward(const BackwardArgs& a) const {
    for (std::size_t i = 0; i < a.dx.size(); ++i)
        if (a.dx[i]) std::fill(a.dx[i], a.dx[i] + a.N, 0.f);
}

}  // namespace maasfin
