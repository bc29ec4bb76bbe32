// Geometry of a sliding window (convolution or pooling) over channels_last data, with Keras's
// padding rules. A 1-D window is a 2-D one with H = KH = 1, so every kernel has one 2-D form.
#pragma once

#include <string>

#include "maasfin/common.hpp"

namespace maasfin {

struct Window {
    Index H = 1, W = 1;    // input spatial size
    Index KH = 1, KW = 1;  // window size
    Index SH = 1, SW = 1;  // strides
    Index DH = 1, DW = 1;  // dilation, Keras convention (1 = dense window)
    Index PT = 0, PB = 0;  // implicit padding before/after along H
    Index PL = 0, PR = 0;  // ... along W
    Index OH = 1, OW = 1;  // output spatial size
};

// One axis of a window. padding is "valid", "same" or (convolutions only) "causal":
//   valid:  out = floor((in - (k-1)*d - 1) / s) + 1, no padding
//   same:   out = ceil(in / s), total = max((out-1)*s + (k-1)*d + 1 - in, 0), before = total / 2
//   causal: before = (k-1)*d, after = 0
// Throws InvalidArgument (naming `who`) when the window does not fit.
void window_axis(Index in, Index k, Index s, Index d, const std::string& padding, const std::string& who, Index& out,
                 Index& before, Index& after);

// A 2-D window over (H, W) input; for 1-D pass H = KH = SH = DH = 1.
Window make_window(Index H, Index W, Index KH, Index KW, Index SH, Index SW, Index DH, Index DW,
                   const std::string& padding, const std::string& who);

}  // namespace maasfin
