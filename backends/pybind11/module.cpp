// The pybind11 extension module: only wires the bindings together.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_prepared_model(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "ptdcore engine bound with pybind11";
  register_prepared_model(m);
}
