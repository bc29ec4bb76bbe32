// Metric accumulators. Shapes: y_pred N x D, y_true N x T, w N (or null = all ones).
#include "maasfin/metric.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>

namespace maasfin {

namespace {
constexpr double kEps = 1e-7;  // Keras backend.epsilon()

inline double weight(const float* w, Index i) { return w ? w[i] : 1.0; }

// Weighted mean of a per-sample value.
class MeanMetric : public Metric {
public:
    std::vector<double> result() const override { return {count_ > 0 ? total_ / count_ : 0.0}; }
    void reset() override { total_ = count_ = 0.0; }

protected:
    void add(double value, double w) {
        total_ += w * value;
        count_ += w;
    }
    double total_ = 0.0, count_ = 0.0;
};

class BinaryAccuracy : public MeanMetric {
public:
    explicit BinaryAccuracy(float threshold) : threshold_(threshold) {}
    void update(const float* p, const float* t, const float* w, Index N, Index D, Index) override {
        for (Index i = 0; i < N; ++i) {
            double hits = 0;
            for (Index j = 0; j < D; ++j) hits += (p[i * D + j] > threshold_) == (t[i * D + j] > 0.5f);
            add(hits / D, weight(w, i));
        }
    }

private:
    float threshold_;
};

inline Index argmax(const float* v, Index D) { return static_cast<Index>(std::max_element(v, v + D) - v); }

// Keras's in_top_k: the true class counts as in the top k when fewer than k scores beat it.
class TopKAccuracy : public MeanMetric {
public:
    TopKAccuracy(Index k, bool sparse) : k_(k), sparse_(sparse) {}
    Index target_width(Index D) const override { return sparse_ ? 1 : D; }
    void update(const float* p, const float* t, const float* w, Index N, Index D, Index) override {
        for (Index i = 0; i < N; ++i) {
            const float* pi = p + i * D;
            const Index truth = sparse_ ? static_cast<Index>(t[i]) : argmax(t + i * D, D);
            double hit = 0;
            if (truth >= 0 && truth < D) {
                Index better = 0;
                for (Index j = 0; j < D; ++j) better += pi[j] > pi[truth];
                hit = k_ == 1 ? (argmax(pi, D) == truth) : (better < k_);
            }
            add(hit, weight(w, i));
        }
    }

private:
    Index k_;
    bool sparse_;
};

enum class ErrorKind { mse, mae, rmse };

class MeanError : public MeanMetric {
public:
    explicit MeanError(ErrorKind kind) : kind_(kind) {}
    void update(const float* p, const float* t, const float* w, Index N, Index D, Index) override {
        for (Index i = 0; i < N; ++i) {
            double s = 0;
            for (Index j = 0; j < D; ++j) {
                const double e = double(p[i * D + j]) - t[i * D + j];
                s += kind_ == ErrorKind::mae ? std::fabs(e) : e * e;
            }
            add(s / D, weight(w, i));
        }
    }
    std::vector<double> result() const override {
        const double m = MeanMetric::result()[0];
        return {kind_ == ErrorKind::rmse ? std::sqrt(m) : m};
    }

private:
    ErrorKind kind_;
};

// Per-class confusion counts; precision, recall and F-beta derive from them.
class Confusion : public Metric {
public:
    Confusion(std::string kind, std::vector<float> thresholds, Index class_id, double beta, std::string average,
              Index top_k = 0)
        : kind_(std::move(kind)), thresholds_(std::move(thresholds)), class_id_(class_id), beta_(beta),
          average_(std::move(average)), top_k_(top_k) {}

    void update(const float* p, const float* t, const float* w, Index N, Index D, Index) override {
        const bool per_class = kind_ == "fbeta";
        if (per_class && tp_.size() != static_cast<std::size_t>(D)) {
            tp_.assign(D, 0.0);
            fp_.assign(D, 0.0);
            fn_.assign(D, 0.0);
        }
        if (!per_class && tp_.size() != thresholds_.size()) {
            tp_.assign(thresholds_.size(), 0.0);
            fp_.assign(thresholds_.size(), 0.0);
            fn_.assign(thresholds_.size(), 0.0);
        }
        if (class_id_ >= D)
            throw InvalidArgument(kind_ + ": class_id " + std::to_string(class_id_) +
                                  " is out of range for an output of width " + std::to_string(D));
        for (Index i = 0; i < N; ++i) {
            const double wi = weight(w, i);
            const float* pi = p + i * D;
            const float* ti = t + i * D;
            if (per_class) {
                const Index best = argmax(pi, D);
                for (Index j = 0; j < D; ++j) {
                    const bool pred = thresholds_.empty() ? j == best : pi[j] > thresholds_[0];
                    const bool truth = ti[j] > 0.5f;
                    tp_[j] += wi * (pred && truth);
                    fp_[j] += wi * (pred && !truth);
                    fn_[j] += wi * (!pred && truth);
                }
            } else {
                const Index j0 = class_id_ >= 0 ? class_id_ : 0, j1 = class_id_ >= 0 ? class_id_ + 1 : D;
                if (top_k_ > 0) top_mask(pi, D);
                for (std::size_t k = 0; k < thresholds_.size(); ++k)
                    for (Index j = j0; j < j1; ++j) {
                        const bool pred = (top_k_ == 0 || top_[j]) && pi[j] > thresholds_[k];
                        const bool truth = ti[j] > 0.5f;
                        tp_[k] += wi * (pred && truth);
                        fp_[k] += wi * (pred && !truth);
                        fn_[k] += wi * (!pred && truth);
                    }
            }
        }
    }

    std::vector<double> result() const override {
        std::vector<double> out;
        if (kind_ == "precision" || kind_ == "recall") {
            for (std::size_t k = 0; k < tp_.size(); ++k) {
                const double den = kind_ == "precision" ? tp_[k] + fp_[k] : tp_[k] + fn_[k];
                out.push_back(den > 0 ? tp_[k] / den : 0.0);
            }
            if (out.empty()) out.assign(thresholds_.size(), 0.0);
            return out;
        }
        // F-beta as Keras: precision and recall with epsilon-guarded divisions.
        const double b2 = beta_ * beta_;
        auto f = [&](double tp, double fp, double fn) {
            const double prec = tp / (tp + fp + kEps), rec = tp / (tp + fn + kEps);
            return (1 + b2) * prec * rec / (b2 * prec + rec + kEps);
        };
        if (average_ == "micro") {
            const double tp = std::accumulate(tp_.begin(), tp_.end(), 0.0);
            const double fp = std::accumulate(fp_.begin(), fp_.end(), 0.0);
            const double fn = std::accumulate(fn_.begin(), fn_.end(), 0.0);
            return {tp_.empty() ? 0.0 : f(tp, fp, fn)};
        }
        for (std::size_t j = 0; j < tp_.size(); ++j) out.push_back(f(tp_[j], fp_[j], fn_[j]));
        if (average_ == "macro") {
            return {out.empty() ? 0.0 : std::accumulate(out.begin(), out.end(), 0.0) / out.size()};
        }
        if (average_ == "weighted") {
            double num = 0, den = 0;
            for (std::size_t j = 0; j < out.size(); ++j) {
                num += out[j] * (tp_[j] + fn_[j]);
                den += tp_[j] + fn_[j];
            }
            return {den > 0 ? num / den : 0.0};
        }
        return out;
    }

    void reset() override {
        std::fill(tp_.begin(), tp_.end(), 0.0);
        std::fill(fp_.begin(), fp_.end(), 0.0);
        std::fill(fn_.begin(), fn_.end(), 0.0);
    }

private:
    // top_[j]: whether column j is among the row's top_k scores (ties: the lower index first, as
    // Keras's top_k).
    void top_mask(const float* pi, Index D) {
        order_.resize(static_cast<std::size_t>(D));
        std::iota(order_.begin(), order_.end(), Index{0});
        const Index k = std::min(top_k_, D);
        std::partial_sort(order_.begin(), order_.begin() + k, order_.end(),
                          [pi](Index a, Index b) { return pi[a] > pi[b] || (pi[a] == pi[b] && a < b); });
        top_.assign(static_cast<std::size_t>(D), 0);
        for (Index i = 0; i < k; ++i) top_[order_[i]] = 1;
    }

    std::string kind_;
    std::vector<float> thresholds_;
    Index class_id_;
    double beta_;
    std::string average_;
    Index top_k_;
    std::vector<double> tp_, fp_, fn_;
    std::vector<Index> order_;
    std::vector<char> top_;
};

// Ranking metrics computed exactly from every (score, label, weight) seen since the last reset.
// Scores are the flattened outputs; ties are grouped so tied scores never create fake order.
class Ranking : public Metric {
public:
    Ranking(std::string kind, bool from_logits, bool multi_label, std::vector<float> label_weights)
        : kind_(std::move(kind)), from_logits_(from_logits), multi_label_(multi_label),
          label_weights_(std::move(label_weights)) {}

    void update(const float* p, const float* t, const float* w, Index N, Index D, Index) override {
        if (!label_weights_.empty() && static_cast<Index>(label_weights_.size()) != D)
            throw InvalidArgument(kind_ + ": label_weights has " + std::to_string(label_weights_.size()) +
                                  " values but the output has " + std::to_string(D) + " columns");
        if (width_ >= 0 && width_ != D)
            throw InvalidArgument(kind_ + ": the output width changed from " + std::to_string(width_) + " to " +
                                  std::to_string(D) + " without a reset");
        width_ = D;
        for (Index i = 0; i < N; ++i)
            for (Index j = 0; j < D; ++j) {
                const float label = t[i * D + j];
                if (!(label >= 0.f && label <= 1.f))
                    throw InvalidArgument(kind_ + ": labels must be in [0, 1], got " + std::to_string(label) +
                                          " at row " + std::to_string(i));
                float s = p[i * D + j];
                if (from_logits_) s = 1.f / (1.f + std::exp(-s));
                if (!std::isfinite(s)) {  // a ranking with NaN in it is undefined: report NaN
                    nonfinite_ = true;
                    continue;
                }
                scores_.push_back(s);
                labels_.push_back(label > 0.5f);
                const double lw = multi_label_ || label_weights_.empty() ? 1.0 : label_weights_[j];
                weights_.push_back(static_cast<float>(weight(w, i) * lw));
                columns_.push_back(static_cast<std::int32_t>(j));
            }
    }

    std::vector<double> result() const override {
        if (nonfinite_) return {std::nan("")};
        std::vector<std::size_t> all(scores_.size());
        std::iota(all.begin(), all.end(), 0);
        if (!multi_label_ || width_ <= 1) return {value(std::move(all))};
        // One value per column, then their mean weighted by label_weights (as Keras's AUC).
        double num = 0, den = 0;
        for (Index j = 0; j < width_; ++j) {
            std::vector<std::size_t> idx;
            for (std::size_t i : all)
                if (columns_[i] == j) idx.push_back(i);
            const double lw = label_weights_.empty() ? 1.0 : label_weights_[j];
            num += lw * value(std::move(idx));
            den += lw;
        }
        return {den > 0 ? num / den : 0.0};
    }

    void reset() override {
        nonfinite_ = false;
        width_ = -1;
        scores_.clear();
        labels_.clear();
        weights_.clear();
        columns_.clear();
    }

private:
    // The metric over the entries `order` (indices into the stored scores).
    double value(std::vector<std::size_t> order) const {
        const std::size_t n = order.size();
        // Descending score: walking down the thresholds.
        std::stable_sort(order.begin(), order.end(),
                         [&](std::size_t a, std::size_t b) { return scores_[a] > scores_[b]; });
        double pos = 0, neg = 0;
        for (std::size_t i : order) (labels_[i] ? pos : neg) += weights_[i];
        if (pos <= 0 || neg <= 0) return 0.0;
        double tp = 0, fp = 0, area = 0, ap = 0, ks = 0, prev_recall = 0;
        for (std::size_t a = 0; a < n;) {
            double gp = 0, gn = 0;
            std::size_t b = a;
            for (; b < n && scores_[order[b]] == scores_[order[a]]; ++b)
                (labels_[order[b]] ? gp : gn) += weights_[order[b]];
            // ROC: each negative of this group ranks below every positive already seen (higher
            // scores) and ties with this group's positives, which count one half.
            area += gn * (tp + 0.5 * gp);
            tp += gp;
            fp += gn;
            const double recall = tp / pos;
            if (tp + fp > 0) ap += (recall - prev_recall) * (tp / (tp + fp));
            prev_recall = recall;
            ks = std::max(ks, std::fabs(tp / pos - fp / neg));
            a = b;
        }
        const double auc = area / (pos * neg);
        if (kind_ == "roc_auc") return auc;
        if (kind_ == "gini") return 2.0 * auc - 1.0;
        if (kind_ == "pr_auc") return ap;
        return ks;
    }

    std::string kind_;
    bool from_logits_;
    bool multi_label_;
    std::vector<float> label_weights_;
    Index width_ = -1;
    std::vector<float> scores_, weights_;
    std::vector<char> labels_;
    std::vector<std::int32_t> columns_;
    bool nonfinite_ = false;
};

const char* const kKinds =
    "binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, top_k_categorical_accuracy, "
    "sparse_top_k_categorical_accuracy, mean_squared_error, root_mean_squared_error, mean_absolute_error, "
    "precision, recall, fbeta, roc_auc, pr_auc, ks, gini, brier_score, expected_calibration_error";
}  // namespace

std::unique_ptr<Metric> make_metric(const MetricSpec& s) {
    const std::string& k = s.kind;
    auto one_threshold = [&](float dflt) { return s.thresholds.empty() ? dflt : s.thresholds[0]; };
    for (float t : s.thresholds)
        if (!(t >= 0.f && t <= 1.f))
            throw InvalidArgument(k + ": thresholds must be in [0, 1], got " + std::to_string(t));
    if (k == "binary_accuracy") return std::make_unique<BinaryAccuracy>(one_threshold(0.5f));
    if (k == "categorical_accuracy") return std::make_unique<TopKAccuracy>(1, false);
    if (k == "sparse_categorical_accuracy") return std::make_unique<TopKAccuracy>(1, true);
    if (k == "top_k_categorical_accuracy" || k == "sparse_top_k_categorical_accuracy") {
        if (s.k < 1) throw InvalidArgument(k + ": k must be >= 1, got " + std::to_string(s.k));
        return std::make_unique<TopKAccuracy>(s.k, k[0] == 's');
    }
    if (k == "mean_squared_error") return std::make_unique<MeanError>(ErrorKind::mse);
    if (k == "root_mean_squared_error") return std::make_unique<MeanError>(ErrorKind::rmse);
    if (k == "mean_absolute_error") return std::make_unique<MeanError>(ErrorKind::mae);
    if (s.top_k < 0) throw InvalidArgument(k + ": top_k must be positive");
    if (k == "precision" || k == "recall") {
        // With top_k and no thresholds, every top-k score counts as positive (Keras's -inf default).
        const float dflt = s.top_k > 0 ? -std::numeric_limits<float>::infinity() : 0.5f;
        std::vector<float> th = s.thresholds.empty() ? std::vector<float>{dflt} : s.thresholds;
        return std::make_unique<Confusion>(k, th, s.class_id, 1.0, "", s.top_k);
    }
    if (k == "fbeta") {
        if (!(s.beta > 0)) throw InvalidArgument("fbeta: beta must be > 0");
        if (!(s.average.empty() || s.average == "micro" || s.average == "macro" || s.average == "weighted"))
            throw InvalidArgument("fbeta: average must be None, 'micro', 'macro' or 'weighted', got '" + s.average +
                                  "'");
        return std::make_unique<Confusion>(k, s.thresholds, -1, s.beta, s.average);
    }
    for (float lw : s.label_weights)
        if (!(lw >= 0.f) || !std::isfinite(lw)) throw InvalidArgument(k + ": label_weights must be finite and >= 0");
    if (k == "roc_auc" || k == "pr_auc" || k == "ks" || k == "gini")
        return std::make_unique<Ranking>(k, s.from_logits, s.multi_label, s.label_weights);
    if (auto m = make_calibration_metric(s)) return m;
    throw InvalidArgument("unknown metric '" + k + "'; valid kinds: " + kKinds);
}

}  // namespace maasfin
