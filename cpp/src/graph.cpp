#include "maasfin/graph.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

#include "maasfin/kernels.hpp"
#include "maasfin/regularization.hpp"
#include "maasfin/rng.hpp"

namespace maasfin {

int Graph::add_input(const Shape& shape, const std::string& name) {
    if (built_) throw InvalidArgument("cannot add an input to a model that is already built");
    for (Index d : shape)
        if (d <= 0)
            throw InvalidArgument("Input '" + name + "': every dimension must be positive, got " + shape_str(shape));
    Node n;
    n.shape = shape;
    n.name = name;
    nodes_.push_back(std::move(n));
    inputs_.push_back(static_cast<int>(nodes_.size()) - 1);
    return inputs_.back();
}

int Graph::add_layer(std::shared_ptr<Layer> layer, const std::vector<int>& inputs) {
    if (built_) throw InvalidArgument("cannot add layers to a model that is already built");
    if (!layer) throw InvalidArgument("add_layer: no layer given");
    std::vector<Shape> in_shapes;
    for (int i : inputs) {
        if (i < 0 || i >= static_cast<int>(nodes_.size()))
            throw InvalidArgument("layer '" + layer->name() + "' is called on a tensor of another model");
        in_shapes.push_back(nodes_[i].shape);
    }
    const std::size_t first_param = alloc_.specs().size();
    Node n;
    n.shape = layer->build(in_shapes, alloc_);
    n.params.assign(alloc_.specs().begin() + static_cast<std::ptrdiff_t>(first_param), alloc_.specs().end());
    n.layer = std::move(layer);
    n.inputs = inputs;
    n.name = n.layer->name();
    const int id = static_cast<int>(nodes_.size());
    nodes_.push_back(std::move(n));
    for (int i : inputs) nodes_[i].consumers.push_back(id);
    return id;
}

void Graph::build(int output, std::uint64_t seed, Index max_params) {
    if (built_) throw InvalidArgument("model is already built");
    if (output < 0 || output >= static_cast<int>(nodes_.size()))
        throw InvalidArgument("build: output is not a node of this model");
    if (max_params >= 0 && alloc_.size() > max_params)  // before anything is allocated
        throw InvalidArgument("the model needs " + std::to_string(alloc_.size()) + " parameters, more than the " +
                              std::to_string(max_params) + " allowed");
    output_ = output;
    // Live nodes are the ancestors of the output.
    std::vector<int> stack{output};
    while (!stack.empty()) {
        int id = stack.back();
        stack.pop_back();
        if (nodes_[id].live) continue;
        nodes_[id].live = true;
        for (int i : nodes_[id].inputs) stack.push_back(i);
    }
    for (int in : inputs_)
        if (!nodes_[in].live) throw InvalidArgument("Input '" + nodes_[in].name + "' is not connected to the output");
    for (int id = 0; id < static_cast<int>(nodes_.size()); ++id)
        if (nodes_[id].layer && nodes_[id].live) order_.push_back(id);
    params_.assign(static_cast<std::size_t>(alloc_.size()), 0.f);
    std::uint64_t k = 0;
    for (int id : order_)
        for (const ParamSpec& p : nodes_[id].params)
            initialize(p.init, params_.data() + p.offset, p.shape, rng::hash(seed, 0x5eed, k++));
    build_frontier();
    built_ = true;
}

void Graph::build_frontier() {
    const int n = static_cast<int>(nodes_.size());
    // Frozen: what explanations treat as fixed encoding. Inputs and non-differentiable layers,
    // then (to a fixed point) differentiable layers fed only by frozen nodes that feed only
    // frozen nodes (e.g. a Normalization in front of a Discretization).
    std::vector<char> frozen(static_cast<std::size_t>(n), 0);
    for (int id = 0; id < n; ++id)
        frozen[id] = nodes_[id].live && (!nodes_[id].layer || !nodes_[id].layer->differentiable());
    auto live_consumers_frozen = [&](int id) {
        for (int c : nodes_[id].consumers)
            if (nodes_[c].live && !frozen[c]) return false;
        return true;
    };
    for (bool changed = true; changed;) {
        changed = false;
        for (int id : order_) {
            if (frozen[id] || id == output_ || !live_consumers_frozen(id)) continue;
            bool all_in = true;
            for (int i : nodes_[id].inputs) all_in = all_in && frozen[i];
            if (all_in) frozen[id] = changed = true;
        }
    }
    frontier_.clear();
    upstream_.clear();
    downstream_.clear();
    for (int id = 0; id < n; ++id)
        if (nodes_[id].live && frozen[id] && (id == output_ || !live_consumers_frozen(id))) frontier_.push_back(id);
    for (int id : order_) (frozen[id] ? upstream_ : downstream_).push_back(id);
    // Where each frozen value comes from, propagated in node order.
    std::vector<std::vector<SlotSource>> src(static_cast<std::size_t>(n));
    std::vector<std::vector<int>> deps(static_cast<std::size_t>(n));
    for (int k = 0; k < static_cast<int>(inputs_.size()); ++k) {
        const int id = inputs_[k];
        deps[id] = {k};
        src[id].resize(static_cast<std::size_t>(numel(nodes_[id].shape)));
        for (Index j = 0; j < numel(nodes_[id].shape); ++j) src[id][j] = {k, j};
    }
    for (int id : upstream_) {
        const Node& nd = nodes_[id];
        std::vector<int>& d = deps[id];
        for (int i : nd.inputs) d.insert(d.end(), deps[i].begin(), deps[i].end());
        std::sort(d.begin(), d.end());
        d.erase(std::unique(d.begin(), d.end()), d.end());
        const Index width = numel(nd.shape);
        src[id].assign(static_cast<std::size_t>(width), {d.size() == 1 ? d[0] : -1, -1});
        if (nd.inputs.size() == 1 && !nd.layer->differentiable()) {
            const std::vector<SlotSource>& in = src[nd.inputs[0]];
            for (Index k = 0; k < width; ++k) {
                const Index e = nd.layer->source_element(k, static_cast<Index>(in.size()));
                if (e >= 0 && e < static_cast<Index>(in.size())) src[id][k] = in[e];
            }
        }
    }
    frontier_sources_.clear();
    frontier_inputs_.clear();
    for (int id : frontier_) {
        frontier_sources_.push_back(src[id]);
        frontier_inputs_.push_back(deps[id]);
    }
}

void Graph::frontier_values(const std::vector<const float*>& x, Index N, const std::vector<float*>& z) const {
    if (!built_) throw InvalidArgument("the model is not built");
    if (x.size() != inputs_.size() || z.size() != frontier_.size())
        throw InvalidArgument("frontier_values: expected " + std::to_string(inputs_.size()) + " inputs and " +
                              std::to_string(frontier_.size()) + " outputs");
    auto ws = acquire();
    reserve(*ws, N, false);
    for (std::size_t i = 0; i < inputs_.size(); ++i) ws->out_ptr[inputs_[i]] = x[i];
    run_forward(*ws, upstream_, N, false, 0, false);
    for (std::size_t k = 0; k < frontier_.size(); ++k) {
        const float* v = ws->out_ptr[frontier_[k]];
        std::copy(v, v + N * numel(nodes_[frontier_[k]].shape), z[k]);
    }
    release(std::move(ws));
}

void Graph::frontier_gradients(const std::vector<const float*>& z, Index N, const float* d_out,
                               const std::vector<float*>& dz) const {
    if (!built_) throw InvalidArgument("the model is not built");
    if (z.size() != frontier_.size() || dz.size() != frontier_.size())
        throw InvalidArgument("frontier_gradients: expected " + std::to_string(frontier_.size()) + " values");
    gradients_at(frontier_, z, downstream_, N, d_out, dz);
}

void Graph::gradients_at(const std::vector<int>& sources, const std::vector<const float*>& values,
                         const std::vector<int>& order, Index N, const float* d_out,
                         const std::vector<float*>& out) const {
    // Explanations: the forward and the input gradients batch-invariant too (see kernels.hpp).
    kernels::RowInvariant invariant;
    auto ws = acquire();
    reserve(*ws, N, true);
    ws->rows = N;
    ws->training = false;
    for (std::size_t k = 0; k < sources.size(); ++k) ws->out_ptr[sources[k]] = values[k];
    run_forward(*ws, order, N, false, 0, true);
    ws->d_out.assign(d_out, d_out + N * numel(output_shape()));
    if (static_cast<Index>(ws->param_scratch.size()) < param_count())
        ws->param_scratch.resize(static_cast<std::size_t>(param_count()));
    backward_impl(*ws, order, ws->d_out.data(), N, 0, ws->param_scratch.data(), true, false);
    for (std::size_t k = 0; k < sources.size(); ++k) {
        const int id = sources[k];
        const float* g = id == output_ ? ws->d_out.data() : ws->grad[id].data();
        std::copy(g, g + N * numel(nodes_[id].shape), out[k]);
    }
    release(std::move(ws));
}

void Graph::reserve(Workspace& ws, Index N, bool for_backward) const {
    const std::size_t nn = nodes_.size();
    if (ws.act.size() != nn) {
        ws.act.assign(nn, {});
        ws.saved.assign(nn, {});
        ws.grad.assign(nn, {});
        ws.out_ptr.assign(nn, nullptr);
    }
    for (int id : order_) {
        const Node& n = nodes_[id];
        const std::size_t sz = static_cast<std::size_t>(N * numel(n.shape));
        if (ws.act[id].size() < sz) ws.act[id].resize(sz);
        if (for_backward) {
            const std::size_t ss = static_cast<std::size_t>(n.layer->saved_size(N));
            if (ws.saved[id].size() < ss) ws.saved[id].resize(ss);
            for (int i : n.inputs) {
                const std::size_t gs = static_cast<std::size_t>(N * numel(nodes_[i].shape));
                if (ws.grad[i].size() < gs) ws.grad[i].resize(gs);
            }
        }
    }
}

const float* Graph::forward(Workspace& ws, const std::vector<const float*>& x, Index N, bool training,
                            std::uint64_t seed, bool for_backward) const {
    reserve(ws, N, for_backward);
    ws.rows = N;
    ws.training = training;
    for (std::size_t i = 0; i < inputs_.size(); ++i) ws.out_ptr[inputs_[i]] = x[i];
    run_forward(ws, order_, N, training, seed, for_backward);
    return ws.out_ptr[output_];
}

void Graph::run_forward(Workspace& ws, const std::vector<int>& order, Index N, bool training, std::uint64_t seed,
                        bool for_backward) const {
    // Inference forwards (predict, evaluate, explanations) are batch-invariant; see kernels.hpp.
    std::optional<kernels::RowInvariant> invariant;
    if (!training) invariant.emplace();
    ForwardArgs a;
    a.N = N;
    a.params = params_.data();
    a.training = training;
    for (int id : order) {
        const Node& n = nodes_[id];
        a.x.clear();
        for (int i : n.inputs) a.x.push_back(ws.out_ptr[i]);
        a.y = ws.act[id].data();
        a.saved = for_backward ? ws.saved[id].data() : nullptr;
        a.seed = rng::hash(seed, static_cast<std::uint64_t>(id), 0);
        n.layer->forward(a);
        ws.out_ptr[id] = a.y;
    }
}

void Graph::set_activity_regularizer(int node, double l1, double l2) {
    if (node < 0 || node >= static_cast<int>(nodes_.size()) || !nodes_[node].layer)
        throw InvalidArgument("activity regularizer: not a layer node");
    if (!(l1 >= 0 && l2 >= 0)) throw InvalidArgument("activity regularizer: l1 and l2 must be >= 0");
    nodes_[node].activity_l1 = l1;
    nodes_[node].activity_l2 = l2;
}

double Graph::activity_penalty(const Workspace& ws) const {
    double total = 0.0;
    for (int id : order_) {
        const Node& n = nodes_[id];
        if (n.activity_l1 > 0 || n.activity_l2 > 0)
            total += maasfin::activity_penalty(n.activity_l1, n.activity_l2, ws.out_ptr[id], ws.rows * numel(n.shape));
    }
    return total;
}

void Graph::backward(Workspace& ws, const std::vector<const float*>&, float* d_out, Index N, std::uint64_t seed) {
    backward_impl(ws, order_, d_out, N, seed, grads(), false, true);
}

void Graph::input_gradients(const std::vector<const float*>& x, Index N, const float* d_out,
                            const std::vector<float*>& dx) const {
    if (!built_) throw InvalidArgument("the model is not built");
    if (x.size() != inputs_.size() || dx.size() != inputs_.size())
        throw InvalidArgument("input_gradients: expected " + std::to_string(inputs_.size()) + " inputs");
    gradients_at(inputs_, x, order_, N, d_out, dx);
}

void Graph::backward_impl(Workspace& ws, const std::vector<int>& order, float* d_out, Index N, std::uint64_t seed,
                          float* param_grads, bool inputs, bool activity) const {
    std::vector<char> written(nodes_.size(), 0);
    thread_local std::vector<FloatVec> scratch;
    BackwardArgs a;
    a.N = N;
    a.params = params_.data();
    a.grads = param_grads;
    a.training = ws.training;
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        const int id = *it;
        const Node& n = nodes_[id];
        a.x.clear();
        a.dx.clear();
        for (int i : n.inputs) a.x.push_back(ws.out_ptr[i]);
        a.y = ws.out_ptr[id];
        float* dy = id == output_ ? d_out : ws.grad[id].data();
        if (activity && (n.activity_l1 > 0 || n.activity_l2 > 0))
            add_activity_grad(n.activity_l1, n.activity_l2, ws.out_ptr[id], dy, N * numel(n.shape));
        a.dy = dy;
        a.saved = ws.saved[id].data();
        a.seed = rng::hash(seed, static_cast<std::uint64_t>(id), 0);
        if (scratch.size() < n.inputs.size()) scratch.resize(n.inputs.size());
        std::vector<int> accumulate;
        for (std::size_t j = 0; j < n.inputs.size(); ++j) {
            const int i = n.inputs[j];
            if (!nodes_[i].layer && !inputs) {
                a.dx.push_back(nullptr);  // model inputs need no gradient for training
            } else if (!written[i]) {
                a.dx.push_back(ws.grad[i].data());
                written[i] = 1;
            } else {
                const std::size_t sz = static_cast<std::size_t>(N * numel(nodes_[i].shape));
                if (scratch[j].size() < sz) scratch[j].resize(sz);
                a.dx.push_back(scratch[j].data());
                accumulate.push_back(static_cast<int>(j));
            }
        }
        n.layer->backward(a);
        for (int j : accumulate) {
            float* dst = ws.grad[n.inputs[j]].data();
            const Index sz = N * numel(nodes_[n.inputs[j]].shape);
            for (Index k = 0; k < sz; ++k) dst[k] += scratch[j][k];
        }
    }
}

void Graph::update_states(const Workspace& ws, Index N) {
    for (int id : order_) nodes_[id].layer->update_state(params_.data(), ws.saved[id].data(), N);
}

std::vector<Range> Graph::variables() const {
    std::vector<Range> out;
    for (int id : order_)
        for (const ParamSpec& p : nodes_[id].params) out.push_back({p.offset, p.offset + numel(p.shape)});
    return out;
}

std::unique_ptr<Workspace> Graph::acquire() const {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (pool_.empty()) return std::make_unique<Workspace>();
    auto ws = std::move(pool_.back());
    pool_.pop_back();
    return ws;
}

void Graph::release(std::unique_ptr<Workspace> ws) const {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (pool_.size() < 64) pool_.push_back(std::move(ws));
}

Index Graph::floats_per_row() const {
    Index floats = 0;
    for (const Node& n : nodes_) floats += numel(n.shape);
    return std::max<Index>(floats, 1);
}

Index Graph::auto_tile() const { return std::clamp<Index>(kAutoTileBytes / (4 * floats_per_row()), 32, 4096); }

void Graph::predict(const std::vector<const float*>& x, Index N, float* out, Index batch_size) const {
    if (!built_) throw InvalidArgument("the model is not built");
    if (static_cast<int>(x.size()) != num_inputs())
        throw InvalidArgument("predict: expected " + std::to_string(num_inputs()) + " inputs, got " +
                              std::to_string(x.size()));
    if (batch_size < 0) throw InvalidArgument("batch_size must be positive (or 0 for the automatic tile)");
    if (batch_size == 0) batch_size = auto_tile();
    auto ws = acquire();
    const Index out_cols = numel(output_shape());
    std::vector<const float*> xb(x.size());
    for (Index start = 0; start < N; start += batch_size) {
        const Index n = std::min(batch_size, N - start);
        for (std::size_t i = 0; i < x.size(); ++i) xb[i] = x[i] + start * numel(input_shape(static_cast<int>(i)));
        const float* y = forward(*ws, xb, n, false, 0, false);
        std::memcpy(out + start * out_cols, y, sizeof(float) * static_cast<std::size_t>(n * out_cols));
    }
    release(std::move(ws));
}

}  // namespace maasfin
