#include "maasfin/window.hpp"

#include <algorithm>

namespace maasfin {

void window_axis(Index in, Index k, Index s, Index d, const std::string& padding, const std::string& who, Index& out,
                 Index& before, Index& after) {
    const Index span = (k - 1) * d + 1;  // extent of the dilated window
    if (padding == "valid") {
        if (in < span)
            throw InvalidArgument(who + ": the window spans " + std::to_string(span) +
                                  " positions but the input has only " + std::to_string(in) +
                                  " along an axis with padding='valid'");
        out = (in - span) / s + 1;
        before = after = 0;
    } else if (padding == "same") {
        out = (in + s - 1) / s;
        const Index total = std::max<Index>((out - 1) * s + span - in, 0);
        before = total / 2;
        after = total - before;
    } else if (padding == "causal") {
        before = span - 1;
        after = 0;
        out = (in - 1) / s + 1;
    } else {
        throw InvalidArgument(who + ": padding must be 'valid' or 'same', got '" + padding + "'");
    }
}

Window make_window(Index H, Index W, Index KH, Index KW, Index SH, Index SW, Index DH, Index DW,
                   const std::string& padding, const std::string& who) {
    if (KH <= 0 || KW <= 0 || SH <= 0 || SW <= 0 || DH <= 0 || DW <= 0)
        throw InvalidArgument(who + ": window sizes, strides and dilation rates must be positive");
    Window w;
    w.H = H, w.W = W, w.KH = KH, w.KW = KW, w.SH = SH, w.SW = SW, w.DH = DH, w.DW = DW;
    window_axis(H, KH, SH, DH, padding, who, w.OH, w.PT, w.PB);
    window_axis(W, KW, SW, DW, padding, who, w.OW, w.PL, w.PR);
    return w;
}

}  // namespace maasfin
