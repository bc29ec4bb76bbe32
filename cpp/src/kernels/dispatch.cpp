// The one place that chooses a backend. oneDNN wins only on problems large enough to amortise its
// ~1 us per-call overhead (see docs/performance.md); small problems stay on the calling thread in
// the reference kernels.
#include <atomic>

#include "backends.hpp"

namespace maasfin::kernels {

namespace {
std::atomic<Backend> g_backend{Backend::automatic};
std::atomic<Index> g_min_macs{96 * 1024};

bool use_onednn(Index macs) {
    switch (g_backend.load(std::memory_order_relaxed)) {
        case Backend::reference: return false;
        case Backend::onednn: return true;
        default: return macs >= g_min_macs.load(std::memory_order_relaxed);
    }
}
}  // namespace

void set_backend(Backend b) { g_backend = b; }
Backend backend() { return g_backend; }
void set_onednn_min_macs(Index macs) { g_min_macs = macs < 0 ? 0 : macs; }
Index onednn_min_macs() { return g_min_macs; }
void set_primitive_cache_capacity(Index n) { onednn::set_cache_capacity(n); }
Index primitive_cache_size() { return onednn::cache_size(); }
void set_num_threads(int n) { onednn::set_num_threads(n); }
int num_threads() { return onednn::num_threads(); }
std::string onednn_version() { return onednn::version(); }

void dense_fwd(const float* src, const float* weights, const float* bias, float* dst, float* pre,
               Index N, Index D_in, Index D_out, Activation act) {
    if (use_onednn(N * D_in * D_out)) {
        if (pre) {
            onednn::dense_fwd(src, weights, bias, pre, N, D_in, D_out, Activation::linear);
            reference::eltwise_fwd(act, pre, dst, N, D_out);
            return;
        }
        if (onednn::dense_fwd(src, weights, bias, dst, N, D_in, D_out, act)) return;
        onednn::dense_fwd(src, weights, bias, dst, N, D_in, D_out, Activation::linear);
        reference::eltwise_fwd(act, dst, dst, N, D_out);
        return;
    }
    reference::dense_fwd(src, weights, bias, dst, pre, N, D_in, D_out, act);
}

void dense_bwd(const float* src, const float* weights, const float* diff_dst, float* diff_src,
               float* diff_weights, float* diff_bias, Index N, Index D_in, Index D_out) {
    if (use_onednn(N * D_in * D_out))
        onednn::dense_bwd(src, weights, diff_dst, diff_src, diff_weights, diff_bias, N, D_in, D_out);
    else
        reference::dense_bwd(src, weights, diff_dst, diff_src, diff_weights, diff_bias, N, D_in, D_out);
}

void eltwise_fwd(Activation act, const float* src, float* dst, Index N, Index D) {
    reference::eltwise_fwd(act, src, dst, N, D);
}

void eltwise_bwd(Activation act, const float* src, const float* dst, const float* diff_dst,
                 float* diff_src, Index N, Index D) {
    reference::eltwise_bwd(act, src, dst, diff_dst, diff_src, N, D);
}

}  // namespace maasfin::kernels
