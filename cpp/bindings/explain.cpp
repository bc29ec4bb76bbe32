// Bindings of the explanation entry points (filled in with the explain module).
#include "common.hpp"

namespace maasfin::bindings {

void bind_explain(py::module_&) {}

}  // namespace maasfin::bindings
