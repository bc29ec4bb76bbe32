#include "maasfin/layers/integer_lookup.hpp"

#include <algorithm>
#include <cmath>

#include "maasfin/string_table.hpp"

namespace maasfin {

IntegerLookup::IntegerLookup(std::vector<std::int64_t> vocabulary, Index num_oov_indices,
                             std::optional<std::int64_t> mask_token, OutputMode mode)
    : num_oov_(num_oov_indices), mask_(mask_token) {
    if (num_oov_ < 0) throw InvalidArgument("IntegerLookup: num_oov_indices must be >= 0");
    const bool slot = mode == OutputMode::int_index && mask_.has_value();
    mask_index_ = slot ? 0 : kDropped;
    oov_start_ = slot ? 1 : 0;
    token_start_ = oov_start_ + num_oov_;
    for (std::size_t i = 0; i < vocabulary.size(); ++i) {
        if (mask_ && vocabulary[i] == *mask_)
            throw InvalidArgument("IntegerLookup: the vocabulary holds the mask token " + std::to_string(*mask_));
        if (!index_.emplace(vocabulary[i], token_start_ + static_cast<Index>(i)).second)
            throw InvalidArgument("IntegerLookup: the vocabulary repeats the token " + std::to_string(vocabulary[i]));
    }
    enc_.mode = mode;
    enc_.depth = vocabulary_size();
}

// in: (K) -> out: see IndexEncoder with depth = vocabulary size
Shape IntegerLookup::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    if (inputs.size() != 1) throw InvalidArgument("IntegerLookup '" + name_ + "' takes one input");
    return enc_.build(inputs[0], "IntegerLookup '" + name_ + "'");
}

Index IntegerLookup::lookup(float v, Index row) const {
    const bool missing = std::isnan(v);
    if (!missing) {
        const bool integral = v == std::floor(v) && std::fabs(v) < 9.2e18f;
        const std::int64_t t = integral ? static_cast<std::int64_t>(v) : 0;
        if (integral && mask_ && t == *mask_) return mask_index_;
        if (integral) {
            auto it = index_.find(t);
            if (it != index_.end()) return it->second;
        }
        if (num_oov_ == 1) return oov_start_;
        if (num_oov_ > 1) return oov_start_ + (integral ? ((t % num_oov_) + num_oov_) % num_oov_ : 0);
    } else {
        if (mask_) return mask_index_;
        if (num_oov_ > 0) return oov_start_;
    }
    throw InvalidArgument("IntegerLookup '" + name_ + "': row " + std::to_string(row) + " holds " +
                          (missing ? std::string("a missing value") : std::to_string(v)) +
                          ", which has no index (num_oov_indices=0)");
}

void IntegerLookup::forward(const ForwardArgs& a) const {
    const Index N = a.N, K = enc_.K, W = enc_.width();
    std::vector<Index> idx(static_cast<std::size_t>(K));
    for (Index n = 0; n < N; ++n) {
        for (Index k = 0; k < K; ++k) idx[k] = lookup(a.x[0][n * K + k], n);
        enc_.encode(idx.data(), a.y + n * W);
    }
}

void IntegerLookup::backward(const BackwardArgs& a) const {
    if (a.dx[0]) std::fill(a.dx[0], a.dx[0] + a.N * enc_.K, 0.f);
}

}  // namespace maasfin
