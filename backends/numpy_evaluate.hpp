// Shared by the pybind11-built modules (pybind11 and ffi backends): one batch
// evaluation from numpy arrays to numpy arrays, the GIL released around the
// engine's work (the array pointers are taken while it is held).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "numpy_structure.hpp"
#include "ptdcore/batch.hpp"

namespace ptdcore_bindings {

// theta (B, P), times (T,) -> (pmf, moments), plus (dpmf, dmoments) with
// `jacobian`, plus (d2pmf, d2moments) with `hessian` (which implies jacobian).
inline py::tuple evaluate_to_numpy(const ptdcore::PreparedModel& model, const DoubleArray& theta,
                                   const DoubleArray& times, int64_t nr_moments, bool jacobian,
                                   bool hessian, int threads) {
  const int64_t P = model.nr_params();
  if (theta.ndim() != 2 || theta.shape(1) != P)
    throw py::value_error("theta must have shape (B, " + std::to_string(P) + ")");
  if (times.ndim() != 1) throw py::value_error("times must be one-dimensional");
  if (nr_moments < 0) throw py::value_error("nr_moments must be >= 0");
  jacobian = jacobian || hessian;
  const int64_t B = theta.shape(0), T = times.shape(0), K = nr_moments;
  auto shape = [](bool wanted, std::vector<py::ssize_t> dims) {
    return wanted ? dims : std::vector<py::ssize_t>{0};
  };
  DoubleArray pmf({B, T}), moments({B, K});
  DoubleArray dpmf(shape(jacobian, {B, T, P})), dmoments(shape(jacobian, {B, K, P}));
  DoubleArray d2pmf(shape(hessian, {B, T, P, P})), d2moments(shape(hessian, {B, K, P, P}));
  const ptdcore::Outputs out{pmf.mutable_data(),
                             moments.mutable_data(),
                             jacobian ? dpmf.mutable_data() : nullptr,
                             jacobian ? dmoments.mutable_data() : nullptr,
                             hessian ? d2pmf.mutable_data() : nullptr,
                             hessian ? d2moments.mutable_data() : nullptr};
  const double* th = theta.data();
  const double* tm = times.data();
  {
    py::gil_scoped_release release;
    ptdcore::evaluate_batch(model, th, B, tm, T, K, out, threads);
  }
  if (hessian) return py::make_tuple(pmf, moments, dpmf, dmoments, d2pmf, d2moments);
  if (jacobian) return py::make_tuple(pmf, moments, dpmf, dmoments);
  return py::make_tuple(pmf, moments);
}

}  // namespace ptdcore_bindings
