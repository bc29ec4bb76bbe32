// String vocabularies at the data boundary: StringTable maps tokens to the indices of Keras's
// IndexLookup layout, TokenCounter learns a vocabulary from data (adapt).
//
// Index layout (Keras): [mask token, only in output_mode "int" and only if a mask token is set]
// [num_oov_indices OOV buckets] [vocabulary]. In the other output modes the mask token has no
// index: it (and a missing value, when a mask token is set) maps to kDropped, which encoders turn
// into an all-zero row. A token not in the vocabulary goes to the OOV bucket
// fingerprint64(token) % num_oov_indices (the first one when there is one bucket); a missing value
// (None/NaN) goes to the mask when there is one, else to the first OOV bucket.
//
// Threading: a StringTable is immutable after construction; any number of threads may look up.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "maasfin/common.hpp"

namespace maasfin {

constexpr Index kDropped = -1;

class StringTable {
public:
    // `mask_slot`: the layout has an index for the mask token (output_mode "int").
    // Throws InvalidArgument on repeated tokens or a vocabulary holding the mask token.
    StringTable(std::vector<std::string> vocabulary, Index num_oov_indices, std::optional<std::string> mask_token,
                bool mask_slot, std::string who);
    // Index of a present token; throws InvalidArgument for an unknown token when num_oov_indices is 0.
    Index lookup(std::string_view token) const;
    // Index of a missing value (None / NaN).
    Index missing() const;
    // Number of indices: mask slot + OOV buckets + vocabulary.
    Index size() const { return token_start_ + static_cast<Index>(vocabulary_.size()); }
    Index token_start() const { return token_start_; }
    const std::vector<std::string>& vocabulary() const { return vocabulary_; }
    const std::string& who() const { return who_; }

private:
    std::vector<std::string> vocabulary_;
    std::unordered_map<std::string, Index> index_;
    Index num_oov_;
    std::optional<std::string> mask_;
    Index mask_index_ = kDropped;
    Index oov_start_ = 0, token_start_ = 0;
    std::string who_;  // "StringLookup 'home'", for messages
};

// Counts tokens for adapt. Vocabulary order is Keras's: decreasing count, ties broken by the
// token in decreasing byte order (Keras: np.lexsort((tokens, counts))[::-1]).
class TokenCounter {
public:
    void add(std::string_view token);
    // The `max_tokens` most frequent tokens (all when max_tokens < 0), excluding `exclude`.
    std::vector<std::string> vocabulary(Index max_tokens, const std::vector<std::string>& exclude) const;
    Index distinct() const { return static_cast<Index>(counts_.size()); }

private:
    std::unordered_map<std::string, std::int64_t> counts_;
};

}  // namespace maasfin
