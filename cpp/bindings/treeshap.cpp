// Bindings of TreeEnsemble (maasfin/treeshap.hpp): argument checks and GIL release only.
#include "maasfin/treeshap.hpp"

#include <pybind11/stl.h>

#include "common.hpp"

namespace maasfin::bindings {

namespace {
using DArray = py::array_t<double, py::array::c_style>;

Index rows_of(const TreeEnsemble& e, const FArray& x) {
    require(x.ndim() == 2 && x.shape(1) == e.num_features(),
            "x has shape " + dims(x) + ", expected (rows, " + std::to_string(e.num_features()) + ")");
    return x.shape(0);
}
}  // namespace

void bind_treeshap(py::module_& m) {
    py::class_<TreeEnsemble>(m, "TreeEnsemble")
        .def(py::init<std::vector<std::int64_t>, std::vector<std::int32_t>, std::vector<double>,
                      std::vector<std::int64_t>, std::vector<std::int64_t>, std::vector<std::uint8_t>,
                      std::vector<std::uint8_t>, std::vector<double>, Index, double>(),
             py::arg("roots"), py::arg("feature"), py::arg("threshold"), py::arg("yes"), py::arg("no"), py::arg("mode"),
             py::arg("missing_yes"), py::arg("value"), py::arg("num_features"), py::arg("base"))
        .def_property_readonly("num_features", &TreeEnsemble::num_features)
        .def_property_readonly("num_nodes", &TreeEnsemble::num_nodes)
        .def_property_readonly("num_trees", &TreeEnsemble::num_trees)
        .def_property_readonly("cover", [](const TreeEnsemble& e) { return e.cover(); })
        .def(
            "set_cover_from",
            [](TreeEnsemble& e, const FArray& x) {
                const Index N = rows_of(e, x);
                py::gil_scoped_release nogil;
                e.set_cover_from(x.data(), N);
            },
            py::arg("x"))
        .def("set_cover", &TreeEnsemble::set_cover, py::arg("cover"))
        .def(
            "margin",
            [](const TreeEnsemble& e, const FArray& x) {
                const Index N = rows_of(e, x);
                DArray out(std::vector<py::ssize_t>{N});
                double* dst = out.mutable_data();
                py::gil_scoped_release nogil;
                e.margin(x.data(), N, dst);
                return out;
            },
            py::arg("x"))
        .def(
            "shap",
            [](const TreeEnsemble& e, const FArray& x, bool reference) {
                const Index N = rows_of(e, x);
                require(!reference || e.num_features() <= 16, "the reference takes at most 16 features");
                DArray out(std::vector<py::ssize_t>{N, e.num_features() + 1});
                double* dst = out.mutable_data();
                py::gil_scoped_release nogil;
                if (reference)
                    e.shap_reference(x.data(), N, dst);
                else
                    e.shap(x.data(), N, dst);
                return out;
            },
            py::arg("x"), py::arg("reference") = false,
            "Path-dependent TreeSHAP: (rows, features + 1), the last column the expected margin.")
        .def(
            "shap_interventional",
            [](const TreeEnsemble& e, const FArray& x, const FArray& background, bool reference) {
                const Index N = rows_of(e, x), B = rows_of(e, background);
                require(B >= 1, "background must have at least one row");
                require(!reference || e.num_features() <= 16, "the reference takes at most 16 features");
                DArray out(std::vector<py::ssize_t>{N, e.num_features() + 1});
                double* dst = out.mutable_data();
                py::gil_scoped_release nogil;
                if (reference)
                    e.shap_interventional_reference(x.data(), N, background.data(), B, dst);
                else
                    e.shap_interventional(x.data(), N, background.data(), B, dst);
                return out;
            },
            py::arg("x"), py::arg("background"), py::arg("reference") = false,
            "Interventional TreeSHAP against background rows: (rows, features + 1), the last column the mean "
            "background margin.");
}

}  // namespace maasfin::bindings
