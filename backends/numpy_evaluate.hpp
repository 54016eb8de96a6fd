// Shared by the pybind11-built modules (pybind11 and ffi backends): one batch
// evaluation into caller-allocated numpy arrays, and exact draws, the GIL
// released around the engine's work (the array pointers are taken while it is
// held).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "numpy_structure.hpp"
#include "ptdcore/batch.hpp"
#include "ptdcore/sampling.hpp"

namespace ptdcore_bindings {

using OutputArray = py::array_t<double, py::array::c_style>;

// theta (B, P), times (T,); `outputs` holds 2, 4 or 6 writable C-contiguous
// float64 arrays: pmf (B, T), moments (B, K), then dpmf (B, T, P) and
// dmoments (B, K, P), then d2pmf (B, T, P, P) and d2moments (B, K, P, P);
// `output` is what the pmf arrays receive (0 density, 1 cdf, 2 sf).
inline void evaluate_into(const ptdcore::PreparedModel& model, const DoubleArray& theta,
                          const DoubleArray& times, int64_t nr_moments, const py::sequence& outputs,
                          int threads, int64_t output) {
  const int64_t P = model.nr_params();
  if (theta.ndim() != 2 || theta.shape(1) != P)
    throw py::value_error("theta must have shape (B, " + std::to_string(P) + ")");
  if (times.ndim() != 1) throw py::value_error("times must be one-dimensional");
  if (nr_moments < 0) throw py::value_error("nr_moments must be >= 0");
  const ptdcore::Output what = ptdcore::output_from_code(output);  // (ValueError otherwise)
  const int64_t B = theta.shape(0), T = times.shape(0), K = nr_moments;
  const size_t n = py::len(outputs);
  if (n != 2 && n != 4 && n != 6) throw py::value_error("outputs must hold 2, 4 or 6 arrays");
  const std::vector<std::vector<int64_t>> shapes{{B, T}, {B, K}, {B, T, P},
                                                 {B, K, P}, {B, T, P, P}, {B, K, P, P}};
  const char* labels[] = {"pmf", "moments", "dpmf", "dmoments", "d2pmf", "d2moments"};
  double* ptr[6] = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
  for (size_t i = 0; i < n; ++i) {
    py::handle item = outputs[i];
    if (!OutputArray::check_(item))
      throw py::type_error(std::string(labels[i]) + " must be a C-contiguous float64 array");
    auto arr = py::reinterpret_borrow<OutputArray>(item);
    std::vector<int64_t> shape(arr.shape(), arr.shape() + arr.ndim());
    if (shape != shapes[i]) throw py::value_error(std::string(labels[i]) + " has the wrong shape");
    if (!arr.writeable()) throw py::value_error(std::string(labels[i]) + " is read-only");
    ptr[i] = arr.mutable_data();
  }
  const ptdcore::Outputs out{ptr[0], ptr[1], ptr[2], ptr[3], ptr[4], ptr[5], what};
  const double* th = theta.data();
  const double* tm = times.data();
  py::gil_scoped_release release;
  ptdcore::evaluate_batch(model, th, B, tm, T, K, out, threads);
}

// `count` exact draws of T (of Y with rewards) at theta (P,), reproducible from seed.
inline DoubleArray sample_into_array(const ptdcore::PreparedModel& model, const DoubleArray& theta,
                                     int64_t count, uint64_t seed, int threads) {
  const int64_t P = model.nr_params();
  if (theta.ndim() != 1 || theta.shape(0) != P)
    throw py::value_error("theta must have shape (" + std::to_string(P) + ",)");
  if (count < 0) throw py::value_error("the number of draws must be >= 0");
  DoubleArray out(std::vector<py::ssize_t>{static_cast<py::ssize_t>(count)});
  const double* theta_ptr = theta.data();
  double* out_ptr = out.mutable_data();
  {
    py::gil_scoped_release release;
    ptdcore::sample_draws(model.structure(), theta_ptr, count, seed, out_ptr, threads);
  }
  return out;
}

}  // namespace ptdcore_bindings
