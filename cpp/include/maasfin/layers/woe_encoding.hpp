// WoEEncoding: one raw feature -> its weight of evidence (optbinning's sign: ln(event share / non-event
// share) of the bin the value falls in). Keras has no such layer; maasfin.layers.WoEEncoding learns
// the bins from a binary target (adapt) and writes them here. Two modes:
//   numeric:     bin = number of bin boundaries <= x (numpy.digitize, as Discretization); a value equal
//                to one of the special values goes to the Special bin, NaN to the Missing bin.
//                Weights: bin_boundaries (B, ascending, if B > 0), special_values (S, if S > 0) and
//                woe (B + 3: the B + 1 bins, then Special, then Missing).
//   categorical: x is an index from the string boundary (StringTable: 0 = missing, 1 = unseen, then
//                the vocabulary); weights: woe (V), one value per index.
// All weights are non-trainable; the layer is piecewise constant (zero gradient).
#pragma once

#include "maasfin/layer.hpp"

namespace maasfin {

class WoEEncoding : public Layer {
public:
    // num_categories > 0 selects the categorical mode (num_boundaries and num_special must be 0).
    WoEEncoding(Index num_boundaries, Index num_special, Index num_categories);
    std::string kind() const override { return "WoEEncoding"; }
    bool differentiable() const override { return false; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

    // The WoE of one value given the arena (throws InvalidArgument for a categorical index out of range).
    float value(float x, const float* params) const;

private:
    Index b_, s_, v_;
    Index boundaries_ = -1, special_ = -1, woe_ = -1;
};

}  // namespace maasfin
