// TreeSHAP (Lundberg et al. 2020, Algorithm 2) and its subset-enumeration reference.
#include "maasfin/treeshap.hpp"

#include <cmath>
#include <string>

namespace maasfin {

namespace {

void require(bool ok, const std::string& msg) {
    if (!ok) throw InvalidArgument("tree ensemble: " + msg);
}

// One element of the unique path of features from the root to the current node: the fraction
// of "zero" paths (feature absent: cover-weighted) and "one" paths (feature present: x's branch)
// that flow through, and the weight of the subsets of each size (pweight).
struct PathElement {
    std::int32_t feature;
    double zero_fraction, one_fraction, pweight;
};

void extend_path(PathElement* path, int depth, double zero_fraction, double one_fraction, std::int32_t feature) {
    path[depth] = {feature, zero_fraction, one_fraction, depth == 0 ? 1.0 : 0.0};
    for (int i = depth - 1; i >= 0; --i) {
        path[i + 1].pweight += one_fraction * path[i].pweight * (i + 1) / static_cast<double>(depth + 1);
        path[i].pweight = zero_fraction * path[i].pweight * (depth - i) / static_cast<double>(depth + 1);
    }
}

void unwind_path(PathElement* path, int depth, int index) {
    const double one = path[index].one_fraction, zero = path[index].zero_fraction;
    double next_one_portion = path[depth].pweight;
    for (int i = depth - 1; i >= 0; --i) {
        if (one != 0) {
            const double tmp = path[i].pweight;
            path[i].pweight = next_one_portion * (depth + 1) / ((i + 1) * one);
            next_one_portion = tmp - path[i].pweight * zero * (depth - i) / static_cast<double>(depth + 1);
        } else {
            path[i].pweight = path[i].pweight * (depth + 1) / (zero * (depth - i));
        }
    }
    for (int i = index; i < depth; ++i) {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

// The total weight of the path's subsets with element `index` unwound (without modifying it).
double unwound_path_sum(const PathElement* path, int depth, int index) {
    const double one = path[index].one_fraction, zero = path[index].zero_fraction;
    double next_one_portion = path[depth].pweight, total = 0;
    for (int i = depth - 1; i >= 0; --i) {
        if (one != 0) {
            const double tmp = next_one_portion * (depth + 1) / ((i + 1) * one);
            total += tmp;
            next_one_portion = path[i].pweight - tmp * zero * ((depth - i) / static_cast<double>(depth + 1));
        } else if (zero != 0) {
            total += (path[i].pweight / zero) / ((depth - i) / static_cast<double>(depth + 1));
        }
    }
    return total;
}

struct Walk {
    const std::vector<std::int32_t>& feature;
    const std::vector<std::int64_t>& yes;
    const std::vector<std::int64_t>& no;
    const std::vector<double>& value;
    const std::vector<double>& cover;
    const float* row;
    double* phi;
};

template <class Goes>
void recurse(const Walk& w, Goes goes, Index node, PathElement* parent_path, int depth, double zero_fraction,
             double one_fraction, std::int32_t parent_feature) {
    PathElement* path = parent_path + depth + 1;  // this level's copy, after the parent's
    std::copy(parent_path, parent_path + depth + 1, path);
    extend_path(path, depth, zero_fraction, one_fraction, parent_feature);
    const std::int32_t split = w.feature[node];
    if (split < 0) {
        for (int i = 1; i <= depth; ++i) {
            const double weight = unwound_path_sum(path, depth, i);
            w.phi[path[i].feature] += weight * (path[i].one_fraction - path[i].zero_fraction) * w.value[node];
        }
        return;
    }
    const bool to_yes = goes(node);
    const Index hot = to_yes ? w.yes[node] : w.no[node], cold = to_yes ? w.no[node] : w.yes[node];
    const double c = w.cover[node];
    const double hot_zero = c > 0 ? w.cover[hot] / c : 0, cold_zero = c > 0 ? w.cover[cold] / c : 0;
    double incoming_zero = 1, incoming_one = 1;
    int k = 0;
    for (; k <= depth; ++k)
        if (path[k].feature == split) break;
    if (k != depth + 1) {  // the feature split before on this path: undo that split
        incoming_zero = path[k].zero_fraction;
        incoming_one = path[k].one_fraction;
        unwind_path(path, depth, k);
        depth -= 1;
    }
    recurse(w, goes, hot, path, depth + 1, hot_zero * incoming_zero, incoming_one, split);
    recurse(w, goes, cold, path, depth + 1, cold_zero * incoming_zero, 0, split);
}

}  // namespace

TreeEnsemble::TreeEnsemble(std::vector<std::int64_t> roots, std::vector<std::int32_t> feature,
                           std::vector<double> threshold, std::vector<std::int64_t> yes, std::vector<std::int64_t> no,
                           std::vector<std::uint8_t> mode, std::vector<std::uint8_t> missing_yes,
                           std::vector<double> value, Index num_features, double base)
    : roots_(std::move(roots)), feature_(std::move(feature)), threshold_(std::move(threshold)), yes_(std::move(yes)),
      no_(std::move(no)), mode_(std::move(mode)), missing_yes_(std::move(missing_yes)), value_(std::move(value)),
      num_features_(num_features), base_(base) {
    const std::size_t n = feature_.size();
    require(threshold_.size() == n && yes_.size() == n && no_.size() == n && mode_.size() == n &&
                missing_yes_.size() == n && value_.size() == n,
            "every node array must have one entry per node");
    require(num_features_ >= 1 && num_features_ <= (Index{1} << 24), "num_features must be in [1, 2^24]");
    require(std::isfinite(base_), "base must be finite");
    std::vector<std::uint8_t> seen(n, 0);
    std::vector<std::pair<std::int64_t, int>> stack;
    for (std::int64_t r : roots_) {
        require(r >= 0 && static_cast<std::size_t>(r) < n, "a root index is out of range");
        stack.push_back({r, 0});
        while (!stack.empty()) {
            const auto [node, d] = stack.back();
            stack.pop_back();
            require(!seen[node], "node " + std::to_string(node) + " is reached twice (not a tree)");
            seen[node] = 1;
            require(d <= 256, "a tree is deeper than 256");
            max_depth_ = std::max(max_depth_, d);
            require(std::isfinite(value_[node]), "node " + std::to_string(node) + " has a non-finite value");
            if (feature_[node] < 0) continue;
            require(feature_[node] < num_features_, "node " + std::to_string(node) + " splits on a missing feature");
            require(mode_[node] <= 1 && missing_yes_[node] <= 1, "node " + std::to_string(node) + " has a bad mode");
            for (std::int64_t c : {yes_[node], no_[node]}) {
                require(c >= 0 && static_cast<std::size_t>(c) < n, "node " + std::to_string(node) + " has a bad child");
                stack.push_back({c, d + 1});
            }
        }
    }
    cover_.assign(n, 0.0);
    expectation_ = base_;
}

bool TreeEnsemble::goes_yes(Index node, const float* row) const {
    const float v = row[feature_[node]];
    if (std::isnan(v)) return missing_yes_[node] != 0;
    const float t = static_cast<float>(threshold_[node]);
    return mode_[node] == 0 ? v <= t : v < t;
}

void TreeEnsemble::set_cover_from(const float* x, Index N) {
    std::fill(cover_.begin(), cover_.end(), 0.0);
    for (Index i = 0; i < N; ++i) {
        const float* row = x + i * num_features_;
        for (std::int64_t node : roots_) {
            for (;;) {
                cover_[node] += 1;
                if (feature_[node] < 0) break;
                node = goes_yes(node, row) ? yes_[node] : no_[node];
            }
        }
    }
    expectation_ = base_;
    for (std::int64_t r : roots_) expectation_ += expected(r);
}

void TreeEnsemble::set_cover(const std::vector<double>& cover) {
    require(cover.size() == cover_.size(), "cover must have one entry per node");
    for (double c : cover) require(std::isfinite(c) && c >= 0, "covers must be finite and >= 0");
    cover_ = cover;
    expectation_ = base_;
    for (std::int64_t r : roots_) expectation_ += expected(r);
}

void TreeEnsemble::margin(const float* x, Index N, double* margin) const {
    for (Index i = 0; i < N; ++i) {
        const float* row = x + i * num_features_;
        double m = base_;
        for (std::int64_t node : roots_) {
            while (feature_[node] >= 0) node = goes_yes(node, row) ? yes_[node] : no_[node];
            m += value_[node];
        }
        margin[i] = m;
    }
}

double TreeEnsemble::expected(Index node) const {
    if (feature_[node] < 0) return value_[node];
    const double c = cover_[node];
    if (c <= 0) return 0.0;
    return (cover_[yes_[node]] * expected(yes_[node]) + cover_[no_[node]] * expected(no_[node])) / c;
}

void TreeEnsemble::shap(const float* x, Index N, double* phi) const {
    // N rows x T trees; each row's walk needs (D + 2)(D + 3) / 2 path elements of scratch.
    const Index F = num_features_;
    const int d = max_depth_ + 2;
    std::vector<PathElement> scratch(static_cast<std::size_t>(d) * (d + 1) / 2 + d + 1);
    for (Index i = 0; i < N; ++i) {
        const float* row = x + i * F;
        double* out = phi + i * (F + 1);
        std::fill(out, out + F + 1, 0.0);
        Walk w{feature_, yes_, no_, value_, cover_, row, out};
        auto goes = [this, row](Index node) { return goes_yes(node, row); };
        for (std::int64_t r : roots_) recurse(w, goes, r, scratch.data(), 0, 1, 1, -1);
        out[F] = expectation_;
    }
}

double TreeEnsemble::conditional(Index node, const float* row, std::uint32_t present) const {
    if (feature_[node] < 0) return value_[node];
    if (present >> feature_[node] & 1u) return conditional(goes_yes(node, row) ? yes_[node] : no_[node], row, present);
    const double c = cover_[node];
    if (c <= 0) return 0.0;
    return (cover_[yes_[node]] * conditional(yes_[node], row, present) +
            cover_[no_[node]] * conditional(no_[node], row, present)) /
           c;
}

void TreeEnsemble::shap_reference(const float* x, Index N, double* phi) const {
    const Index F = num_features_;
    require(F <= 16, "the reference enumerates 2^F subsets: at most 16 features");
    const std::uint32_t subsets = 1u << F;
    std::vector<double> weight(F + 1);  // |S|! (F - |S| - 1)! / F!
    for (Index s = 0; s < F; ++s)
        weight[s] = std::exp(std::lgamma(s + 1.0) + std::lgamma(F - s + 0.0) - std::lgamma(F + 1.0));
    std::vector<double> v(subsets);
    for (Index i = 0; i < N; ++i) {
        const float* row = x + i * F;
        for (std::uint32_t s = 0; s < subsets; ++s) {
            double total = base_;
            for (std::int64_t r : roots_) total += conditional(r, row, s);
            v[s] = total;
        }
        double* out = phi + i * (F + 1);
        for (Index j = 0; j < F; ++j) {
            double a = 0;
            for (std::uint32_t s = 0; s < subsets; ++s)
                if (!(s >> j & 1u)) a += weight[__builtin_popcount(s)] * (v[s | (1u << j)] - v[s]);
            out[j] = a;
        }
        out[F] = v[0];
    }
}

// A path splits the features that decided it into those taken from x (p of them) and those taken
// from r (n); a leaf reached so adds value * p-1! n! / (p+n)! to each x feature's attribution and
// subtracts value * p! n-1! / (p+n)! from each r feature's (the Shapley weights of the subsets that
// lead there). weight[k] holds k! for the ratio below.
void TreeEnsemble::intervene(Index node, const float* x, const float* r, std::vector<std::uint8_t>& side,
                             std::vector<std::int32_t>& path, int p, int n, const std::vector<double>& weight,
                             double* phi) const {
    const std::int32_t f = feature_[node];
    if (f < 0) {
        const double v = value_[node];
        const double wx = p > 0 ? std::exp(weight[p - 1] + weight[n] - weight[p + n]) : 0.0;
        const double wr = n > 0 ? std::exp(weight[p] + weight[n - 1] - weight[p + n]) : 0.0;
        for (std::int32_t j : path) phi[j] += side[j] == 1 ? wx * v : -wr * v;
        return;
    }
    const Index bx = goes_yes(node, x) ? yes_[node] : no_[node];
    const Index br = goes_yes(node, r) ? yes_[node] : no_[node];
    if (side[f] == 1 || bx == br) return intervene(side[f] == 2 ? br : bx, x, r, side, path, p, n, weight, phi);
    if (side[f] == 2) return intervene(br, x, r, side, path, p, n, weight, phi);
    path.push_back(f);
    side[f] = 1;
    intervene(bx, x, r, side, path, p + 1, n, weight, phi);
    side[f] = 2;
    intervene(br, x, r, side, path, p, n + 1, weight, phi);
    side[f] = 0;
    path.pop_back();
}

void TreeEnsemble::shap_interventional(const float* x, Index N, const float* bg, Index B, double* phi) const {
    require(B >= 1, "interventional TreeSHAP needs at least one background row");
    const Index F = num_features_;
    std::vector<double> log_factorial(max_depth_ + 3, 0.0);
    for (std::size_t k = 1; k < log_factorial.size(); ++k) log_factorial[k] = std::lgamma(static_cast<double>(k) + 1);
    std::vector<double> bg_margin(B);
    margin(bg, B, bg_margin.data());
    double expectation = 0;
    for (double m : bg_margin) expectation += m / static_cast<double>(B);
    std::vector<std::uint8_t> side(F, 0);
    std::vector<std::int32_t> path;
    path.reserve(max_depth_ + 1);
    for (Index i = 0; i < N; ++i) {
        const float* row = x + i * F;
        double* out = phi + i * (F + 1);
        std::fill(out, out + F + 1, 0.0);
        for (Index b = 0; b < B; ++b)
            for (std::int64_t root : roots_) intervene(root, row, bg + b * F, side, path, 0, 0, log_factorial, out);
        for (Index j = 0; j < F; ++j) out[j] /= static_cast<double>(B);
        out[F] = expectation;
    }
}

void TreeEnsemble::shap_interventional_reference(const float* x, Index N, const float* bg, Index B, double* phi) const {
    const Index F = num_features_;
    require(F <= 16 && B >= 1, "the reference enumerates 2^F subsets: at most 16 features, one background row");
    const std::uint32_t subsets = 1u << F;
    std::vector<double> weight(F + 1);
    for (Index s = 0; s < F; ++s)
        weight[s] = std::exp(std::lgamma(s + 1.0) + std::lgamma(F - s + 0.0) - std::lgamma(F + 1.0));
    std::vector<double> v(subsets);
    std::vector<float> hybrid(static_cast<std::size_t>(B * F));
    std::vector<double> m(B);
    for (Index i = 0; i < N; ++i) {
        const float* row = x + i * F;
        for (std::uint32_t s = 0; s < subsets; ++s) {
            for (Index b = 0; b < B; ++b)
                for (Index j = 0; j < F; ++j) hybrid[b * F + j] = (s >> j & 1u) ? row[j] : bg[b * F + j];
            margin(hybrid.data(), B, m.data());
            double total = 0;
            for (double y : m) total += y / static_cast<double>(B);
            v[s] = total;
        }
        double* out = phi + i * (F + 1);
        for (Index j = 0; j < F; ++j) {
            double a = 0;
            for (std::uint32_t s = 0; s < subsets; ++s)
                if (!(s >> j & 1u)) a += weight[__builtin_popcount(s)] * (v[s | (1u << j)] - v[s]);
            out[j] = a;
        }
        out[F] = v[0];
    }
}

}  // namespace maasfin
