// The batch loops of fit and evaluate. Called with the GIL released; never calls into Python
// except through the optional progress callback (at most every ~100 ms).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "maasfin/graph.hpp"
#include "maasfin/loss.hpp"
#include "maasfin/metric.hpp"
#include "maasfin/optimizer.hpp"
#include "maasfin/regularization.hpp"

namespace maasfin {

// The data of one loop: inputs (N rows each), targets (N x y_cols), optional sample weights.
struct Batches {
    std::vector<const float*> x;
    const float* y = nullptr;
    Index y_cols = 0;
    const float* w = nullptr;
    Index N = 0;
    const std::int64_t* order = nullptr;  // row permutation of length N, or null for 0..N-1
    Index batch_size = 32;
};

// Called with (batches done in this call, running loss); returning false stops the loop early.
using ProgressFn = std::function<bool(Index, double)>;

// A metric as compiled: its log name, its state, and whether sample weights apply to it
// (Keras: `metrics` ignore sample weights, `weighted_metrics` use them).
struct CompiledMetric {
    std::string name;
    std::shared_ptr<Metric> metric;
    bool weighted = false;
};

class Trainer {
public:
    Trainer(std::shared_ptr<Graph> graph, std::unique_ptr<Loss> loss, std::shared_ptr<Optimizer> optimizer,
            std::vector<CompiledMetric> metrics, std::vector<Range> trainable = {});

    // Runs training batches [first, last) of the epoch described by `b`. Returns batches run.
    Index train(const Batches& b, Index first, Index last, std::uint64_t seed, const ProgressFn& progress);
    // Loss and metrics over batches [first, last) of `b` (last < 0: to the end) without updating
    // anything. Metrics accumulate: reset_metrics() starts a new evaluation.
    void evaluate(const Batches& b, Index first, Index last);
    // Forward + loss + backward on all rows as one batch; fills the gradient arena; returns the loss.
    double compute_gradients(const Batches& b, bool training, std::uint64_t seed);

    // Weight penalties added to the loss (and its gradient) and constraints applied after each step.
    void set_regularization(std::vector<Penalty> penalties, std::vector<Constraint> constraints);

    // With `stop` set, a batch whose loss, gradients or updated weights are not finite is not
    // applied: the loop stops and the weights stay those of the last good batch (the epoch's
    // reported loss becomes NaN).
    void set_stop_on_nonfinite(bool stop) { stop_on_nonfinite_ = stop; }
    // True once a batch was stopped that way (until reset_metrics).
    bool stopped_on_nonfinite() const { return stopped_on_nonfinite_; }

    void reset_metrics();
    // ("loss", {value}) first, then each metric by its name.
    std::vector<std::pair<std::string, std::vector<double>>> results() const;

    Optimizer& optimizer() { return *optimizer_; }
    const Loss& loss() const { return *loss_; }
    const Graph& graph() const { return *graph_; }

private:
    const float* gather(const Batches& b, Index start, Index n, std::vector<const float*>& xb, const float*& wb);
    double run_batch(const Batches& b, Index start, Index n, bool update, std::uint64_t seed, bool training);
    // Regularization terms of the loss for the current forward pass on ws_.
    double penalties() const;

    std::shared_ptr<Graph> graph_;
    std::unique_ptr<Loss> loss_;
    std::shared_ptr<Optimizer> optimizer_;
    std::vector<CompiledMetric> metrics_;
    std::vector<Range> trainable_;  // arena slices the optimizer updates (empty: all)
    std::vector<Range> variables_;  // weight tensors, for per-variable gradient clipping
    std::vector<Penalty> penalties_;
    bool stop_on_nonfinite_ = false, stopped_on_nonfinite_ = false;
    std::vector<Constraint> constraints_;
    Workspace ws_;
    std::vector<FloatVec> xbuf_;
    FloatVec ybuf_, wbuf_, dout_, backup_;
    double loss_sum_ = 0.0, loss_count_ = 0.0;
};

}  // namespace maasfin
