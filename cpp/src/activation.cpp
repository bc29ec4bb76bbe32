#include "maasfin/activation.hpp"

#include <utility>

#include "maasfin/common.hpp"

namespace maasfin {

namespace {
const std::pair<const char*, Activation> kNames[] = {
    {"linear", Activation::linear}, {"relu", Activation::relu},       {"sigmoid", Activation::sigmoid},
    {"tanh", Activation::tanh},     {"softmax", Activation::softmax}, {"elu", Activation::elu},
    {"selu", Activation::selu},     {"gelu", Activation::gelu},       {"leaky_relu", Activation::leaky_relu},
    {"swish", Activation::swish},   {"silu", Activation::swish},
};
}  // namespace

std::string activation_names() {
    std::string s;
    for (const auto& [name, _] : kNames) s += (s.empty() ? "" : ", ") + std::string(name);
    return s;
}

Activation parse_activation(const std::string& name) {
    if (name.empty() || name == "None") return Activation::linear;
    for (const auto& [n, a] : kNames)
        if (name == n) return a;
    throw InvalidArgument("unknown activation '" + name + "'; valid names: " + activation_names());
}

const char* activation_name(Activation a) {
    for (const auto& [n, v] : kNames)
        if (v == a) return n;
    return "linear";
}

bool activation_needs_src(Activation a) { return a == Activation::gelu || a == Activation::swish; }

}  // namespace maasfin
