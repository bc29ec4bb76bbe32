#include "context.hpp"

#include <omp.h>

#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "../backends.hpp"

namespace maasfin::kernels::onednn {

namespace {
struct Cache {
    std::mutex mu;
    std::list<std::pair<std::string, Cached>> lru;  // front = most recent
    std::unordered_map<std::string, decltype(lru)::iterator> index;
    Index capacity = 64;
    void trim() {
        while (static_cast<Index>(lru.size()) > capacity) {
            index.erase(lru.back().first);
            lru.pop_back();
        }
    }
};
Cache& cache() {
    static Cache c;
    return c;
}
int g_threads = 0;  // 0: OpenMP's default
}  // namespace

dnnl::engine& engine() {
    static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    return eng;
}

dnnl::stream& stream() {
    thread_local dnnl::stream s(engine());
    return s;
}

Cached get_primitive(const std::string& key, const std::function<Cached()>& make) {
    Cache& c = cache();
    {
        std::lock_guard<std::mutex> lock(c.mu);
        auto it = c.index.find(key);
        if (it != c.index.end()) {
            c.lru.splice(c.lru.begin(), c.lru, it->second);
            return it->second->second;
        }
    }
    // Created outside the lock: creation takes ~100 us and must not block other threads' hits.
    Cached p = make();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.index.find(key);
    if (it != c.index.end()) return it->second->second;
    c.lru.emplace_front(key, p);
    c.index[key] = c.lru.begin();
    c.trim();
    return p;
}

dnnl::memory thread_scratchpad(const dnnl::memory::desc& desc) {
    thread_local std::vector<unsigned char> buffer;
    const std::size_t bytes = desc.get_size();
    if (buffer.size() < bytes) buffer.resize(bytes);
    return dnnl::memory(desc, engine(), bytes ? buffer.data() : nullptr);
}

bool append_activation(dnnl::post_ops& ops, Activation act) {
    using alg = dnnl::algorithm;
    switch (act) {
        case Activation::linear: return true;
        case Activation::relu: ops.append_eltwise(alg::eltwise_relu, 0.f, 0.f); return true;
        case Activation::leaky_relu: ops.append_eltwise(alg::eltwise_relu, 0.2f, 0.f); return true;
        case Activation::sigmoid: ops.append_eltwise(alg::eltwise_logistic, 0.f, 0.f); return true;
        case Activation::tanh: ops.append_eltwise(alg::eltwise_tanh, 0.f, 0.f); return true;
        case Activation::elu: ops.append_eltwise(alg::eltwise_elu, 1.f, 0.f); return true;
        case Activation::gelu: ops.append_eltwise(alg::eltwise_gelu_erf, 0.f, 0.f); return true;
        case Activation::swish: ops.append_eltwise(alg::eltwise_swish, 1.f, 0.f); return true;
        default: return false;
    }
}

void execute(const Cached& cached, std::unordered_map<int, dnnl::memory>& args) {
    args[DNNL_ARG_SCRATCHPAD] = thread_scratchpad(cached.scratchpad);
    apply_num_threads();
    auto& s = stream();
    cached.prim.execute(s, args);
    s.wait();
}

void set_cache_capacity(Index n) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    c.capacity = n < 1 ? 1 : n;
    c.trim();
}

Index cache_size() {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    return static_cast<Index>(c.lru.size());
}

void set_num_threads(int n) { g_threads = n < 0 ? 0 : n; }
int num_threads() { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

std::string version() {
    const dnnl_version_t* v = dnnl_version();
    return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

void apply_num_threads() {
    if (g_threads > 0 && omp_get_max_threads() != g_threads) omp_set_num_threads(g_threads);
}

}  // namespace maasfin::kernels::onednn
