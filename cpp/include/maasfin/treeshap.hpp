// Exact SHAP values of tree ensembles (TreeSHAP, Lundberg et al. 2020), over flat node arrays such as
// the attributes of an ONNX TreeEnsemble operator.
#pragma once

#include <cstdint>
#include <vector>

#include "maasfin/common.hpp"

namespace maasfin {

// An ensemble of binary decision trees in flat arrays, one entry per node (all trees together).
// A split node sends x to `yes` when x[feature] <= threshold (mode 0) or < threshold (mode 1), to
// `no` otherwise; a missing value (NaN) goes to `yes` when missing_yes is 1. A leaf has feature -1
// and adds `value` to the margin. `cover` is the weight of data reaching each node (path-dependent
// TreeSHAP's conditional expectations); `base` is added to every margin.
// Construction checks every index, that each tree is a tree (every node reached once from its
// root) and its depth (<= 256): a hostile file cannot make the kernels read out of bounds or loop.
class TreeEnsemble {
public:
    TreeEnsemble(std::vector<std::int64_t> roots, std::vector<std::int32_t> feature, std::vector<double> threshold,
                 std::vector<std::int64_t> yes, std::vector<std::int64_t> no, std::vector<std::uint8_t> mode,
                 std::vector<std::uint8_t> missing_yes, std::vector<double> value, Index num_features, double base);

    Index num_features() const { return num_features_; }
    Index num_nodes() const { return static_cast<Index>(feature_.size()); }
    Index num_trees() const { return static_cast<Index>(roots_.size()); }
    int max_depth() const { return max_depth_; }
    const std::vector<double>& cover() const { return cover_; }

    // Node covers: the number of rows of x (N x F) reaching each node. Not thread-safe (writes).
    void set_cover_from(const float* x, Index N);
    // Node covers given directly (one per node, > 0 where a node is reached).
    void set_cover(const std::vector<double>& cover);

    // The margin of each row: base + sum of the leaves x reaches. margin: N.
    void margin(const float* x, Index N, double* margin) const;
    // Path-dependent TreeSHAP: phi is N x (F + 1); phi[i, j] is feature j's attribution for row i
    // and phi[i, F] the expected margin (base + each tree's cover-weighted mean leaf), so that a
    // row sums to its margin. O(N T L D^2). Const and thread-safe; needs covers.
    void shap(const float* x, Index N, double* phi) const;
    // The reference twin: the same values by enumerating all 2^F feature subsets with the
    // path-dependent conditional expectation (F <= 16). For tests.
    void shap_reference(const float* x, Index N, double* phi) const;
    // Interventional TreeSHAP against background rows bg (B x F): the mean over background rows r
    // of the exact Shapley values of x with absent features taken from r (each pair's values sum
    // to f(x) - f(r)); phi[i, F] is the mean background margin. O(N B T L). Const, thread-safe;
    // needs no covers.
    void shap_interventional(const float* x, Index N, const float* bg, Index B, double* phi) const;
    // Its twin: v(S) = mean_r f(x_S, r_rest) over all 2^F subsets (F <= 16).
    void shap_interventional_reference(const float* x, Index N, const float* bg, Index B, double* phi) const;

private:
    bool goes_yes(Index node, const float* row) const;
    double expected(Index node) const;
    double conditional(Index node, const float* row, std::uint32_t present) const;
    void intervene(Index node, const float* x, const float* r, std::vector<std::uint8_t>& side,
                   std::vector<std::int32_t>& path, int p, int n, const std::vector<double>& weight, double* phi) const;

    std::vector<std::int64_t> roots_;
    std::vector<std::int32_t> feature_;
    std::vector<double> threshold_;
    std::vector<std::int64_t> yes_, no_;
    std::vector<std::uint8_t> mode_, missing_yes_;
    std::vector<double> value_, cover_;
    Index num_features_;
    double base_;
    double expectation_ = 0;  // base + each tree's cover-weighted mean leaf, updated with the covers
    int max_depth_ = 0;
};

}  // namespace maasfin
