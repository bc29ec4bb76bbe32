// Internal: the process-wide oneDNN engine, per-thread streams, and a bounded LRU cache of primitives.
// Only files under kernels/onednn/ include dnnl.hpp.
#pragma once

#include <dnnl.hpp>
#include <functional>
#include <string>

#include "maasfin/common.hpp"

namespace maasfin::kernels::onednn {

dnnl::engine& engine();
// One stream per calling thread, so that concurrent predict calls never share a stream.
dnnl::stream& stream();
// Returns the cached primitive for `key`, creating it with `make` on a miss. Thread-safe.
dnnl::primitive get_primitive(const std::string& key, const std::function<dnnl::primitive()>& make);
// Applies the configured thread count to the calling thread's OpenMP pool.
void apply_num_threads();

}  // namespace maasfin::kernels::onednn
