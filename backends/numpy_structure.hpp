// Shared by the pybind11-built modules (pybind11 and ffi backends): a
// ptdcore::Structure from a Python ptdcore.Structure (its numpy arrays and
// sizes, read by attribute). Call with the GIL held.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "ptdcore/structure.hpp"

namespace ptdcore_bindings {

namespace py = pybind11;

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using IndexArray = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

template <typename T>
py::array_t<T, py::array::c_style | py::array::forcecast> array_attr(py::handle structure,
                                                                    const char* name) {
  auto a = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(structure.attr(name));
  if (!a) throw py::type_error(std::string("structure.") + name + " is not a numeric array");
  return a;
}

// The arrays' sizes are checked here and in ptdcore::structure_from_arrays;
// model validation happens in ptdcore::PreparedModel (std::invalid_argument
// becomes ValueError).
inline ptdcore::Structure structure_from_python(py::handle structure) {
  const auto alpha = array_attr<double>(structure, "alpha");
  const auto src = array_attr<int64_t>(structure, "src");
  const auto dst = array_attr<int64_t>(structure, "dst");
  const auto constant = array_attr<double>(structure, "constant");
  const auto coef_ptr = array_attr<int64_t>(structure, "coef_ptr");
  const auto coef_index = array_attr<int64_t>(structure, "coef_index");
  const auto coef_value = array_attr<double>(structure, "coef_value");
  const bool has_rewards = !structure.attr("rewards").is_none();
  const auto rewards = has_rewards ? array_attr<double>(structure, "rewards") : DoubleArray();
  const int64_t nr_states = structure.attr("nr_states").cast<int64_t>();
  const int64_t E = src.size();
  if (alpha.size() != nr_states || dst.size() != E || constant.size() != E ||
      coef_ptr.size() != E + 1 || coef_index.size() != coef_value.size() ||
      coef_ptr.data()[E] != coef_index.size())
    throw py::value_error("structure arrays have inconsistent lengths");
  return ptdcore::structure_from_arrays(
      nr_states, structure.attr("nr_params").cast<int64_t>(),
      structure.attr("discrete").cast<bool>(), alpha.data(), E, src.data(), dst.data(),
      constant.data(), coef_ptr.data(), coef_index.data(), coef_value.data(),
      has_rewards ? rewards.data() : nullptr, has_rewards ? rewards.size() : 0,
      structure.attr("reward_matrix").cast<bool>(), structure.attr("epochs").cast<int64_t>());
}

}  // namespace ptdcore_bindings
