// Counter-based random numbers: every draw is a pure function of (seed, stream, index), so results
// never depend on thread count, batch order of execution, or how many draws happened before.
#pragma once

#include <cmath>
#include <cstdint>

namespace maasfin::rng {

inline std::uint64_t mix(std::uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

inline std::uint64_t hash(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
    return mix(mix(seed ^ mix(stream)) + index);
}

// Uniform in [0, 1) with 24 random bits (exactly representable in float32).
inline float uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
    return static_cast<float>(hash(seed, stream, index) >> 40) * (1.0f / 16777216.0f);
}

// Standard normal by Box-Muller on two independent 53-bit uniforms.
inline double normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
    const std::uint64_t h1 = hash(seed, stream, 2 * index);
    const std::uint64_t h2 = hash(seed, stream, 2 * index + 1);
    const double u1 = (static_cast<double>(h1 >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    const double u2 = static_cast<double>(h2 >> 11) * (1.0 / 9007199254740992.0);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace maasfin::rng
