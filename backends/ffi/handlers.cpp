// XLA FFI handlers: pmf + moments, and the same with Jacobians. They read
// shapes, check them, look the model up and run the engine's rows on XLA's
// intra-op thread pool. No mathematics here: that is all in cpp/.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "call_plan.hpp"
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

// Runs body(row) for row in [0, rows) on XLA's pool. The calling thread takes
// rows too and waits only for rows that were taken, never for a helper to
// start: helpers that start late find no rows left and touch only the
// shared counters, so the call completes even when every pool thread is busy.
template <typename Body>
void parallel_rows(ffi::ThreadPool& pool, int64_t rows, const Body& body) {
  const int64_t helpers = std::min<int64_t>(pool.num_threads(), rows) - 1;
  if (helpers <= 0) {
    for (int64_t r = 0; r < rows; ++r) body(r);
    return;
  }
  struct Shared {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> finished{0};
    std::mutex mutex;
    std::condition_variable done;
  };
  auto shared = std::make_shared<Shared>();
  const Body* body_ptr = &body;
  auto work = [shared, rows, body_ptr]() {
    for (int64_t r; (r = shared->next.fetch_add(1)) < rows;) {
      (*body_ptr)(r);  // only reached while the caller is still waiting
      if (shared->finished.fetch_add(1) + 1 == rows) {
        std::lock_guard<std::mutex> lock(shared->mutex);
        shared->done.notify_all();
      }
    }
  };
  for (int64_t h = 0; h < helpers; ++h) pool.Schedule([work]() { work(); });
  work();
  std::unique_lock<std::mutex> lock(shared->mutex);
  shared->done.wait(lock, [&] { return shared->finished.load() == rows; });
}

ffi::Error evaluate(ffi::ThreadPool pool, int64_t model_id, std::string_view content_hash,
                    int64_t nr_moments, ffi::Buffer<ffi::F64> theta, ffi::Buffer<ffi::F64> times,
                    double* pmf, double* moments, double* dpmf, double* dmoments,
                    int64_t pmf_size, int64_t moments_size, double* d2pmf = nullptr,
                    double* d2moments = nullptr) {
  ptdcore_ffi::CallPlan plan;
  ffi::Error status = ptdcore_ffi::plan_call(model_id, content_hash, nr_moments, theta.dimensions(),
                                             times.dimensions(), pmf_size, moments_size, plan);
  if (status.failure()) return status;
  const double* th = theta.typed_data();
  const double* tm = times.typed_data();
  parallel_rows(pool, plan.rows, [&](int64_t r) {
    // One workspace per thread, reused across calls: a thread runs one row at a
    // time, and reusing the buffers matters for small models in long scans.
    thread_local ptdcore::Workspace ws;
    ptdcore_ffi::run_row(plan, r, th, tm, pmf, moments, dpmf, dmoments, ws, d2pmf, d2moments);
  });
  return ffi::Error::Success();
}

ffi::Error PmfMomentsImpl(ffi::ThreadPool pool, int64_t model_id, std::string_view content_hash,
                          int64_t nr_moments, ffi::Buffer<ffi::F64> theta,
                          ffi::Buffer<ffi::F64> times, ffi::ResultBuffer<ffi::F64> pmf,
                          ffi::ResultBuffer<ffi::F64> moments) {
  return evaluate(pool, model_id, content_hash, nr_moments, theta, times, pmf->typed_data(),
                  moments->typed_data(), nullptr, nullptr,
                  static_cast<int64_t>(pmf->element_count()),
                  static_cast<int64_t>(moments->element_count()));
}

ffi::Error PmfMomentsJacobianImpl(ffi::ThreadPool pool, int64_t model_id,
                                  std::string_view content_hash, int64_t nr_moments,
                                  ffi::Buffer<ffi::F64> theta, ffi::Buffer<ffi::F64> times,
                                  ffi::ResultBuffer<ffi::F64> pmf,
                                  ffi::ResultBuffer<ffi::F64> moments,
                                  ffi::ResultBuffer<ffi::F64> dpmf,
                                  ffi::ResultBuffer<ffi::F64> dmoments) {
  const int64_t P = theta.dimensions().size() == 0 ? 0 : theta.dimensions().back();
  if (static_cast<int64_t>(dpmf->element_count()) != static_cast<int64_t>(pmf->element_count()) * P ||
      static_cast<int64_t>(dmoments->element_count()) !=
          static_cast<int64_t>(moments->element_count()) * P)
    return ffi::Error::InvalidArgument("ptdcore ffi: Jacobian output shapes do not match");
  return evaluate(pool, model_id, content_hash, nr_moments, theta, times, pmf->typed_data(),
                  moments->typed_data(), dpmf->typed_data(), dmoments->typed_data(),
                  static_cast<int64_t>(pmf->element_count()),
                  static_cast<int64_t>(moments->element_count()));
}

ffi::Error PmfMomentsHessianImpl(ffi::ThreadPool pool, int64_t model_id,
                                 std::string_view content_hash, int64_t nr_moments,
                                 ffi::Buffer<ffi::F64> theta, ffi::Buffer<ffi::F64> times,
                                 ffi::ResultBuffer<ffi::F64> pmf,
                                 ffi::ResultBuffer<ffi::F64> moments,
                                 ffi::ResultBuffer<ffi::F64> dpmf,
                                 ffi::ResultBuffer<ffi::F64> dmoments,
                                 ffi::ResultBuffer<ffi::F64> d2pmf,
                                 ffi::ResultBuffer<ffi::F64> d2moments) {
  const int64_t P = theta.dimensions().size() == 0 ? 0 : theta.dimensions().back();
  const int64_t pmf_size = static_cast<int64_t>(pmf->element_count());
  const int64_t moments_size = static_cast<int64_t>(moments->element_count());
  if (static_cast<int64_t>(dpmf->element_count()) != pmf_size * P ||
      static_cast<int64_t>(dmoments->element_count()) != moments_size * P ||
      static_cast<int64_t>(d2pmf->element_count()) != pmf_size * P * P ||
      static_cast<int64_t>(d2moments->element_count()) != moments_size * P * P)
    return ffi::Error::InvalidArgument("ptdcore ffi: Hessian output shapes do not match");
  return evaluate(pool, model_id, content_hash, nr_moments, theta, times, pmf->typed_data(),
                  moments->typed_data(), dpmf->typed_data(), dmoments->typed_data(), pmf_size,
                  moments_size, d2pmf->typed_data(), d2moments->typed_data());
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(PtdcorePmfMomentsHessian, PmfMomentsHessianImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()           // XLA's intra-op pool
                                  .Attr<int64_t>("model_id")        // registry id
                                  .Attr<std::string_view>("content_hash")  // checked against id
                                  .Attr<int64_t>("nr_moments")      // K
                                  .Arg<ffi::Buffer<ffi::F64>>()     // theta (..., P)
                                  .Arg<ffi::Buffer<ffi::F64>>()     // times (..., T)
                                  .Ret<ffi::Buffer<ffi::F64>>()     // pmf (..., T)
                                  .Ret<ffi::Buffer<ffi::F64>>()     // moments (..., K)
                                  .Ret<ffi::Buffer<ffi::F64>>()     // dpmf (..., T, P)
                                  .Ret<ffi::Buffer<ffi::F64>>()     // dmoments (..., K, P)
                                  .Ret<ffi::Buffer<ffi::F64>>()     // d2pmf (..., T, P, P)
                                  .Ret<ffi::Buffer<ffi::F64>>());   // d2moments (..., K, P, P)

XLA_FFI_DEFINE_HANDLER_SYMBOL(PtdcorePmfMoments, PmfMomentsImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()           // XLA's intra-op pool
                                  .Attr<int64_t>("model_id")        // registry id
                                  .Attr<std::string_view>("content_hash")  // checked against id
                                  .Attr<int64_t>("nr_moments")      // K
                                  .Arg<ffi::Buffer<ffi::F64>>()     // theta (..., P)
                                  .Arg<ffi::Buffer<ffi::F64>>()     // times (..., T)
                                  .Ret<ffi::Buffer<ffi::F64>>()     // pmf (..., T)
                                  .Ret<ffi::Buffer<ffi::F64>>());   // moments (..., K)

XLA_FFI_DEFINE_HANDLER_SYMBOL(PtdcorePmfMomentsJacobian, PmfMomentsJacobianImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()           // XLA's intra-op pool
                                  .Attr<int64_t>("model_id")        // registry id
                                  .Attr<std::string_view>("content_hash")  // checked against id
                                  .Attr<int64_t>("nr_moments")      // K
                                  .Arg<ffi::Buffer<ffi::F64>>()     // theta (..., P)
                                  .Arg<ffi::Buffer<ffi::F64>>()     // times (..., T)
                                  .Ret<ffi::Buffer<ffi::F64>>()     // pmf (..., T)
                                  .Ret<ffi::Buffer<ffi::F64>>()     // moments (..., K)
                                  .Ret<ffi::Buffer<ffi::F64>>()     // dpmf (..., T, P)
                                  .Ret<ffi::Buffer<ffi::F64>>());   // dmoments (..., K, P)
