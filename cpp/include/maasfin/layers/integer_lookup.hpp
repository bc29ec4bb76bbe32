// IntegerLookup (Keras): integer tokens -> indices in Keras's IndexLookup layout (see
// string_table.hpp), then the shared index encoder. The vocabulary is structure (it fixes the
// output width), so it lives in the layer and the Python config, not in the arena.
// A NaN input is a missing value: the mask index when mask_token is set, else the first OOV bucket.
// A non-integer value is out of vocabulary. OOV bucket for several buckets: floormod(token, num_oov).
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>

#include "maasfin/layers/category_encoding.hpp"

namespace maasfin {

class IntegerLookup : public Layer {
public:
    IntegerLookup(std::vector<std::int64_t> vocabulary, Index num_oov_indices, std::optional<std::int64_t> mask_token,
                  OutputMode mode);
    std::string kind() const override { return "IntegerLookup"; }
    bool differentiable() const override { return false; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    Index vocabulary_size() const { return token_start_ + static_cast<Index>(index_.size()); }

private:
    Index lookup(float v, Index row) const;
    std::unordered_map<std::int64_t, Index> index_;
    Index num_oov_;
    std::optional<std::int64_t> mask_;
    Index mask_index_ = -1, oov_start_ = 0, token_start_ = 0;
    IndexEncoder enc_;
};

}  // namespace maasfin
