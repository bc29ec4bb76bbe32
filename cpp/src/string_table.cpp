#include "maasfin/string_table.hpp"

#include <algorithm>
#include <utility>

#include "maasfin/fingerprint.hpp"

namespace maasfin {

StringTable::StringTable(std::vector<std::string> vocabulary, Index num_oov_indices,
                         std::optional<std::string> mask_token, bool mask_slot, std::string who)
    : vocabulary_(std::move(vocabulary)), num_oov_(num_oov_indices), mask_(std::move(mask_token)),
      who_(std::move(who)) {
    if (num_oov_ < 0) throw InvalidArgument(who_ + ": num_oov_indices must be >= 0");
    const bool slot = mask_slot && mask_.has_value();
    mask_index_ = slot ? 0 : kDropped;
    oov_start_ = slot ? 1 : 0;
    token_start_ = oov_start_ + num_oov_;
    index_.reserve(vocabulary_.size());
    for (std::size_t i = 0; i < vocabulary_.size(); ++i) {
        if (mask_ && vocabulary_[i] == *mask_)
            throw InvalidArgument(who_ + ": the vocabulary holds the mask token '" + *mask_ + "' at position " +
                                  std::to_string(i) + "; the mask token gets its own index");
        if (!index_.emplace(vocabulary_[i], token_start_ + static_cast<Index>(i)).second)
            throw InvalidArgument(who_ + ": the vocabulary repeats the token '" + vocabulary_[i] + "'");
    }
}

Index StringTable::lookup(std::string_view token) const {
    if (mask_ && token == *mask_) return mask_index_;
    auto it = index_.find(std::string(token));
    if (it != index_.end()) return it->second;
    if (num_oov_ == 0)
        throw InvalidArgument(who_ + ": '" + std::string(token) +
                              "' is not in the vocabulary and num_oov_indices=0 leaves no index for it");
    if (num_oov_ == 1) return oov_start_;
    return oov_start_ + static_cast<Index>(fingerprint64(token) % static_cast<std::uint64_t>(num_oov_));
}

Index StringTable::missing() const {
    if (mask_) return mask_index_;
    if (num_oov_ == 0)
        throw InvalidArgument(who_ +
                              ": a missing value (None/NaN) has no index: set a mask_token or num_oov_indices > 0");
    return oov_start_;
}

void TokenCounter::add(std::string_view token) {
    auto it = counts_.find(std::string(token));
    if (it == counts_.end())
        counts_.emplace(std::string(token), 1);
    else
        ++it->second;
}

std::vector<std::string> TokenCounter::vocabulary(Index max_tokens, const std::vector<std::string>& exclude) const {
    std::vector<std::pair<std::int64_t, const std::string*>> items;
    items.reserve(counts_.size());
    for (const auto& [token, count] : counts_)
        if (std::find(exclude.begin(), exclude.end(), token) == exclude.end()) items.emplace_back(count, &token);
    // std::string compares bytes as unsigned char, as NumPy compares bytes objects.
    std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : *a.second > *b.second;
    });
    if (max_tokens >= 0 && static_cast<Index>(items.size()) > max_tokens)
        items.resize(static_cast<std::size_t>(max_tokens));
    std::vector<std::string> out;
    out.reserve(items.size());
    for (const auto& it : items) out.push_back(*it.second);
    return out;
}

}  // namespace maasfin
