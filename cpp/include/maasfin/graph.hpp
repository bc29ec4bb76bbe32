// Graph: a DAG of layer nodes built once, then run many times. Sequential is a chain.
// Nodes are appended in topological order (a node's inputs must already exist).
//
// Owns the parameter arena and its gradient twin. Threading: predict() is const and thread-safe
// (each call borrows a workspace from a pool); training entry points must not run concurrently
// with each other, but may run while other threads predict only if no optimizer step is running.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "maasfin/layer.hpp"

namespace maasfin {

// Per-call activation storage, reused across batches of a loop.
struct Workspace {
    std::vector<FloatVec> act;          // node outputs (inputs' entries unused: they point at user data)
    std::vector<FloatVec> saved;        // per-node scratch from forward to backward
    std::vector<FloatVec> grad;         // dL/d(node output)
    std::vector<const float*> out_ptr;  // where each node's output lives this batch
    FloatVec param_scratch;             // parameter gradients nobody asked for (input_gradients)
    FloatVec d_out;                     // a writable copy of dL/d(output)
    Index capacity_rows = 0;
    Index rows = 0;         // N of the last forward pass
    bool training = false;  // its mode
};

class Graph {
public:
    // Returns the node id of a new model input with per-sample `shape`.
    int add_input(const Shape& shape, const std::string& name);
    // Appends `layer` applied to `inputs` (existing node ids); returns its node id.
    int add_layer(std::shared_ptr<Layer> layer, const std::vector<int>& inputs);
    // Builds every layer in order, allocates the arena and initialises it from `seed`. With
    // max_params >= 0, a model whose arena would need more floats is refused (InvalidArgument)
    // before anything is allocated: loaders pass what the file's weights account for.
    void build(int output, std::uint64_t seed, Index max_params = -1);
    bool built() const { return built_; }

    int num_inputs() const { return static_cast<int>(inputs_.size()); }
    const Shape& input_shape(int i) const { return nodes_[inputs_[i]].shape; }
    const std::string& input_name(int i) const { return nodes_[inputs_[i]].name; }
    const Shape& output_shape() const { return nodes_[output_].shape; }
    const Shape& node_shape(int id) const { return nodes_[id].shape; }
    const std::vector<int>& node_inputs(int id) const { return nodes_[id].inputs; }
    int num_nodes() const { return static_cast<int>(nodes_.size()); }
    Layer* layer(int id) const { return nodes_[id].layer.get(); }
    const std::vector<ParamSpec>& layer_params(int id) const { return nodes_[id].params; }

    // Every weight tensor of the live layers as an arena slice, in execution order.
    std::vector<Range> variables() const;

    float* params() { return params_.data(); }
    const float* params() const { return params_.data(); }
    // The gradient arena is allocated on first use (training), so a model that only predicts holds
    // one copy of its parameters. A training entry point; not thread-safe.
    float* grads() {
        if (grads_.size() != params_.size()) grads_.assign(params_.size(), 0.f);
        return grads_.data();
    }
    Index param_count() const { return static_cast<Index>(params_.size()); }

    // Inference over N rows in chunks of batch_size (0: auto_tile()); out is N x numel(output
    // shape). Inference is batch-invariant (kernels.hpp), so the tile never changes the answers.
    // Thread-safe.
    void predict(const std::vector<const float*>& x, Index N, float* out, Index batch_size) const;
    // Floats of layer outputs (inputs included) per row, and the rows per predict tile chosen for
    // speed: as many as keep those outputs within kAutoTileBytes, between 32 and 4,096.
    Index floats_per_row() const;
    Index auto_tile() const;
    static constexpr Index kAutoTileBytes = 2 << 20;  // the outputs of a tile stay in a core's L2 cache

    // One forward pass over a batch of N rows; with `for_backward`, keeps what backward needs.
    // `training` selects training behaviour (dropout on). Returns the output (N x numel(output shape)).
    const float* forward(Workspace& ws, const std::vector<const float*>& x, Index N, bool training, std::uint64_t seed,
                         bool for_backward) const;
    // Keras activity regularizer on a node's output: l1 * sum|y| + l2 * sum y^2 per batch.
    void set_activity_regularizer(int node, double l1, double l2);
    // The activity penalty of the last forward pass on ws.
    double activity_penalty(const Workspace& ws) const;
    // Lets every layer update its non-trainable state from a training forward pass on ws.
    void update_states(const Workspace& ws, Index N);
    // Backward from dL/d(output); fills the gradient arena. Call after forward on the same ws.
    void backward(Workspace& ws, const std::vector<const float*>& x, float* d_out, Index N, std::uint64_t seed);

    // Gradients of sum_{i,k} d_out[i,k] * out[i,k] w.r.t. every input, in inference mode.
    // d_out: N x numel(output shape); dx: one N x numel(input shape) buffer per input.
    // Const and thread-safe: uses its own workspace and parameter-gradient scratch.
    void input_gradients(const std::vector<const float*>& x, Index N, const float* d_out,
                         const std::vector<float*>& dx) const;

    // -- explanations in the encoded space ------------------------------------------------------
    // The attribution frontier (set at build): the nodes after the last non-differentiable layer
    // on every path from an input, in node order; for a model without such layers, its inputs.
    // The output is a differentiable function of the frontier's values.
    struct SlotSource {
        int input = -1;      // the model input this value derives from; -1: several inputs
        Index element = -1;  // the element of that input (per sample); -1: several elements
    };
    const std::vector<int>& frontier() const { return frontier_; }
    // Per sample value of frontier node k (an index into frontier()): where each one comes from.
    const std::vector<SlotSource>& frontier_sources(int k) const { return frontier_sources_[k]; }
    // The model inputs frontier node k depends on.
    const std::vector<int>& frontier_inputs(int k) const { return frontier_inputs_[k]; }
    // Values of the frontier nodes for inputs x, in inference mode: one N x numel(shape) buffer
    // per frontier node. Const and thread-safe.
    void frontier_values(const std::vector<const float*>& x, Index N, const std::vector<float*>& z) const;
    // Gradients of sum_{i,k} d_out[i,k] * out[i,k] w.r.t. the frontier values z (one buffer per
    // frontier node), the output computed from z in inference mode. Const and thread-safe.
    void frontier_gradients(const std::vector<const float*>& z, Index N, const float* d_out,
                            const std::vector<float*>& dz) const;

private:
    struct Node {
        std::shared_ptr<Layer> layer;  // null for an input
        std::vector<int> inputs;
        std::vector<int> consumers;
        Shape shape;
        std::string name;
        std::vector<ParamSpec> params;
        bool live = false;  // on a path to the output
        double activity_l1 = 0.0, activity_l2 = 0.0;
    };
    void reserve(Workspace& ws, Index N, bool for_backward) const;
    // Runs the layer nodes of `order` (their inputs' out_ptr already set).
    void run_forward(Workspace& ws, const std::vector<int>& order, Index N, bool training, std::uint64_t seed,
                     bool for_backward) const;
    // Backward core over `order` (reversed): parameter gradients go to `param_grads`; with
    // `inputs`, model inputs get gradients in ws.grad too; `activity` adds activity-regularizer
    // gradients.
    void backward_impl(Workspace& ws, const std::vector<int>& order, float* d_out, Index N, std::uint64_t seed,
                       float* param_grads, bool inputs, bool activity) const;
    void build_frontier();
    // Gradients of sum(d_out * output) w.r.t. the values of nodes `sources`, the output computed
    // from them by the layer nodes of `order` in inference mode: one buffer per source.
    void gradients_at(const std::vector<int>& sources, const std::vector<const float*>& values,
                      const std::vector<int>& order, Index N, const float* d_out, const std::vector<float*>& out) const;
    std::unique_ptr<Workspace> acquire() const;
    void release(std::unique_ptr<Workspace> ws) const;

    std::vector<Node> nodes_;
    // Hands out absolute arena offsets as layers are added; a layer that fails to build may leave
    // a few unused floats behind, which costs nothing.
    ParamAllocator alloc_;
    std::vector<int> inputs_;
    std::vector<int> order_;  // live layer nodes in execution order
    // Explanations: layer nodes computing the frontier from the inputs, and the frontier's
    // consumers up to the output, each in execution order.
    std::vector<int> upstream_, downstream_;
    std::vector<int> frontier_;
    std::vector<std::vector<SlotSource>> frontier_sources_;
    std::vector<std::vector<int>> frontier_inputs_;
    int output_ = -1;
    bool built_ = false;
    FloatVec params_, grads_;
    mutable std::mutex pool_mu_;
    mutable std::vector<std::unique_ptr<Workspace>> pool_;
};

}  // namespace maasfin
