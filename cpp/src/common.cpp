#include <cmath>

#include "maasfin/common.hpp"

namespace maasfin {

std::string shape_str(const Shape& s) {
    std::string out = "(";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + (s.size() == 1 ? ",)" : ")");
}

Index first_nonfinite(const float* data, Index n) {
    for (Index i = 0; i < n; ++i)
        if (!std::isfinite(data[i])) return i;
    return -1;
}

}  // namespace maasfin
