// Bindings of the explanation entry points: argument checks and GIL release only.
#include "maasfin/explain.hpp"

#include <pybind11/stl.h>

#include "common.hpp"

namespace maasfin::bindings {

namespace {
void check_ig_args(Index B, Index N, Index steps, double tolerance) {
    require(B == 1 || B == N, "baseline must have 1 row or " + std::to_string(N) + " rows, got " + std::to_string(B));
    require(steps >= 1 && steps <= 4096, "steps must be in [1, 4096]");
    require(tolerance >= 0 && tolerance < 1, "tolerance must be 0 (fixed Gauss-Legendre) or in (0, 1)");
}
}  // namespace

void bind_explain(py::module_& m) {
    m.def(
        "input_gradients",
        [](const Graph& g, const std::vector<FArray>& x, const FArray& d_out) {
            require(g.built(), "the model is not built");
            const Index N = x.empty() || x[0].ndim() == 0 ? 0 : x[0].shape(0);
            check_inputs(g, x, N);
            require(d_out.size() == N * numel(g.output_shape()),
                    "d_out has shape " + dims(d_out) + ", expected " + std::to_string(N) + " rows of " +
                        std::to_string(numel(g.output_shape())) + " output(s)");
            std::vector<py::array_t<float>> out;
            std::vector<float*> dx;
            for (int i = 0; i < g.num_inputs(); ++i) {
                std::vector<py::ssize_t> shape{N};
                for (Index d : g.input_shape(i)) shape.push_back(d);
                out.emplace_back(shape);
                dx.push_back(out.back().mutable_data());
            }
            auto ptrs = pointers(x);
            {
                py::gil_scoped_release nogil;
                g.input_gradients(ptrs, N, d_out.data(), dx);
            }
            return out;
        },
        py::arg("graph"), py::arg("x"), py::arg("d_out"),
        "Gradients of sum(d_out * output) w.r.t. each input, in inference mode.");
    m.def(
        "integrated_gradients",
        [](const Graph& g, const FArray& x, const FArray& baseline, Index output, Index steps, double tolerance) {
            require(g.built(), "the model is not built");
            require(g.num_inputs() == 1, "integrated gradients need a model with one input");
            require(x.ndim() >= 1, "x must have a batch dimension");
            const Index N = x.shape(0), F = numel(g.input_shape(0));
            check_inputs(g, {x}, N);
            require(baseline.ndim() >= 1 && baseline.size() % std::max<Index>(F, 1) == 0,
                    "baseline has shape " + dims(baseline) + ", expected rows of " + std::to_string(F) + " values");
            check_ig_args(baseline.size() / F, N, steps, tolerance);
            const Index B = baseline.size() / F;
            py::array_t<float> out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
            float* dst = out.mutable_data();
            {
                py::gil_scoped_release nogil;
                integrated_gradients(g, x.data(), baseline.data(), B, N, output, steps, tolerance, dst);
            }
            return out;
        },
        py::arg("graph"), py::arg("x"), py::arg("baseline"), py::arg("output"), py::arg("steps"),
        py::arg("tolerance") = 0.0, "Integrated-gradients attributions (N x features) of one output column.");
    m.def(
        "frontier",
        [](const Graph& g) {
            require(g.built(), "the model is not built");
            py::list out;
            for (int k = 0; k < static_cast<int>(g.frontier().size()); ++k) {
                const int id = g.frontier()[k];
                py::list sources;
                for (const Graph::SlotSource& s : g.frontier_sources(k))
                    sources.append(py::make_tuple(s.input, s.element));
                py::dict d;
                d["node"] = id;
                d["width"] = numel(g.node_shape(id));
                d["inputs"] = g.frontier_inputs(k);
                d["sources"] = sources;
                out.append(d);
            }
            return out;
        },
        py::arg("graph"),
        "The attribution frontier: per node, its width, the inputs it depends on, and per value "
        "(input, element) it derives from (-1: several).");
    m.def(
        "encode",
        [](const Graph& g, const std::vector<FArray>& x) {
            require(g.built(), "the model is not built");
            const Index N = x.empty() || x[0].ndim() == 0 ? 0 : x[0].shape(0);
            check_inputs(g, x, N);
            py::array_t<float> out(std::vector<py::ssize_t>{N, frontier_width(g)});
            float* dst = out.mutable_data();
            auto ptrs = pointers(x);
            {
                py::gil_scoped_release nogil;
                encode(g, ptrs, N, dst);
            }
            return out;
        },
        py::arg("graph"), py::arg("x"), "The frontier values of inputs x, concatenated per row (N x width).");
    m.def(
        "integrated_gradients_encoded",
        [](const Graph& g, const FArray& z, const FArray& baseline, Index output, Index steps, double tolerance) {
            require(g.built(), "the model is not built");
            const Index F = frontier_width(g);
            require(z.ndim() == 2 && z.shape(1) == F,
                    "z has shape " + dims(z) + ", expected rows of " + std::to_string(F) + " encoded values");
            const Index N = z.shape(0);
            require(baseline.ndim() == 2 && baseline.shape(1) == F,
                    "baseline has shape " + dims(baseline) + ", expected rows of " + std::to_string(F) + " values");
            const Index B = baseline.shape(0);
            check_ig_args(B, N, steps, tolerance);
            py::array_t<float> out(std::vector<py::ssize_t>{N, F});
            float* dst = out.mutable_data();
            {
                py::gil_scoped_release nogil;
                integrated_gradients_encoded(g, z.data(), baseline.data(), B, N, output, steps, tolerance, dst);
            }
            return out;
        },
        py::arg("graph"), py::arg("z"), py::arg("baseline"), py::arg("output"), py::arg("steps"),
        py::arg("tolerance") = 0.0, "Integrated gradients in the encoded space (N x frontier width).");
    m.def("gauss_legendre", [](Index n) {
        std::vector<double> t, w;
        gauss_legendre(n, t, w);
        return py::make_tuple(t, w);
    });
}

}  // namespace maasfin::bindings
