// Merging layers for functional graphs: Add (element-wise sum of equal shapes) and Concatenate
// (along the last axis).
#pragma once

#include "maasfin/layer.hpp"

namespace maasfin {

class Add : public Layer {
public:
    std::string kind() const override { return "Add"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    std::string config() const override { return "{}"; }

private:
    Index d_ = 0;
};

class Concatenate : public Layer {
public:
    std::string kind() const override { return "Concatenate"; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;
    std::string config() const override { return "{\"axis\": -1}"; }

private:
    Index rows_per_sample_ = 1;
    std::vector<Index> widths_;
    Index total_ = 0;
};

}  // namespace maasfin
