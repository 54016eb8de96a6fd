// pybind11 binding of ptdcore::PreparedModel. Arguments are converted and
// raw pointers taken while the GIL is held; the GIL is released only around
// the engine call.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <utility>

#include "numpy_evaluate.hpp"
#include "numpy_structure.hpp"
#include "ptdcore/engine.hpp"
#include "ptdcore/sampling.hpp"

namespace py = pybind11;

namespace {

using ptdcore_bindings::DoubleArray;
using ptdcore_bindings::IndexArray;

void require(bool ok, const std::string& msg) {
  if (!ok) throw py::value_error(msg);
}

ptdcore::PreparedModel make_model(int64_t nr_states, int64_t nr_params, bool discrete,
                                  const DoubleArray& alpha, const IndexArray& src,
                                  const IndexArray& dst, const DoubleArray& constant,
                                  const IndexArray& coef_ptr, const IndexArray& coef_index,
                                  const DoubleArray& coef_value,
                                  const std::optional<DoubleArray>& rewards, int64_t output,
                                  int64_t epochs) {
  // Validates; std::invalid_argument becomes ValueError.
  return ptdcore::PreparedModel(ptdcore_bindings::structure_from_arrays(
      nr_states, nr_params, discrete, alpha, src, dst, constant, coef_ptr, coef_index, coef_value,
      rewards, output, epochs));
}

py::tuple evaluate(const ptdcore::PreparedModel& model, const DoubleArray& theta,
                   const DoubleArray& times, int64_t nr_moments, bool jacobian, int threads,
                   bool hessian) {
  return ptdcore_bindings::evaluate_to_numpy(model, theta, times, nr_moments, jacobian, hessian,
                                             threads);
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
      .def(py::init(&make_model), py::arg("nr_states"), py::arg("nr_params"), py::arg("discrete"),
           py::arg("alpha"), py::arg("src"), py::arg("dst"), py::arg("constant"),
           py::arg("coef_ptr"), py::arg("coef_index"), py::arg("coef_value"),
           py::arg("rewards") = py::none(), py::arg("output") = 0,
           py::arg("epochs") = 1)
      .def_property_readonly("nr_states", &ptdcore::PreparedModel::nr_states)
      .def_property_readonly("nr_params", &ptdcore::PreparedModel::nr_params)
      .def_property_readonly("acyclic", &ptdcore::PreparedModel::acyclic)
      .def_property_readonly("level_structured", &ptdcore::PreparedModel::level_structured)
      .def("evaluate", &evaluate, py::arg("theta"), py::arg("times"), py::arg("nr_moments"),
           py::arg("jacobian") = false, py::arg("threads") = 0, py::arg("hessian") = false,
           "Evaluate a batch: theta (B, P), times (T,). Returns (pmf, moments); with "
           "jacobian=True also (dpmf, dmoments); with hessian=True also (d2pmf, d2moments).")
      .def("sample", &sample, py::arg("theta"), py::arg("count"), py::arg("seed"),
           py::arg("threads") = 0,
           "count exact draws of T (of Y with rewards) at theta (P,), reproducible from seed.");
}
