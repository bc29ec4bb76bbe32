// pybind11 declarations for the preprocessing layers and the string boundary (StringTable,
// TokenCounter, Hashing of strings). The only work here is argument conversion: reading the cells
// of a NumPy object array as UTF-8 tokens or missing values, with errors naming the feature.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <optional>
#include <string_view>

#include "common.hpp"
#include "maasfin/fingerprint.hpp"
#include "maasfin/layers/category_encoding.hpp"
#include "maasfin/layers/discretization.hpp"
#include "maasfin/layers/embedding.hpp"
#include "maasfin/layers/feature_normalization.hpp"
#include "maasfin/layers/hashed_crossing.hpp"
#include "maasfin/layers/hashing.hpp"
#include "maasfin/layers/imputation.hpp"
#include "maasfin/layers/integer_lookup.hpp"
#include "maasfin/layers/woe_encoding.hpp"
#include "maasfin/string_table.hpp"

namespace maasfin::bindings {

namespace {
// A C-contiguous NumPy object array, checked.
PyObject* const* object_cells(const py::array& a, const std::string& what) {
    require(a.dtype().kind() == 'O' && (a.flags() & py::array::c_style),
            what + ": expected a C-contiguous object array of strings");
    return static_cast<PyObject* const*>(a.data());
}

// One cell: true with `token` set for a str (or UTF-8 bytes); false for a missing value (None,
// float NaN). Anything else is an InvalidArgument naming the feature and the row.
bool read_token(PyObject* o, std::string_view& token, const std::string& what, Index row, Index width) {
    if (PyUnicode_Check(o)) {
        Py_ssize_t n = 0;
        const char* s = PyUnicode_AsUTF8AndSize(o, &n);
        if (!s) throw py::error_already_set();
        token = std::string_view(s, static_cast<std::size_t>(n));
        return true;
    }
    if (PyBytes_Check(o)) {
        token = std::string_view(PyBytes_AS_STRING(o), static_cast<std::size_t>(PyBytes_GET_SIZE(o)));
        return true;
    }
    if (o == Py_None || (PyFloat_Check(o) && std::isnan(PyFloat_AS_DOUBLE(o)))) return false;
    const std::string value = py::repr(py::handle(o)).cast<std::string>();
    const std::string type = py::str(py::handle(o).get_type().attr("__name__")).cast<std::string>();
    throw InvalidArgument(what + " is a string feature but row " + std::to_string(row / width) + " holds " + value +
                          " (" + type + "); pass strings, and None or NaN for a missing value");
}

py::array_t<float> same_shape(const py::array& a) {
    return py::array_t<float>(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}

std::optional<std::string> opt_str(const py::object& o) {
    if (o.is_none()) return std::nullopt;
    return o.cast<std::string>();
}
}  // namespace

void bind_preprocessing(py::module_& m) {
    m.def(
        "fingerprint64", [](const py::bytes& b) { return fingerprint64(std::string_view(b)); },
        "FarmHash Fingerprint64 of bytes (TensorFlow's to_hash_bucket_fast before the modulo).");

    py::class_<StringTable, std::shared_ptr<StringTable>>(m, "StringTable")
        .def(py::init([](std::vector<std::string> vocabulary, Index num_oov_indices, py::object mask_token,
                         bool mask_slot, std::string who) {
                 return std::make_shared<StringTable>(std::move(vocabulary), num_oov_indices, opt_str(mask_token),
                                                      mask_slot, std::move(who));
             }),
             py::arg("vocabulary"), py::arg("num_oov_indices"), py::arg("mask_token"), py::arg("mask_slot"),
             py::arg("who"))
        .def_property_readonly("size", &StringTable::size)
        .def_property_readonly("token_start", &StringTable::token_start)
        .def(
            "lookup",
            [](const StringTable& t, const py::array& tokens, const std::string& what) {
                PyObject* const* cells = object_cells(tokens, what);
                const Index n = tokens.size(), width = tokens.ndim() > 1 ? n / std::max<Index>(1, tokens.shape(0)) : 1;
                auto out = same_shape(tokens);
                float* dst = out.mutable_data();
                std::string_view tok;
                for (Index i = 0; i < n; ++i)
                    dst[i] =
                        static_cast<float>(read_token(cells[i], tok, what, i, width) ? t.lookup(tok) : t.missing());
                return out;
            },
            py::arg("tokens"), py::arg("what"),
            "Indices (float32, same shape) of an object array of str/None/NaN; one C++ loop, no per-row Python.");

    py::class_<TokenCounter>(m, "TokenCounter")
        .def(py::init<>())
        .def(
            "add",
            [](TokenCounter& c, const py::array& tokens, const std::string& what) {
                PyObject* const* cells = object_cells(tokens, what);
                const Index n = tokens.size(), width = tokens.ndim() > 1 ? n / std::max<Index>(1, tokens.shape(0)) : 1;
                Index present = 0;
                std::string_view tok;
                for (Index i = 0; i < n; ++i)
                    if (read_token(cells[i], tok, what, i, width)) {
                        c.add(tok);
                        ++present;
                    }
                return present;
            },
            py::arg("tokens"), py::arg("what"), "Counts the present tokens; returns how many there were.")
        .def("vocabulary", &TokenCounter::vocabulary, py::arg("max_tokens"), py::arg("exclude"))
        .def_property_readonly("distinct", &TokenCounter::distinct);

    m.def(
        "hash_strings",
        [](const py::array& tokens, Index num_bins, py::object mask_value, const std::string& what) {
            PyObject* const* cells = object_cells(tokens, what);
            const auto mask = opt_str(mask_value);
            require(num_bins >= (mask ? 2 : 1), what + ": num_bins must be >= 1 (>= 2 with a mask_value)");
            const Index n = tokens.size(), width = tokens.ndim() > 1 ? n / std::max<Index>(1, tokens.shape(0)) : 1;
            auto out = same_shape(tokens);
            float* dst = out.mutable_data();
            std::string_view tok;
            for (Index i = 0; i < n; ++i) {
                if (!read_token(cells[i], tok, what, i, width)) {
                    require(mask.has_value(), what + ": row " + std::to_string(i / width) +
                                                  " is missing; set mask_value to hash missing values to bin 0");
                    dst[i] = 0.f;
                } else {
                    dst[i] = static_cast<float>(mask && tok == *mask ? 0 : hash_bin(tok, num_bins, mask.has_value()));
                }
            }
            return out;
        },
        py::arg("tokens"), py::arg("num_bins"), py::arg("mask_value"), py::arg("what"),
        "Keras Hashing bins (float32, same shape) of an object array of strings.");

    py::class_<CategoryEncoding, Layer, std::shared_ptr<CategoryEncoding>>(m, "CategoryEncoding")
        .def(py::init([](Index num_tokens, const std::string& mode, bool allow_dropped) {
                 return std::make_shared<CategoryEncoding>(num_tokens, parse_output_mode(mode, "CategoryEncoding"),
                                                           allow_dropped);
             }),
             py::arg("num_tokens"), py::arg("output_mode"), py::arg("allow_dropped") = false);
    py::class_<Discretization, Layer, std::shared_ptr<Discretization>>(m, "Discretization")
        .def(py::init([](Index num_boundaries, const std::string& mode) {
                 return std::make_shared<Discretization>(num_boundaries, parse_output_mode(mode, "Discretization"));
             }),
             py::arg("num_boundaries"), py::arg("output_mode"));
    py::class_<WoEEncoding, Layer, std::shared_ptr<WoEEncoding>>(m, "WoEEncoding")
        .def(py::init<Index, Index, Index>(), py::arg("num_boundaries"), py::arg("num_special"),
             py::arg("num_categories"));
    py::class_<Normalization, Layer, std::shared_ptr<Normalization>>(m, "Normalization")
        .def(py::init<bool>(), py::arg("invert"));
    py::class_<Imputation, Layer, std::shared_ptr<Imputation>>(m, "Imputation")
        .def(py::init<bool>(), py::arg("add_indicator"));
    py::class_<IntegerLookup, Layer, std::shared_ptr<IntegerLookup>>(m, "IntegerLookup")
        .def(py::init([](std::vector<std::int64_t> vocabulary, Index num_oov, std::optional<std::int64_t> mask,
                         const std::string& mode) {
                 return std::make_shared<IntegerLookup>(std::move(vocabulary), num_oov, mask,
                                                        parse_output_mode(mode, "IntegerLookup"));
             }),
             py::arg("vocabulary"), py::arg("num_oov_indices"), py::arg("mask_token"), py::arg("output_mode"))
        .def_property_readonly("vocabulary_size", &IntegerLookup::vocabulary_size);
    py::class_<Hashing, Layer, std::shared_ptr<Hashing>>(m, "Hashing")
        .def(py::init([](Index num_bins, std::optional<std::int64_t> mask, const std::string& mode) {
                 return std::make_shared<Hashing>(num_bins, mask, parse_output_mode(mode, "Hashing"));
             }),
             py::arg("num_bins"), py::arg("mask_value"), py::arg("output_mode"));
    py::class_<HashedCrossing, Layer, std::shared_ptr<HashedCrossing>>(m, "HashedCrossing")
        .def(py::init([](Index num_bins, const std::string& mode) {
                 return std::make_shared<HashedCrossing>(num_bins, parse_output_mode(mode, "HashedCrossing"));
             }),
             py::arg("num_bins"), py::arg("output_mode"));
    m.def(
        "hashed_cross_bin",
        [](const std::vector<std::int64_t>& values, std::int64_t num_bins) {
            require(values.size() >= 2 && num_bins >= 1, "hashed_cross_bin: needs 2+ values and num_bins >= 1");
            return hashed_cross_bin(values.data(), values.size(), num_bins);
        },
        py::arg("values"), py::arg("num_bins"),
        "HashedCrossing's bin of one tuple of integers (tf.sparse.cross_hashed, default hash key).");
    py::class_<Embedding, Layer, std::shared_ptr<Embedding>>(m, "Embedding")
        .def(py::init([](Index input_dim, Index output_dim, const std::string& init) {
                 return std::make_shared<Embedding>(input_dim, output_dim, parse_initializer(init));
             }),
             py::arg("input_dim"), py::arg("output_dim"), py::arg("embeddings_initializer"));
}

}  // namespace maasfin::bindings
