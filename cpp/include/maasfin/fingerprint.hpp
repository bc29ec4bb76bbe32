// FarmHash Fingerprint64 (farmhashna::Hash64, Geoff Pike, Google, MIT licence): the string hash
// TensorFlow's `to_hash_bucket_fast` uses, so Keras's Hashing layer and the OOV buckets of
// StringLookup. A stable function of the bytes: the same on every platform and in every release.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace maasfin {

std::uint64_t fingerprint64(const char* s, std::size_t len);
inline std::uint64_t fingerprint64(std::string_view s) { return fingerprint64(s.data(), s.size()); }

// Keras Hashing: bin of a token among num_bins, with bin 0 reserved for the mask when `masked`.
inline std::int64_t hash_bin(std::string_view s, std::int64_t num_bins, bool masked) {
    const std::uint64_t h = fingerprint64(s);
    return masked ? 1 + static_cast<std::int64_t>(h % static_cast<std::uint64_t>(num_bins - 1))
                  : static_cast<std::int64_t>(h % static_cast<std::uint64_t>(num_bins));
}

}  // namespace maasfin
