// Shared by the CPU and CUDA handlers: checking a call against its model and
// running one batch row. No mathematics here: that is all in cpp/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "model_registry.hpp"
#include "xla/ffi/api/ffi.h"

namespace ptdcore_ffi {

namespace ffi = xla::ffi;

// Everything a handler needs to run the rows of one call.
struct CallPlan {
  std::shared_ptr<const ptdcore::PreparedModel> model;
  int64_t rows = 0, time_rows = 0, P = 0, T = 0, K = 0;
  ptdcore::Output what = ptdcore::Output::kDensity;  // the functional at the times
};

inline int64_t leading_size(ffi::Span<const int64_t> dims) {
  int64_t n = 1;
  for (size_t i = 0; i + 1 < dims.size(); ++i) n *= dims[i];
  return n;
}

// Looks the model up and checks the shapes of theta (..., P), times (..., T)
// and the outputs (element counts pmf_size and moments_size); `output` is the
// functional the pmf buffer receives (0 density, 1 cdf, 2 sf).
inline ffi::Error plan_call(int64_t model_id, std::string_view content_hash, int64_t nr_moments,
                            int64_t output, ffi::Span<const int64_t> tdims, ffi::Span<const int64_t> sdims,
                            int64_t pmf_size, int64_t moments_size, CallPlan& plan) {
  bool released = false;
  const RegisteredModel found = find_model(model_id, &released);
  if (released)
    return ffi::Error::InvalidArgument(
        "ptdcore ffi: model id " + std::to_string(model_id) +
        " was released (the ptdcore model it belonged to was deleted); build the model again");
  if (!found.model) return ffi::Error::InvalidArgument("ptdcore ffi: unknown model id");
  if (found.content_hash != content_hash)
    return ffi::Error::InvalidArgument(
        "ptdcore ffi: model id does not match the structure's content hash");
  if (tdims.size() == 0 || sdims.size() == 0)
    return ffi::Error::InvalidArgument("ptdcore ffi: theta and times need a last axis");
  plan.model = found.model;
  plan.P = tdims.back();
  plan.T = sdims.back();
  plan.K = nr_moments;
  if (plan.P != plan.model->nr_params())
    return ffi::Error::InvalidArgument("ptdcore ffi: theta's last axis is " + std::to_string(plan.P) +
                                       ", the model has " +
                                       std::to_string(plan.model->nr_params()) + " parameters");
  if (output < 0 || output > 2)
    return ffi::Error::InvalidArgument("ptdcore ffi: output must be 0 (density), 1 (cdf) or 2 (sf)");
  plan.what = static_cast<ptdcore::Output>(output);
  if (plan.K < 0) return ffi::Error::InvalidArgument("ptdcore ffi: nr_moments must be >= 0");
  plan.rows = leading_size(tdims);
  plan.time_rows = leading_size(sdims);
  if (plan.time_rows != plan.rows && plan.time_rows != 1)
    return ffi::Error::InvalidArgument("ptdcore ffi: times batch does not match theta batch");
  if (pmf_size != plan.rows * plan.T || moments_size != plan.rows * plan.K)
    return ffi::Error::InvalidArgument("ptdcore ffi: output shapes do not match the inputs");
  return ffi::Error::Success();
}

// Row r of the call (host pointers); dpmf/dmoments null without Jacobians,
// d2pmf/d2moments null without Hessians.
inline void run_row(const CallPlan& plan, int64_t r, const double* theta, const double* times,
                    double* pmf, double* moments, double* dpmf, double* dmoments,
                    ptdcore::Workspace& ws, double* d2pmf = nullptr, double* d2moments = nullptr) {
  const int64_t P = plan.P, T = plan.T, K = plan.K;
  const ptdcore::Outputs o =
      ptdcore::Outputs{pmf, moments, dpmf, dmoments, d2pmf, d2moments, plan.what}.row(r, T, K, P);
  plan.model->evaluate_row(theta + r * P, times + (plan.time_rows == 1 ? 0 : r * T), T, K, o.what,
                           o.pmf, o.moments, o.dpmf, o.dmoments, ws, o.d2pmf, o.d2moments);
}

}  // namespace ptdcore_ffi
