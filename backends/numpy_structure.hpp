// Shared by the pybind11-built modules (pybind11 and ffi backends): a
// ptdcore::Structure from the numpy arrays of a Python Structure. Call with
// the GIL held (the arrays are read here).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "ptdcore/structure.hpp"

namespace ptdcore_bindings {

namespace py = pybind11;

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using IndexArray = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

template <typename T, typename A>
std::vector<T> to_vector(const A& a) {
  return std::vector<T>(a.data(), a.data() + a.size());
}

inline ptdcore::Structure structure_from_arrays(
    int64_t nr_states, int64_t nr_params, bool discrete, const DoubleArray& alpha,
    const IndexArray& src, const IndexArray& dst, const DoubleArray& constant,
    const IndexArray& coef_ptr, const IndexArray& coef_index, const DoubleArray& coef_value,
    const std::optional<DoubleArray>& rewards, int64_t output = 0, int64_t epochs = 1) {
  ptdcore::Structure s;
  s.nr_states = nr_states;
  s.nr_params = nr_params;
  s.discrete = discrete;
  s.alpha = to_vector<double>(alpha);
  s.src = to_vector<int64_t>(src);
  s.dst = to_vector<int64_t>(dst);
  s.constant = to_vector<double>(constant);
  s.coef_ptr = to_vector<int64_t>(coef_ptr);
  s.coef_index = to_vector<int64_t>(coef_index);
  s.coef_value = to_vector<double>(coef_value);
  if (rewards) s.rewards = to_vector<double>(*rewards);
  s.output = static_cast<int>(output);
  s.epochs = epochs;
  return s;
}

}  // namespace ptdcore_bindings
