// pybind11 binding of ptdcore::PreparedModel. Arguments are converted and
// raw pointers taken while the GIL is held; the GIL is released only around
// the engine call.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "numpy_evaluate.hpp"
#include "numpy_structure.hpp"
#include "ptdcore/engine.hpp"

namespace py = pybind11;

namespace {

using ptdcore_bindings::DoubleArray;

ptdcore::PreparedModel make_model(py::handle structure) {
  // Validates; std::invalid_argument becomes ValueError.
  return ptdcore::PreparedModel(ptdcore_bindings::structure_from_python(structure));
}

void evaluate_into(const ptdcore::PreparedModel& model, const DoubleArray& theta,
                   const DoubleArray& times, int64_t nr_moments, const py::sequence& outputs,
                   int threads, int64_t output) {
  ptdcore_bindings::evaluate_into(model, theta, times, nr_moments, outputs, threads, output);
}

DoubleArray sample(const ptdcore::PreparedModel& model, const DoubleArray& theta, int64_t count,
                   uint64_t seed, int threads) {
  return ptdcore_bindings::sample_into_array(model, theta, count, seed, threads);
}

}  // namespace

void register_prepared_model(py::module_& m) {
  py::class_<ptdcore::PreparedModel>(m, "PreparedModel",
                                     "A validated model structure, built once, evaluated many times.")
      .def(py::init(&make_model), py::arg("structure"))
      .def_property_readonly("nr_states", &ptdcore::PreparedModel::nr_states)
      .def_property_readonly("nr_params", &ptdcore::PreparedModel::nr_params)
      .def_property_readonly("acyclic", &ptdcore::PreparedModel::acyclic)
      .def_property_readonly("level_structured", &ptdcore::PreparedModel::level_structured)
      .def("evaluate_into", &evaluate_into, py::arg("theta"), py::arg("times"),
           py::arg("nr_moments"), py::arg("outputs"), py::arg("threads") = 0,
           py::arg("output") = 0,
           "Evaluate a batch, theta (B, P) and times (T,), into 2, 4 or 6 preallocated arrays "
           "(pmf, moments[, dpmf, dmoments[, d2pmf, d2moments]]); output: what the times give "
           "(0 density, 1 cdf, 2 sf).")
      .def("sample", &sample, py::arg("theta"), py::arg("count"), py::arg("seed"),
           py::arg("threads") = 0,
           "count exact draws of T (of Y with rewards) at theta (P,), reproducible from seed.");
}
