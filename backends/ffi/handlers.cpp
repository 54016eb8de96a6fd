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

#include "model_registry.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

// Exported so that the handlers can also be found by symbol name.
extern "C" __attribute__((visibility("default"))) XLA_FFI_Error* PtdcorePmfMoments(
    XLA_FFI_CallFrame* call_frame);
extern "C" __attribute__((visibility("default"))) XLA_FFI_Error* PtdcorePmfMomentsJacobian(
    XLA_FFI_CallFrame* call_frame);

namespace {

int64_t leading_size(ffi::Span<const int64_t> dims) {
  int64_t n = 1;
  for (size_t i = 0; i + 1 < dims.size(); ++i) n *= dims[i];
  return n;
}

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
                    int64_t pmf_size, int64_t moments_size) {
  const ptdcore_ffi::RegisteredModel found = ptdcore_ffi::find_model(model_id);
  if (!found.model) return ffi::Error::InvalidArgument("ptdcore ffi: unknown model id");
  if (found.content_hash != content_hash)
    return ffi::Error::InvalidArgument(
        "ptdcore ffi: model id does not match the structure's content hash");
  const ptdcore::PreparedModel& model = *found.model;
  const auto tdims = theta.dimensions();
  const auto sdims = times.dimensions();
  if (tdims.size() == 0 || sdims.size() == 0)
    return ffi::Error::InvalidArgument("ptdcore ffi: theta and times need a last axis");
  const int64_t P = tdims.back(), T = sdims.back(), K = nr_moments;
  if (P != model.nr_params())
    return ffi::Error::InvalidArgument("ptdcore ffi: theta's last axis is " + std::to_string(P) +
                                       ", the model has " + std::to_string(model.nr_params()) +
                                       " parameters");
  if (K < 0) return ffi::Error::InvalidArgument("ptdcore ffi: nr_moments must be >= 0");
  const int64_t rows = leading_size(tdims);
  const int64_t time_rows = leading_size(sdims);
  if (time_rows != rows && time_rows != 1)
    return ffi::Error::InvalidArgument("ptdcore ffi: times batch does not match theta batch");
  if (pmf_size != rows * T || moments_size != rows * K)
    return ffi::Error::InvalidArgument("ptdcore ffi: output shapes do not match the inputs");
  const double* th = theta.typed_data();
  const double* tm = times.typed_data();
  parallel_rows(pool, rows, [&](int64_t r) {
    ptdcore::Workspace ws;
    model.evaluate_row(th + r * P, tm + (time_rows == 1 ? 0 : r * T), T, K, pmf + r * T,
                       moments + r * K, dpmf ? dpmf + r * T * P : nullptr,
                       dmoments ? dmoments + r * K * P : nullptr, ws);
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

}  // namespace

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
