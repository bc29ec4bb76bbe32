#include "maasfin/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "maasfin/rng.hpp"

namespace maasfin {

Trainer::Trainer(std::shared_ptr<Graph> graph, std::unique_ptr<Loss> loss, std::shared_ptr<Optimizer> optimizer,
                 std::vector<CompiledMetric> metrics, std::vector<Range> trainable)
    : graph_(std::move(graph)), loss_(std::move(loss)), optimizer_(std::move(optimizer)), metrics_(std::move(metrics)),
      trainable_(std::move(trainable)), variables_(graph_ ? graph_->variables() : std::vector<Range>{}) {
    if (!graph_ || !graph_->built()) throw InvalidArgument("compile: the model is not built");
    const Index D = numel(graph_->output_shape());
    for (const auto& m : metrics_)
        if (m.metric->target_width(D) != loss_->target_width(D))
            throw InvalidArgument("metric '" + m.name + "' expects " + std::to_string(m.metric->target_width(D)) +
                                  " target column(s) per row but the loss expects " +
                                  std::to_string(loss_->target_width(D)) +
                                  "; use the sparse variant of the metric with a sparse loss, and vice versa");
}

// Points xb/wb at rows [start, start+n) of the loop's data, copying only when rows are permuted.
const float* Trainer::gather(const Batches& b, Index start, Index n, std::vector<const float*>& xb, const float*& wb) {
    xb.resize(b.x.size());
    if (!b.order) {
        for (std::size_t i = 0; i < b.x.size(); ++i)
            xb[i] = b.x[i] + start * numel(graph_->input_shape(static_cast<int>(i)));
        wb = b.w ? b.w + start : nullptr;
        return b.y + start * b.y_cols;
    }
    xbuf_.resize(b.x.size());
    for (std::size_t i = 0; i < b.x.size(); ++i) {
        const Index cols = numel(graph_->input_shape(static_cast<int>(i)));
        xbuf_[i].resize(static_cast<std::size_t>(n * cols));
        for (Index r = 0; r < n; ++r)
            std::memcpy(xbuf_[i].data() + r * cols, b.x[i] + b.order[start + r] * cols, sizeof(float) * cols);
        xb[i] = xbuf_[i].data();
    }
    ybuf_.resize(static_cast<std::size_t>(n * b.y_cols));
    for (Index r = 0; r < n; ++r)
        std::memcpy(ybuf_.data() + r * b.y_cols, b.y + b.order[start + r] * b.y_cols, sizeof(float) * b.y_cols);
    wb = nullptr;
    if (b.w) {
        wbuf_.resize(static_cast<std::size_t>(n));
        for (Index r = 0; r < n; ++r) wbuf_[r] = b.w[b.order[start + r]];
        wb = wbuf_.data();
    }
    return ybuf_.data();
}

// One batch: forward, loss, metrics and, when `update`, backward and an optimizer step.
double Trainer::run_batch(const Batches& b, Index start, Index n, bool update, std::uint64_t seed, bool training) {
    std::vector<const float*> xb;
    const float* wb = nullptr;
    const float* yb = gather(b, start, n, xb, wb);
    const Index D = numel(graph_->output_shape());
    const float* out = graph_->forward(ws_, xb, n, training, seed, update);
    float* grad = nullptr;
    if (update) {
        dout_.resize(static_cast<std::size_t>(n * D));
        grad = dout_.data();
    }
    const double loss = loss_->reduced(out, yb, wb, n, D, grad) + penalties();
    loss_sum_ += loss * n;
    loss_count_ += n;
    for (auto& m : metrics_) m.metric->update(out, yb, m.weighted ? wb : nullptr, n, D, m.metric->target_width(D));
    if (update) {
        graph_->backward(ws_, xb, grad, n, seed);
        for (const Penalty& p : penalties_) add_penalty_grad(p, graph_->params(), graph_->grads());
        if (stop_on_nonfinite_ &&
            (!std::isfinite(loss) || first_nonfinite(graph_->grads(), graph_->param_count()) >= 0)) {
            stopped_on_nonfinite_ = true;
            return loss;
        }
        if (stop_on_nonfinite_) backup_.assign(graph_->params(), graph_->params() + graph_->param_count());
        optimizer_->step(graph_->params(), graph_->grads(), graph_->param_count(), trainable_, variables_);
        for (const Constraint& c : constraints_) apply_constraint(c, graph_->params());
        if (stop_on_nonfinite_ && first_nonfinite(graph_->params(), graph_->param_count()) >= 0) {
            // The step overflowed: put back the weights it started from.
            std::copy(backup_.begin(), backup_.end(), graph_->params());
            stopped_on_nonfinite_ = true;
            loss_sum_ = std::nan("");
            return loss;
        }
        graph_->update_states(ws_, n);
    }
    return loss;
}

Index Trainer::train(const Batches& b, Index first, Index last, std::uint64_t seed, const ProgressFn& progress) {
    if (b.batch_size <= 0) throw InvalidArgument("batch_size must be positive");
    using clock = std::chrono::steady_clock;
    auto last_report = clock::now();
    Index done = 0;
    for (Index k = first; k < last; ++k) {
        const Index start = k * b.batch_size;
        if (start >= b.N) break;
        const Index n = std::min(b.batch_size, b.N - start);
        const std::uint64_t step_seed = rng::hash(seed, static_cast<std::uint64_t>(optimizer_->iterations), 1);
        run_batch(b, start, n, true, step_seed, true);
        if (stopped_on_nonfinite_) break;
        ++done;
        if (progress && clock::now() - last_report > std::chrono::milliseconds(100)) {
            last_report = clock::now();
            if (!progress(done, loss_sum_ / loss_count_)) break;
        }
    }
    return done;
}

void Trainer::evaluate(const Batches& b, Index first, Index last) {
    if (b.batch_size <= 0) throw InvalidArgument("batch_size must be positive");
    const Index steps = (b.N + b.batch_size - 1) / b.batch_size;
    if (last < 0 || last > steps) last = steps;
    if (first < 0) throw InvalidArgument("first batch must be non-negative");
    for (Index k = first; k < last; ++k) {
        const Index start = k * b.batch_size;
        run_batch(b, start, std::min(b.batch_size, b.N - start), false, 0, false);
    }
}

double Trainer::compute_gradients(const Batches& b, bool training, std::uint64_t seed) {
    const Index D = numel(graph_->output_shape());
    const float* out = graph_->forward(ws_, b.x, b.N, training, seed, true);
    dout_.resize(static_cast<std::size_t>(b.N * D));
    const double loss = loss_->reduced(out, b.y, b.w, b.N, D, dout_.data());
    graph_->backward(ws_, b.x, dout_.data(), b.N, seed);
    for (const Penalty& p : penalties_) add_penalty_grad(p, graph_->params(), graph_->grads());
    return loss + penalties();
}

void Trainer::set_regularization(std::vector<Penalty> penalties, std::vector<Constraint> constraints) {
    for (const Penalty& p : penalties)
        if (p.range.begin < 0 || p.range.end > graph_->param_count() || p.range.begin > p.range.end || p.l1 < 0 ||
            p.l2 < 0)
            throw InvalidArgument("regularizer: bad weight range or negative factor");
    for (const Constraint& c : constraints) {
        check_constraint(c);
        if (c.range.begin < 0 || c.range.end > graph_->param_count())
            throw InvalidArgument("constraint: weight range outside the model");
    }
    penalties_ = std::move(penalties);
    constraints_ = std::move(constraints);
}

double Trainer::penalties() const {
    double total = graph_->activity_penalty(ws_);
    for (const Penalty& p : penalties_) total += penalty_value(p, graph_->params());
    return total;
}

void Trainer::reset_metrics() {
    loss_sum_ = loss_count_ = 0.0;
    stopped_on_nonfinite_ = false;
    for (auto& m : metrics_) m.metric->reset();
}

std::vector<std::pair<std::string, std::vector<double>>> Trainer::results() const {
    std::vector<std::pair<std::string, std::vector<double>>> r;
    r.emplace_back("loss", std::vector<double>{loss_count_ > 0 ? loss_sum_ / loss_count_ : 0.0});
    for (const auto& m : metrics_) r.emplace_back(m.name, m.metric->result());
    return r;
}

}  // namespace maasfin
