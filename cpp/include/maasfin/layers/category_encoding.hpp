// CategoryEncoding, and the index encoder every categorical layer shares (Discretization,
// IntegerLookup, StringLookup, Hashing): K category indices per sample -> Keras's output modes.
//   "int"       (K)                         the indices themselves (as floats)
//   "one_hot"   (depth) if K == 1, else (K, depth)
//   "multi_hot" (depth)                     1 where any of the K indices points
//   "count"     (depth)                     how many of the K indices point there
// An index of kDropped (a mask token outside "int" mode) contributes nothing.
#pragma once

#include <string>
#include <vector>

#include "maasfin/layer.hpp"

namespace maasfin {

enum class OutputMode { int_index, one_hot, multi_hot, count };
OutputMode parse_output_mode(const std::string& mode, const std::string& who);
const char* output_mode_name(OutputMode mode);

struct IndexEncoder {
    OutputMode mode = OutputMode::int_index;
    Index depth = 0;  // number of categories
    Index K = 0;      // indices per sample

    // Sets K from the input shape (rank 1 per sample) and returns the output shape.
    Shape build(const Shape& input, const std::string& who);
    Index width() const;  // floats per output sample
    // idx: K indices of one sample (each in [0, depth) or kDropped); y: width() floats.
    void encode(const Index* idx, float* y) const;
};

// Index of a category given as a float: must be an integer in [0, depth) (or -1 when
// `allow_dropped`). Throws InvalidArgument naming the layer, row and value.
Index category_index(float v, Index depth, bool allow_dropped, const std::string& who, Index row);

class CategoryEncoding : public Layer {
public:
    // `allow_dropped`: -1 is a dropped token (used when a lookup ran at the data boundary).
    CategoryEncoding(Index num_tokens, OutputMode mode, bool allow_dropped);
    std::string kind() const override { return "CategoryEncoding"; }
    bool differentiable() const override { return false; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    IndexEncoder enc_;
    bool allow_dropped_;
};

}  // namespace maasfin
