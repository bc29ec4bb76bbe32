// Embedding (Keras): integer indices (L) -> rows of a trainable (input_dim, output_dim) matrix,
// output (L, output_dim). An index outside [0, input_dim) is an InvalidArgument naming the layer.
#pragma once

#include "maasfin/layer.hpp"

namespace maasfin {

class Embedding : public Layer {
public:
    Embedding(Index input_dim, Index output_dim, Initializer init);
    std::string kind() const override { return "Embedding"; }
    bool differentiable() const override { return false; }
    // Output element k is component k % output_dim of the vector of index k / output_dim.
    Index source_element(Index k, Index /*input_width*/) const override { return k / output_dim_; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    Index input_dim_, output_dim_;
    Initializer init_;
    Index L_ = 0;
    Index embeddings_ = -1;
};

}  // namespace maasfin
