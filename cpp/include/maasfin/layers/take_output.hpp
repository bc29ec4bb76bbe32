// TakeOutput: one output of a layer with several outputs (an LSTM with return_state gives
// [output, h, c]). Such a layer writes all its outputs into one flat row per sample; a TakeOutput
// node per output copies its part out with its own shape. Not a Keras layer: models build these
// nodes themselves and never save them.
#pragma once

#include "maasfin/layer.hpp"

namespace maasfin {

class TakeOutput : public Layer {
public:
    // The part at `offset` (floats into the source row) with per-sample `shape`.
    TakeOutput(Index offset, Shape shape);
    std::string kind() const override { return "TakeOutput"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    Index offset_;
    Shape shape_;
    Index row_ = 0;  // floats per source row
};

}  // namespace maasfin
