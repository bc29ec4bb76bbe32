#include "maasfin/layers/embedding.hpp"

#include <algorithm>
#include <cstring>

#include "maasfin/layers/category_encoding.hpp"

namespace maasfin {

Embedding::Embedding(Index input_dim, Index output_dim, Initializer init)
    : input_dim_(input_dim), output_dim_(output_dim), init_(init) {
    if (input_dim <= 0 || output_dim <= 0)
        throw InvalidArgument("Embedding: input_dim and output_dim must be positive integers");
}

// in: (L) -> out: (L, D)
Shape Embedding::build(const std::vector<Shape>& inputs, ParamAllocator& params) {
    if (inputs.size() != 1 || inputs[0].size() != 1)
        throw InvalidArgument("Embedding '" + name_ + "' expects inputs of shape (batch, sequence_length)" +
                              (inputs.size() == 1 ? ", got per-sample shape " + shape_str(inputs[0]) : ""));
    L_ = inputs[0][0];
    embeddings_ = params.add("embeddings", {input_dim_, output_dim_}, init_);
    return {L_, output_dim_};
}

// x: N x L indices; W: V x D; y: N x L x D
void Embedding::forward(const ForwardArgs& a) const {
    const Index NL = a.N * L_, D = output_dim_, V = input_dim_;
    const float* W = a.params + embeddings_;
    const std::string who = "Embedding '" + name_ + "' (input_dim=" + std::to_string(V) + ")";
    for (Index i = 0; i < NL; ++i) {
        const Index v = category_index(a.x[0][i], V, false, who, i / L_);
        std::memcpy(a.y + i * D, W + v * D, sizeof(float) * static_cast<std::size_t>(D));
    }
}

// dW[v] = sum of dy over the positions that looked up v; indices get no gradient.
void Embedding::backward(const BackwardArgs& a) const {
    const Index NL = a.N * L_, D = output_dim_;
    float* dW = a.grads + embeddings_;
    std::fill(dW, dW + input_dim_ * D, 0.f);
    for (Index i = 0; i < NL; ++i) {
        const Index v = static_cast<Index>(a.x[0][i]);
        for (Index d = 0; d < D; ++d) dW[v * D + d] += a.dy[i * D + d];
    }
    if (a.dx[0]) std::fill(a.dx[0], a.dx[0] + NL, 0.f);
}

}  // namespace maasfin
