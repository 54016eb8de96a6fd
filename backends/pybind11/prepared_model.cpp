// pybind11 binding of ptdcore::PreparedModel. Arguments are converted and
// raw pointers taken while the GIL is held; the GIL is released only around
// the engine call.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "numpy_evaluate.hpp"
#include "numpy_structure.hpp"
#include "ptdcore/engine.hpp"
#include "ptdcore/sampling.hpp"

namespace py = pybind11;

namespace {

using ptdcore_bindings::DoubleArray;

void require(bool ok, const std::string& msg) {
  if (!ok) throw py::value_error(msg);
}

ptdcore::PreparedModel make_model(py::handle structure) {
  // Validates; std::invalid_argument becomes ValueError.
  return ptdcore::PreparedModel(ptdcore_bindings::structure_from_python(structure));
}

void evaluate_into(const ptdcore::PreparedModel& model, const DoubleArray& theta,
                   const DoubleArray& times, int64_t nr_moments, const py::sequence& outputs,
                   int threads) {
  ptdcore_bindings::evaluate_into(model, theta, times, nr_moments, outputs, threads);
}

DoubleArray sample(const ptdcore::PreparedModel& model, const DoubleArray& theta, int64_t count,
                   uint64_t seed, int threads) {
  const int64_t P = model.nr_params();
  require(theta.ndim() == 1 && theta.shape(0) == P,
          "theta must have shape (" + std::to_string(P) + ",)");
  require(count >= 0, "the number of draws must be >= 0");
  DoubleArray out(std::vector<py::ssize_t>{static_cast<py::ssize_t>(count)});
  const double* theta_ptr = theta.data();
  double* out_ptr = out.mutable_data();
  {
    py::gil_scoped_release release;
    ptdcore::sample_draws(model.structure(), theta_ptr, count, seed, out_ptr, threads);
  }
  return out;
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
           "Evaluate a batch, theta (B, P) and times (T,), into 2, 4 or 6 preallocated arrays "
           "(pmf, moments[, dpmf, dmoments[, d2pmf, d2moments]]).")
      .def("sample", &sample, py::arg("theta"), py::arg("count"), py::arg("seed"),
           py::arg("threads") = 0,
           "count exact draws of T (of Y with rewards) at theta (P,), reproducible from seed.");
}
