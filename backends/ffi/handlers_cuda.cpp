// CUDA handlers (built with -DPTDCORE_BUILD_CUDA=ON). The engine is CPU code:
// inputs are copied from the device on XLA's stream, the rows are evaluated
// on host threads by the same engine, and the outputs are copied back. This
// lets a jitted program placed on a GPU call ptdcore without leaving XLA.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "call_plan.hpp"
#include "ptdcore/batch.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

extern "C" __attribute__((visibility("default"))) XLA_FFI_Error* PtdcorePmfMomentsCuda(
    XLA_FFI_CallFrame* call_frame);
extern "C" __attribute__((visibility("default"))) XLA_FFI_Error* PtdcorePmfMomentsJacobianCuda(
    XLA_FFI_CallFrame* call_frame);

namespace {

ffi::Error cuda_error(cudaError_t err, const char* what) {
  return ffi::Error::Internal(std::string("ptdcore ffi (CUDA): ") + what + ": " +
                              cudaGetErrorString(err));
}

// Device buffers in, host evaluation, device buffers out.
ffi::Error evaluate_on_host(cudaStream_t stream, int64_t model_id, std::string_view content_hash,
                            int64_t nr_moments, int64_t output, ffi::Buffer<ffi::F64> theta,
                            ffi::Buffer<ffi::F64> times, std::vector<double*> device_out,
                            std::vector<int64_t> out_sizes) {
  const bool jac = device_out.size() == 4;
  ptdcore_ffi::CallPlan plan;
  ffi::Error status = ptdcore_ffi::plan_call(model_id, content_hash, nr_moments, output,
                                             theta.dimensions(),
                                             times.dimensions(), out_sizes[0], out_sizes[1], plan);
  if (status.failure()) return status;
  std::vector<double> th(theta.element_count()), tm(times.element_count());
  std::vector<std::vector<double>> out(device_out.size());
  for (size_t i = 0; i < out.size(); ++i) out[i].resize(out_sizes[i]);
  cudaError_t err = cudaMemcpyAsync(th.data(), theta.typed_data(), th.size() * sizeof(double),
                                    cudaMemcpyDeviceToHost, stream);
  if (err == cudaSuccess)
    err = cudaMemcpyAsync(tm.data(), times.typed_data(), tm.size() * sizeof(double),
                          cudaMemcpyDeviceToHost, stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  if (err != cudaSuccess) return cuda_error(err, "copying inputs to the host");
  ptdcore::parallel_rows(plan.rows, 0, [&](int64_t r, ptdcore::Workspace& ws) {
    ptdcore_ffi::run_row(plan, r, th.data(), tm.data(), out[0].data(), out[1].data(),
                         jac ? out[2].data() : nullptr, jac ? out[3].data() : nullptr, ws);
  });
  for (size_t i = 0; i < out.size() && err == cudaSuccess; ++i)
    err = cudaMemcpyAsync(device_out[i], out[i].data(), out[i].size() * sizeof(double),
                          cudaMemcpyHostToDevice, stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);  // host buffers die here
  if (err != cudaSuccess) return cuda_error(err, "copying outputs to the device");
  return ffi::Error::Success();
}

ffi::Error PmfMomentsCudaImpl(cudaStream_t stream, int64_t model_id, std::string_view content_hash,
                              int64_t nr_moments, int64_t output, ffi::Buffer<ffi::F64> theta,
                              ffi::Buffer<ffi::F64> times, ffi::ResultBuffer<ffi::F64> pmf,
                              ffi::ResultBuffer<ffi::F64> moments) {
  return evaluate_on_host(stream, model_id, content_hash, nr_moments, output, theta, times,
                          {pmf->typed_data(), moments->typed_data()},
                          {static_cast<int64_t>(pmf->element_count()),
                           static_cast<int64_t>(moments->element_count())});
}

ffi::Error PmfMomentsJacobianCudaImpl(cudaStream_t stream, int64_t model_id,
                                      std::string_view content_hash, int64_t nr_moments,
                                      int64_t output, ffi::Buffer<ffi::F64> theta, ffi::Buffer<ffi::F64> times,
                                      ffi::ResultBuffer<ffi::F64> pmf,
                                      ffi::ResultBuffer<ffi::F64> moments,
                                      ffi::ResultBuffer<ffi::F64> dpmf,
                                      ffi::ResultBuffer<ffi::F64> dmoments) {
  return evaluate_on_host(
      stream, model_id, content_hash, nr_moments, output, theta, times,
      {pmf->typed_data(), moments->typed_data(), dpmf->typed_data(), dmoments->typed_data()},
      {static_cast<int64_t>(pmf->element_count()), static_cast<int64_t>(moments->element_count()),
       static_cast<int64_t>(dpmf->element_count()),
       static_cast<int64_t>(dmoments->element_count())});
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(PtdcorePmfMomentsCuda, PmfMomentsCudaImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::PlatformStream<cudaStream_t>>()  // XLA's stream
                                  .Attr<int64_t>("model_id")
                                  .Attr<std::string_view>("content_hash")
                                  .Attr<int64_t>("nr_moments")
                                  .Attr<int64_t>("output")
                                  .Arg<ffi::Buffer<ffi::F64>>()   // theta (..., P)
                                  .Arg<ffi::Buffer<ffi::F64>>()   // times (..., T)
                                  .Ret<ffi::Buffer<ffi::F64>>()   // pmf (..., T)
                                  .Ret<ffi::Buffer<ffi::F64>>());  // moments (..., K)

XLA_FFI_DEFINE_HANDLER_SYMBOL(PtdcorePmfMomentsJacobianCuda, PmfMomentsJacobianCudaImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::PlatformStream<cudaStream_t>>()  // XLA's stream
                                  .Attr<int64_t>("model_id")
                                  .Attr<std::string_view>("content_hash")
                                  .Attr<int64_t>("nr_moments")
                                  .Attr<int64_t>("output")
                                  .Arg<ffi::Buffer<ffi::F64>>()   // theta (..., P)
                                  .Arg<ffi::Buffer<ffi::F64>>()   // times (..., T)
                                  .Ret<ffi::Buffer<ffi::F64>>()   // pmf (..., T)
                                  .Ret<ffi::Buffer<ffi::F64>>()   // moments (..., K)
                                  .Ret<ffi::Buffer<ffi::F64>>()   // dpmf (..., T, P)
                                  .Ret<ffi::Buffer<ffi::F64>>());  // dmoments (..., K, P)
