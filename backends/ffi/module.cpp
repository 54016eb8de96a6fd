// The ffi backend's extension module: handler capsules and model registration.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <utility>

#include "model_registry.hpp"
#include "ptdcore/batch.hpp"
#include "numpy_evaluate.hpp"
#include "numpy_structure.hpp"
#include "xla/ffi/api/c_api.h"

namespace py = pybind11;

extern "C" XLA_FFI_Error* PtdcorePmfMoments(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* PtdcorePmfMomentsJacobian(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* PtdcorePmfMomentsHessian(XLA_FFI_CallFrame* call_frame);
#ifdef PTDCORE_WITH_CUDA
extern "C" XLA_FFI_Error* PtdcorePmfMomentsCuda(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* PtdcorePmfMomentsJacobianCuda(XLA_FFI_CallFrame* call_frame);
#endif

namespace {

using ptdcore_bindings::DoubleArray;
using ptdcore_bindings::IndexArray;

int64_t register_model(const std::string& content_hash, int64_t nr_states, int64_t nr_params,
                       bool discrete, const DoubleArray& alpha, const IndexArray& src,
                       const IndexArray& dst, const DoubleArray& constant,
                       const IndexArray& coef_ptr, const IndexArray& coef_index,
                       const DoubleArray& coef_value, const std::optional<DoubleArray>& rewards,
                       int64_t output, int64_t epochs) {
  return ptdcore_ffi::register_model(
      content_hash,
      ptdcore_bindings::structure_from_arrays(nr_states, nr_params, discrete, alpha, src, dst,
                                              constant, coef_ptr, coef_index, coef_value, rewards,
                                              output, epochs));
}

// The same engine outside XLA, for eager calls and the numpy protocol: theta
// (B, P), times (T,); rows in parallel threads, GIL released around the work.
py::tuple evaluate(int64_t model_id, const std::string& content_hash, const DoubleArray& theta,
                   const DoubleArray& times, int64_t nr_moments, bool jacobian, bool hessian) {
  const ptdcore_ffi::RegisteredModel found = ptdcore_ffi::find_model(model_id);
  if (!found.model || found.content_hash != content_hash)
    throw py::value_error("ptdcore ffi: unknown model id or content hash");
  return ptdcore_bindings::evaluate_to_numpy(*found.model, theta, times, nr_moments, jacobian,
                                             hessian, 0);
}

}  // namespace

PYBIND11_MODULE(_ffi, m) {
  m.doc() = "ptdcore XLA FFI handlers";
  m.def("registrations", []() {
    py::dict targets;
    targets["ptdcore_pmf_moments"] =
        py::capsule(reinterpret_cast<void*>(PtdcorePmfMoments));
    targets["ptdcore_pmf_moments_jacobian"] = py::capsule(reinterpret_cast<void*>(PtdcorePmfMomentsJacobian));
    targets["ptdcore_pmf_moments_hessian"] =
        py::capsule(reinterpret_cast<void*>(PtdcorePmfMomentsHessian));
    return targets;
  });
  m.def("registrations_cuda", []() {
    py::dict targets;
#ifdef PTDCORE_WITH_CUDA
    targets["ptdcore_pmf_moments"] = py::capsule(reinterpret_cast<void*>(PtdcorePmfMomentsCuda));
    targets["ptdcore_pmf_moments_jacobian"] =
        py::capsule(reinterpret_cast<void*>(PtdcorePmfMomentsJacobianCuda));
#endif
    return targets;
  }, "CUDA handlers (empty unless built with -DPTDCORE_BUILD_CUDA=ON).");
  m.def("evaluate", &evaluate, py::arg("model_id"), py::arg("content_hash"), py::arg("theta"),
        py::arg("times"), py::arg("nr_moments"), py::arg("jacobian") = false,
        py::arg("hessian") = false, "Evaluate a registered model outside XLA (eager calls).");
  m.def("register_model", &register_model, py::arg("content_hash"), py::arg("nr_states"),
        py::arg("nr_params"), py::arg("discrete"), py::arg("alpha"), py::arg("src"),
        py::arg("dst"), py::arg("constant"), py::arg("coef_ptr"), py::arg("coef_index"),
        py::arg("coef_value"), py::arg("rewards") = py::none(), py::arg("output") = 0,
        py::arg("epochs") = 1, "Register a model; returns its id (the same id for the same content hash).");
}
