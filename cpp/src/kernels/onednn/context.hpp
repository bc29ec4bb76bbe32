// Internal: the process-wide oneDNN engine, per-thread streams, and a bounded LRU cache of primitives.
// Only files under kernels/onednn/ include dnnl.hpp.
#pragma once

#include <dnnl.hpp>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "maasfin/activation.hpp"
#include "maasfin/common.hpp"

namespace maasfin::kernels::onednn {

dnnl::engine& engine();
// One stream per calling thread, so that concurrent predict calls never share a stream.
dnnl::stream& stream();

// A cached primitive and the scratchpad it needs. Primitives are created with a user-managed
// scratchpad: a library-managed one is shared by every execution of the primitive, which makes
// concurrent executions from several threads corrupt each other's results.
struct Cached {
    dnnl::primitive prim;
    dnnl::memory::desc scratchpad;
    // Op-specific layout fixed at creation: the weights layout a convolution chose, the
    // workspace of a max pooling. Kept here so that a cache hit needs no descriptor query.
    dnnl::memory::desc aux = {};
    // More such layouts for primitives with several (the weights, workspace and gradient layouts
    // of the RNN primitives).
    std::vector<dnnl::memory::desc> more = {};
};
// Returns the cached primitive for `key`, creating it with `make` on a miss. Thread-safe.
Cached get_primitive(const std::string& key, const std::function<Cached()>& make);
// A scratchpad memory for `desc`, owned by the calling thread and reused across calls.
dnnl::memory thread_scratchpad(const dnnl::memory::desc& desc);
// Appends the post-op for `act` (Keras semantics); false when oneDNN has no exact equivalent.
bool append_activation(dnnl::post_ops& ops, Activation act);
// Runs `prim` on the calling thread's stream with a per-thread user scratchpad and waits.
void execute(const Cached& cached, std::unordered_map<int, dnnl::memory>& args);
// Applies the configured thread count to the calling thread's OpenMP pool.
void apply_num_threads();

}  // namespace maasfin::kernels::onednn
