// XLA FFI handlers: pmf + moments, and the same with Jacobians. They read
// shapes, check them, look the model up and run the engine's rows on XLA's
// intra-op thread pool. No mathematics here: that is all in cpp/.
#include <cstdint>
#include <string>
#include <string_view>

#include "call_plan.hpp"
#include "ptdcore/batch.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

// Exported so that the handlers can also be found by symbol name.
extern "C" __attribute__((visibility("default"))) XLA_FFI_Error* PtdcorePmfMoments(
    XLA_FFI_CallFrame* call_frame);
extern "C" __attribute__((visibility("default"))) XLA_FFI_Error* PtdcorePmfMomentsJacobian(
    XLA_FFI_CallFrame* call_frame);
extern "C" __attribute__((visibility("default"))) XLA_FFI_Error* PtdcorePmfMomentsHessian(
    XLA_FFI_CallFrame* call_frame);

namespace {

ffi::Error evaluate(ffi::ThreadPool pool, int64_t model_id, std::string_view content_hash,
                    int64_t nr_moments, int64_t output, ffi::Buffer<ffi::F64> theta, ffi::Buffer<ffi::F64> times,
                    double* pmf, double* moments, double* dpmf, double* dmoments,
                    int64_t pmf_size, int64_t moments_size, double* d2pmf = nullptr,
                    double* d2moments = nullptr) {
  ptdcore_ffi::CallPlan plan;
  ffi::Error status = ptdcore_ffi::plan_call(model_id, content_hash, nr_moments, output,
                                             theta.dimensions(),
                                             times.dimensions(), pmf_size, moments_size, plan);
  if (status.failure()) return status;
  const double* th = theta.typed_data();
  const double* tm = times.typed_data();
  ptdcore::parallel_rows(pool, plan.rows, 0, [&](int64_t r) {
    ptdcore_ffi::run_row(plan, r, th, tm, pmf, moments, dpmf, dmoments,
                         ptdcore::thread_workspace(), d2pmf, d2moments);
  });
  return ffi::Error::Success();
}

ffi::Error PmfMomentsImpl(ffi::ThreadPool pool, int64_t model_id, std::string_view content_hash,
                          int64_t nr_moments, int64_t output, ffi::Buffer<ffi::F64> theta,
                          ffi::Buffer<ffi::F64> times, ffi::ResultBuffer<ffi::F64> pmf,
                          ffi::ResultBuffer<ffi::F64> moments) {
  return evaluate(pool, model_id, content_hash, nr_moments, output, theta, times, pmf->typed_data(),
                  moments->typed_data(), nullptr, nullptr,
                  static_cast<int64_t>(pmf->element_count()),
                  static_cast<int64_t>(moments->element_count()));
}

// Element count of an output buffer.
int64_t count(ffi::ResultBuffer<ffi::F64>& out) { return static_cast<int64_t>(out->element_count()); }

// The parameter count P: theta's last axis.
int64_t nr_params_of(ffi::Buffer<ffi::F64>& theta) {
  return theta.dimensions().size() == 0 ? 0 : theta.dimensions().back();
}

ffi::Error PmfMomentsJacobianImpl(ffi::ThreadPool pool, int64_t model_id,
                                  std::string_view content_hash, int64_t nr_moments,
                                  int64_t output,
                                  ffi::Buffer<ffi::F64> theta, ffi::Buffer<ffi::F64> times,
                                  ffi::ResultBuffer<ffi::F64> pmf,
                                  ffi::ResultBuffer<ffi::F64> moments,
                                  ffi::ResultBuffer<ffi::F64> dpmf,
                                  ffi::ResultBuffer<ffi::F64> dmoments) {
  const int64_t P = nr_params_of(theta);
  if (count(dpmf) != count(pmf) * P || count(dmoments) != count(moments) * P)
    return ffi::Error::InvalidArgument("ptdcore ffi: Jacobian output shapes do not match");
  return evaluate(pool, model_id, content_hash, nr_moments, output, theta, times, pmf->typed_data(),
                  moments->typed_data(), dpmf->typed_data(), dmoments->typed_data(), count(pmf),
                  count(moments));
}

ffi::Error PmfMomentsHessianImpl(ffi::ThreadPool pool, int64_t model_id,
                                 std::string_view content_hash, int64_t nr_moments,
                                  int64_t output,
                                 ffi::Buffer<ffi::F64> theta, ffi::Buffer<ffi::F64> times,
                                 ffi::ResultBuffer<ffi::F64> pmf,
                                 ffi::ResultBuffer<ffi::F64> moments,
                                 ffi::ResultBuffer<ffi::F64> dpmf,
                                 ffi::ResultBuffer<ffi::F64> dmoments,
                                 ffi::ResultBuffer<ffi::F64> d2pmf,
                                 ffi::ResultBuffer<ffi::F64> d2moments) {
  const int64_t P = nr_params_of(theta);
  if (count(dpmf) != count(pmf) * P || count(dmoments) != count(moments) * P ||
      count(d2pmf) != count(pmf) * P * P || count(d2moments) != count(moments) * P * P)
    return ffi::Error::InvalidArgument("ptdcore ffi: Hessian output shapes do not match");
  return evaluate(pool, model_id, content_hash, nr_moments, output, theta, times, pmf->typed_data(),
                  moments->typed_data(), dpmf->typed_data(), dmoments->typed_data(), count(pmf),
                  count(moments), d2pmf->typed_data(), d2moments->typed_data());
}

// What every handler binds before its results: XLA's intra-op pool, the model's
// registry id and content hash (checked against each other), K, the output
// (0 density, 1 cdf, 2 sf), then theta
// (..., P) and times (..., T). Each handler adds its results.
auto bind_inputs() {
  return ffi::Ffi::Bind()
      .Ctx<ffi::ThreadPool>()
      .Attr<int64_t>("model_id")
      .Attr<std::string_view>("content_hash")
      .Attr<int64_t>("nr_moments")
      .Attr<int64_t>("output")
      .Arg<ffi::Buffer<ffi::F64>>()
      .Arg<ffi::Buffer<ffi::F64>>();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(PtdcorePmfMoments, PmfMomentsImpl,
                              bind_inputs()
                                  .Ret<ffi::Buffer<ffi::F64>>()     // pmf (..., T)
                                  .Ret<ffi::Buffer<ffi::F64>>());   // moments (..., K)

XLA_FFI_DEFINE_HANDLER_SYMBOL(PtdcorePmfMomentsJacobian, PmfMomentsJacobianImpl,
                              bind_inputs()
                                  .Ret<ffi::Buffer<ffi::F64>>()     // pmf (..., T)
                                  .Ret<ffi::Buffer<ffi::F64>>()     // moments (..., K)
                                  .Ret<ffi::Buffer<ffi::F64>>()     // dpmf (..., T, P)
                                  .Ret<ffi::Buffer<ffi::F64>>());   // dmoments (..., K, P)

XLA_FFI_DEFINE_HANDLER_SYMBOL(PtdcorePmfMomentsHessian, PmfMomentsHessianImpl,
                              bind_inputs()
                                  .Ret<ffi::Buffer<ffi::F64>>()     // pmf (..., T)
                                  .Ret<ffi::Buffer<ffi::F64>>()     // moments (..., K)
                                  .Ret<ffi::Buffer<ffi::F64>>()     // dpmf (..., T, P)
                                  .Ret<ffi::Buffer<ffi::F64>>()     // dmoments (..., K, P)
                                  .Ret<ffi::Buffer<ffi::F64>>()     // d2pmf (..., T, P, P)
                                  .Ret<ffi::Buffer<ffi::F64>>());   // d2moments (..., K, P, P)
