// The ffi backend's extension module: handler capsules and model registration.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "model_registry.hpp"
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

// An owner of one registered model: while a handle lives, calls with its id work.
struct ModelHandle {
  ptdcore_ffi::RegisteredModel registered;
};

// The structure's content hash keys the registry (the same id for the same model).
ModelHandle register_model(py::handle structure) {
  return ModelHandle{
      ptdcore_ffi::register_model(structure.attr("content_hash").cast<std::string>(),
                                  ptdcore_bindings::structure_from_python(structure))};
}

// The same engine outside XLA, for eager calls and the numpy protocol: theta
// (B, P), times (T,); rows in parallel, GIL released around the work.
void evaluate_into(int64_t model_id, const std::string& content_hash, const DoubleArray& theta,
                   const DoubleArray& times, int64_t nr_moments, const py::sequence& outputs,
                   int64_t output) {
  bool released = false;
  const ptdcore_ffi::RegisteredModel found = ptdcore_ffi::find_model(model_id, &released);
  if (released)
    throw py::value_error("ptdcore ffi: model id " + std::to_string(model_id) +
                          " was released (the ptdcore model it belonged to was deleted)");
  if (!found.model || found.content_hash != content_hash)
    throw py::value_error("ptdcore ffi: unknown model id or content hash");
  ptdcore_bindings::evaluate_into(*found.model, theta, times, nr_moments, outputs, 0, output);
}

// Exact draws from a registered model (the engine's sampler, as the pybind11 backend).
DoubleArray sample(int64_t model_id, const std::string& content_hash, const DoubleArray& theta,
                   int64_t count, uint64_t seed) {
  const ptdcore_ffi::RegisteredModel found = ptdcore_ffi::find_model(model_id, nullptr);
  if (!found.model || found.content_hash != content_hash)
    throw py::value_error("ptdcore ffi: unknown model id or content hash");
  return ptdcore_bindings::sample_into_array(*found.model, theta, count, seed, 0);
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
  m.def("evaluate_into", &evaluate_into, py::arg("model_id"), py::arg("content_hash"),
        py::arg("theta"), py::arg("times"), py::arg("nr_moments"), py::arg("outputs"),
        py::arg("output") = 0,
        "Evaluate a registered model outside XLA into 2, 4 or 6 preallocated arrays "
        "(output: 0 density, 1 cdf, 2 sf at the times).");
  m.def("sample", &sample, py::arg("model_id"), py::arg("content_hash"), py::arg("theta"),
        py::arg("count"), py::arg("seed"),
        "count exact draws of T (of Y with rewards) at theta (P,), reproducible from seed.");
  py::class_<ModelHandle>(m, "ModelHandle",
                          "Owner of a registered model: it lives while a handle does.")
      .def_property_readonly("id", [](const ModelHandle& h) { return h.registered.id; })
      .def_property_readonly("content_hash",
                             [](const ModelHandle& h) { return h.registered.content_hash; });
  m.def("register_model", &register_model, py::arg("structure"),
        "Register a ptdcore.Structure; returns a handle that owns it (the same id for the same "
        "content hash while the model is owned).");
  m.def("live_models", &ptdcore_ffi::live_models,
        "How many registered models are still owned (memory benchmarks and tests).");
}
