#include "maasfin/layers/category_encoding.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "maasfin/string_table.hpp"

namespace maasfin {

OutputMode parse_output_mode(const std::string& mode, const std::string& who) {
    if (mode == "int") return OutputMode::int_index;
    if (mode == "one_hot") return OutputMode::one_hot;
    if (mode == "multi_hot") return OutputMode::multi_hot;
    if (mode == "count") return OutputMode::count;
    throw InvalidArgument(who + ": unknown output_mode '" + mode + "'; valid: 'int', 'one_hot', 'multi_hot', 'count'");
}

const char* output_mode_name(OutputMode mode) {
    switch (mode) {
        case OutputMode::int_index: return "int";
        case OutputMode::one_hot: return "one_hot";
        case OutputMode::multi_hot: return "multi_hot";
        case OutputMode::count: return "count";
    }
    return "int";
}

Shape IndexEncoder::build(const Shape& input, const std::string& who) {
    if (input.size() != 1)
        throw InvalidArgument(who + " expects inputs of shape (batch, k), got per-sample shape " + shape_str(input));
    if (depth <= 0) throw InvalidArgument(who + ": the number of categories must be positive");
    K = input[0];
    switch (mode) {
        case OutputMode::int_index: return {K};
        case OutputMode::one_hot: return K == 1 ? Shape{depth} : Shape{K, depth};
        default: return {depth};
    }
}

Index IndexEncoder::width() const {
    switch (mode) {
        case OutputMode::int_index: return K;
        case OutputMode::one_hot: return K * depth;
        default: return depth;
    }
}

// idx: K, y: width()
void IndexEncoder::encode(const Index* idx, float* y) const {
    if (mode == OutputMode::int_index) {
        for (Index k = 0; k < K; ++k) y[k] = static_cast<float>(idx[k]);
        return;
    }
    std::fill(y, y + width(), 0.f);
    for (Index k = 0; k < K; ++k) {
        if (idx[k] == kDropped) continue;
        if (mode == OutputMode::one_hot)
            y[k * depth + idx[k]] = 1.f;
        else if (mode == OutputMode::multi_hot)
            y[idx[k]] = 1.f;
        else
            y[idx[k]] += 1.f;
    }
}

Index category_index(float v, Index depth, bool allow_dropped, const std::string& who, Index row) {
    if (allow_dropped && v == -1.f) return kDropped;
    if (!(v >= 0.f && v < static_cast<float>(depth)) || v != std::floor(v)) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
        throw InvalidArgument(who + ": row " + std::to_string(row) + " holds " + buf +
                              ", not a category index in [0, " + std::to_string(depth) + ")");
    }
    return static_cast<Index>(v);
}

CategoryEncoding::CategoryEncoding(Index num_tokens, OutputMode mode, bool allow_dropped)
    : allow_dropped_(allow_dropped) {
    if (num_tokens <= 0) throw InvalidArgument("CategoryEncoding: num_tokens must be a positive integer");
    enc_.depth = num_tokens;
    enc_.mode = mode;
}

// in: (K) -> out: see IndexEncoder
Shape CategoryEncoding::build(const std::vector<Shape>& inputs, ParamAllocator&) {
    if (inputs.size() != 1) throw InvalidArgument("CategoryEncoding '" + name_ + "' takes one input");
    return enc_.build(inputs[0], "CategoryEncoding '" + name_ + "'");
}

void CategoryEncoding::forward(const ForwardArgs& a) const {
    const Index N = a.N, K = enc_.K, W = enc_.width();
    const std::string who = "CategoryEncoding '" + name_ + "'";
    std::vector<Index> idx(static_cast<std::size_t>(K));
    for (Index n = 0; n < N; ++n) {
        for (Index k = 0; k < K; ++k) idx[k] = category_index(a.x[0][n * K + k], enc_.depth, allow_dropped_, who, n);
        enc_.encode(idx.data(), a.y + n * W);
    }
}

// Category indices are not differentiable: their gradient is zero.
void CategoryEncoding::backward(const BackwardArgs& a) const {
    if (a.dx[0]) std::fill(a.dx[0], a.dx[0] + a.N * enc_.K, 0.f);
}

}  // namespace maasfin
