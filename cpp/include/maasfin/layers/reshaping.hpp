// Layers that only move values: Flatten, Reshape, Permute, RepeatVector, ZeroPadding1D/2D.
// None has parameters; each backward is the transpose of its forward's copy.
#pragma once

#include <string>
#include <vector>

#include "maasfin/layer.hpp"

namespace maasfin {

// (d1, ..., dk) -> (d1*...*dk,)
class Flatten : public Layer {
public:
    std::string kind() const override { return "Flatten"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    Index size_ = 0;
};

// Same values, new per-sample shape; one entry of target_shape may be -1 (inferred).
class Reshape : public Layer {
public:
    explicit Reshape(Shape target_shape);
    std::string kind() const override { return "Reshape"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    Shape target_;
    Index size_ = 0;
};

// Permutes the per-sample axes; dims are 1-based as in Keras: out[i] = in[dims[i] - 1].
class Permute : public Layer {
public:
    explicit Permute(std::vector<Index> dims);
    std::string kind() const override { return "Permute"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    // Input offset of every output element of one sample.
    std::vector<Index> gather_;
    std::vector<Index> dims_;
};

// (D,) -> (n, D)
class RepeatVector : public Layer {
public:
    explicit RepeatVector(Index n);
    std::string kind() const override { return "RepeatVector"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    Index n_, d_ = 0;
};

// ZeroPadding1D: (T, C) -> (left + T + right, C); ZeroPadding2D: (H, W, C) -> (top + H + bottom, left + W + right, C).
class ZeroPadding : public Layer {
public:
    ZeroPadding(int rank, Index top, Index bottom, Index left, Index right);
    std::string kind() const override { return rank_ == 1 ? "ZeroPadding1D" : "ZeroPadding2D"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    int rank_;
    Index top_, bottom_, left_, right_;
    Index H_ = 1, W_ = 0, C_ = 0;
};

}  // namespace maasfin
