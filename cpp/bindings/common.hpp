// Shared by the binding translation units: array types and argument checks that keep the
// raw-pointer core memory-safe when called from Python directly. No numerics here.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "maasfin/common.hpp"
#include "maasfin/graph.hpp"

#include <vector>

namespace maasfin::bindings {

namespace py = pybind11;
using FArray = py::array_t<float, py::array::c_style>;
using IArray = py::array_t<std::int64_t, py::array::c_style>;

inline void require(bool ok, const std::string& msg) {
    if (!ok) throw InvalidArgument(msg);
}

inline std::string dims(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

// Each input array must hold N rows of its input's per-sample shape.
inline void check_inputs(const Graph& g, const std::vector<FArray>& x, Index N) {
    require(static_cast<int>(x.size()) == g.num_inputs(),
            "expected " + std::to_string(g.num_inputs()) + " input arrays, got " + std::to_string(x.size()));
    for (std::size_t i = 0; i < x.size(); ++i) {
        const Shape& s = g.input_shape(static_cast<int>(i));
        require(x[i].ndim() >= 1 && x[i].shape(0) == N && x[i].size() == N * numel(s),
                "input " + std::to_string(i) + " has shape " + dims(x[i]) + ", expected " + std::to_string(N) +
                    " rows of shape " + shape_str(s));
    }
}

inline std::vector<const float*> pointers(const std::vector<FArray>& xs) {
    std::vector<const float*> p;
    for (const auto& a : xs) p.push_back(a.data());
    return p;
}

// One function per binding file, called from module.cpp.
void bind_explain(py::module_& m);
void bind_preprocessing(py::module_& m);
void bind_sequence_layers(py::module_& m);  // sequence_layers.cpp: spatial and recurrent layers
void bind_treeshap(py::module_& m);         // treeshap.cpp: TreeEnsemble, TreeSHAP

}  // namespace maasfin::bindings
