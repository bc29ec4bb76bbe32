// Hashing (Keras) of numeric inputs inside the graph: an integer value is hashed as its decimal
// string (Keras casts integers with as_string), with FarmHash Fingerprint64 (fingerprint.hpp):
// bin = fp % num_bins, or with a mask value: the mask -> 0, others -> 1 + fp % (num_bins - 1).
// A NaN is the mask when mask_value is set, else an error. String inputs are hashed at the data
// boundary instead (same function), and their layer in the graph is a CategoryEncoding.
#pragma once

#include <cstdint>
#include <optional>

#include "maasfin/layers/category_encoding.hpp"

namespace maasfin {

class Hashing : public Layer {
public:
    Hashing(Index num_bins, std::optional<std::int64_t> mask_value, OutputMode mode);
    std::string kind() const override { return "Hashing"; }
    bool differentiable() const override { return false; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    Index bin(float v, Index row) const;
    Index num_bins_;
    std::optional<std::int64_t> mask_;
    IndexEncoder enc_;
};

}  // namespace maasfin
