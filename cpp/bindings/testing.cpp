// maasfin._testing: the kernels' entry points for the backend-agreement tests and benchmarks, kept out
// of maasfin._core. pybind11 declarations only: shape checks, argument conversion, GIL release.
// Both modules link the one shared core, so _core.set_backend and the thread settings apply here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "maasfin/activation.hpp"
#include "maasfin/kernels.hpp"

namespace py = pybind11;
using namespace maasfin;
using namespace maasfin::bindings;

PYBIND11_MODULE(_testing, m) {
    m.doc() = "maasfin kernel entry points for tests (private)";

    // invariant=True runs the call under a RowInvariant guard, as Graph's inference forwards do.
    m.def("set_batch_invariant", &kernels::set_batch_invariant);
    m.def("batch_invariant", &kernels::batch_invariant);
    m.def(
        "dense_fwd",
        [](const FArray& src, const FArray& w, std::optional<FArray> b, const std::string& act, bool invariant) {
            require(src.ndim() == 2 && w.ndim() == 2 && w.shape(0) == src.shape(1),
                    "dense_fwd: src " + dims(src) + " and weights " + dims(w) + " do not chain");
            const Index N = src.shape(0), K = src.shape(1), D = w.shape(1);
            require(!b || b->size() == D, "dense_fwd: bias must have " + std::to_string(D) + " values");
            const Activation a = parse_activation(act);
            py::array_t<float> dst({N, D});
            float* out = dst.mutable_data();
            py::gil_scoped_release nogil;
            std::optional<kernels::RowInvariant> guard;
            if (invariant) guard.emplace();
            kernels::dense_fwd(src.data(), w.data(), b ? b->data() : nullptr, out, nullptr, N, K, D, a);
            return dst;
        },
        py::arg("src"), py::arg("w"), py::arg("b"), py::arg("act"), py::arg("invariant") = false);
    m.def("dense_bwd", [](const FArray& src, const FArray& w, const FArray& dy) {
        require(src.ndim() == 2 && w.ndim() == 2 && w.shape(0) == src.shape(1) && dy.ndim() == 2 &&
                    dy.shape(0) == src.shape(0) && dy.shape(1) == w.shape(1),
                "dense_bwd: src " + dims(src) + ", weights " + dims(w) + " and diff_dst " + dims(dy) + " do not match");
        const Index N = src.shape(0), K = src.shape(1), D = w.shape(1);
        py::array_t<float> dx({N, K}), dw({K, D}), db({D});
        float *pdx = dx.mutable_data(), *pdw = dw.mutable_data(), *pdb = db.mutable_data();
        {
            py::gil_scoped_release nogil;
            kernels::dense_bwd(src.data(), w.data(), dy.data(), pdx, pdw, pdb, N, K, D);
        }
        return py::make_tuple(dx, dw, db);
    });
    m.def(
        "batch_matmul",
        [](const FArray& a, bool a_t, const FArray& b, bool b_t, bool invariant) {
            require(a.ndim() == 3 && b.ndim() == 3 && a.shape(0) == b.shape(0) &&
                        a.shape(a_t ? 1 : 2) == b.shape(b_t ? 2 : 1),
                    "batch_matmul: " + dims(a) + " and " + dims(b) + " do not chain");
            const Index B = a.shape(0), M = a.shape(a_t ? 2 : 1), K = a.shape(a_t ? 1 : 2), N = b.shape(b_t ? 1 : 2);
            py::array_t<float> dst({B, M, N});
            float* out = dst.mutable_data();
            py::gil_scoped_release nogil;
            std::optional<kernels::RowInvariant> guard;
            if (invariant) guard.emplace();
            kernels::batch_matmul(a.data(), a_t, b.data(), b_t, out, B, M, K, N);
            return dst;
        },
        py::arg("a"), py::arg("a_t"), py::arg("b"), py::arg("b_t"), py::arg("invariant") = false);
    // The fused LSTM kernel over a whole sequence: None when dispatch leaves it to the layer's
    // per-step loop, else (y, dx, d_kernel, d_recurrent, d_bias) for the output gradient dy.
    m.def("lstm_sequence",
          [](const FArray& x, const FArray& kernel, const FArray& recurrent, const FArray& bias, const FArray& dy,
             bool go_backwards, bool return_sequences) -> py::object {
              require(x.ndim() == 3 && kernel.ndim() == 2 && recurrent.ndim() == 2 && kernel.shape(0) == x.shape(2) &&
                          recurrent.shape(1) == kernel.shape(1) && recurrent.shape(1) == 4 * recurrent.shape(0) &&
                          bias.size() == kernel.shape(1),
                      "lstm_sequence: x " + dims(x) + ", kernel " + dims(kernel) + ", recurrent_kernel " +
                          dims(recurrent) + " and bias " + dims(bias) + " do not match");
              kernels::LstmSpec s;
              s.N = x.shape(0), s.T = x.shape(1), s.D = x.shape(2), s.u = recurrent.shape(0);
              s.reverse = go_backwards, s.sequences = return_sequences;
              const Index out = return_sequences ? s.N * s.T * s.u : s.N * s.u;
              require(dy.size() == out, "lstm_sequence: dy " + dims(dy) + " does not match the output");
              py::array_t<float> y(return_sequences ? std::vector<Index>{s.N, s.T, s.u} : std::vector<Index>{s.N, s.u});
              py::array_t<float> dx({s.N, s.T, s.D}), dk({s.D, 4 * s.u}), dr({s.u, 4 * s.u}), db({4 * s.u});
              float *py_ = y.mutable_data(), *pdx = dx.mutable_data(), *pdk = dk.mutable_data(),
                    *pdr = dr.mutable_data(), *pdb = db.mutable_data();
              bool fused = false;
              {
                  py::gil_scoped_release nogil;
                  fused = kernels::lstm_fwd_bwd(s, x.data(), kernel.data(), recurrent.data(), bias.data(), dy.data(),
                                                py_, pdx, pdk, pdr, pdb);
              }
              if (!fused) return py::none();
              return py::make_tuple(y, dx, dk, dr, db);
          });
    m.def("eltwise_fwd", [](const FArray& src, const std::string& act) {
        require(src.ndim() == 2, "eltwise_fwd: src must be 2-D, got " + dims(src));
        const Index N = src.shape(0), D = src.shape(1);
        py::array_t<float> dst({N, D});
        kernels::eltwise_fwd(parse_activation(act), src.data(), dst.mutable_data(), N, D);
        return dst;
    });
    m.def("eltwise_bwd", [](const FArray& src, const FArray& dst, const FArray& dy, const std::string& act) {
        require(src.ndim() == 2 && dst.ndim() == 2 && dy.ndim() == 2 && dst.shape(0) == src.shape(0) &&
                    dst.shape(1) == src.shape(1) && dy.shape(0) == src.shape(0) && dy.shape(1) == src.shape(1),
                "eltwise_bwd: src " + dims(src) + ", dst " + dims(dst) + " and diff_dst " + dims(dy) + " differ");
        const Index N = src.shape(0), D = src.shape(1);
        py::array_t<float> dx({N, D});
        kernels::eltwise_bwd(parse_activation(act), src.data(), dst.data(), dy.data(), dx.mutable_data(), N, D);
        return dx;
    });
}
