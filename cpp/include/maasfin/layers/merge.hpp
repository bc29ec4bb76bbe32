// Merging layers for functional graphs: Add (element-wise sum of equal shapes), the other
// element-wise merges (Subtract, Multiply, Average, Maximum, Minimum), Concatenate (along the last
// axis) and Dot (of two vectors).
#pragma once

#include "maasfin/layer.hpp"

namespace maasfin {

class Add : public Layer {
public:
    std::string kind() const override { return "Add"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    Index d_ = 0;
};

class Concatenate : public Layer {
public:
    std::string kind() const override { return "Concatenate"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    Index rows_per_sample_ = 1;
    std::vector<Index> widths_;
    Index total_ = 0;
};

// Subtract (exactly 2 inputs: x0 - x1), Multiply, Average, Maximum, Minimum over k >= 2 inputs of
// equal shape. Maximum/Minimum send the gradient to the first input that attains the extreme.
class ElementwiseMerge : public Layer {
public:
    enum class Op { subtract, multiply, average, maximum, minimum };
    explicit ElementwiseMerge(Op op) : op_(op) {}
    std::string kind() const override;
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    Op op_;
    Index d_ = 0;
};

// Dot of two vectors per sample: (D), (D) -> (1,), as Keras's Dot(axes=1) on (batch, D) inputs.
// With normalize, each input is first L2-normalised (Keras: x / sqrt(max(sum x^2, 1e-12))), so the
// output is the cosine similarity.
class Dot : public Layer {
public:
    explicit Dot(bool normalize) : normalize_(normalize) {}
    std::string kind() const override { return "Dot"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    bool normalize_;
    Index d_ = 0;
};

}  // namespace maasfin
