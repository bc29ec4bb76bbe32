// Weight initializers with Keras's names and variance-scaling formulas.
#pragma once

#include <cstdint>
#include <string>

#include "maasfin/common.hpp"

namespace maasfin {

enum class Initializer {
    zeros,
    ones,
    glorot_uniform,
    glorot_normal,
    he_uniform,
    he_normal,
    lecun_uniform,
    lecun_normal,
    random_uniform,
    random_normal,
    orthogonal,
    // Internal (not a Keras name): an LSTM bias of 4 equal parts, zeros but ones in the forget
    // gate's part (Keras's unit_forget_bias=True with bias_initializer="zeros").
    unit_forget_bias
};

// Throws InvalidArgument naming the valid initializers.
Initializer parse_initializer(const std::string& name);
const char* initializer_name(Initializer init);

// Fills `data` (laid out with `shape`, Keras order) deterministically from `seed`.
// fan_in/fan_out follow Keras: a 2-D (in, out) kernel has fan_in = in, fan_out = out.
// orthogonal: as Keras, the (prod(shape[:-1]), shape[-1]) matrix has orthonormal rows or columns.
void initialize(Initializer init, float* data, const Shape& shape, std::uint64_t seed);

}  // namespace maasfin
