// Element-wise activation functions by their Keras names.
#pragma once

#include <string>

namespace maasfin {

enum class Activation { linear, relu, sigmoid, tanh, softmax, elu, selu, gelu, leaky_relu, swish };

// Parses a Keras activation name ("relu", "silu" is an alias of "swish", "linear"/"" is identity).
// Throws InvalidArgument listing the valid names.
Activation parse_activation(const std::string& name);
const char* activation_name(Activation a);
// True when the derivative needs the pre-activation input (it cannot be recovered from the output).
bool activation_needs_src(Activation a);
// Comma-separated list of the names parse_activation accepts.
std::string activation_names();

}  // namespace maasfin
