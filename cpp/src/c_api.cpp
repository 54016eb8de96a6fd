// ptdcore engine: the C ABI over PreparedModel.
#include "ptdcore/c_api.h"

#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "ptdcore/engine.hpp"

struct ptd_model {
  ptdcore::PreparedModel prepared;
};

namespace {

void write_error(char* err, int64_t err_len, const char* msg) {
  if (err == nullptr || err_len <= 0) return;
  std::strncpy(err, msg, static_cast<size_t>(err_len - 1));
  err[err_len - 1] = '\0';
}

}  // namespace

extern "C" {

ptd_model* ptd_model_new(int64_t nr_states, int64_t nr_params, int discrete, const double* alpha,
                         int64_t nr_edges, const int64_t* src, const int64_t* dst,
                         const double* constant, const int64_t* coef_ptr,
                         const int64_t* coef_index, const double* coef_value,
                         const double* rewards, int64_t nr_rewards, int output, int64_t epochs,
                         char* err, int64_t err_len) {
  try {
    if (nr_states < 1 || nr_edges < 0 || nr_params < 0)
      throw std::invalid_argument("negative or zero sizes");
    ptdcore::Structure s;
    s.nr_states = nr_states;
    s.nr_params = nr_params;
    s.discrete = discrete != 0;
    s.alpha.assign(alpha, alpha + nr_states);
    s.src.assign(src, src + nr_edges);
    s.dst.assign(dst, dst + nr_edges);
    s.constant.assign(constant, constant + nr_edges);
    s.coef_ptr.assign(coef_ptr, coef_ptr + nr_edges + 1);
    const int64_t nnz = coef_ptr[nr_edges];
    if (nnz < 0) throw std::invalid_argument("coef_ptr must end at a non-negative count");
    s.coef_index.assign(coef_index, coef_index + nnz);
    s.coef_value.assign(coef_value, coef_value + nnz);
    if (nr_rewards < 0) throw std::invalid_argument("nr_rewards must be >= 0");
    if (rewards != nullptr) s.rewards.assign(rewards, rewards + nr_rewards);
    s.output = output;
    s.epochs = epochs;
    return new ptd_model{ptdcore::PreparedModel(std::move(s))};
  } catch (const std::exception& e) {
    write_error(err, err_len, e.what());
  }
  return nullptr;
}

void ptd_model_free(ptd_model* model) { delete model; }

int64_t ptd_model_nr_params(const ptd_model* model) { return model->prepared.nr_params(); }

int ptd_model_evaluate(const ptd_model* model, const double* theta, int64_t B, const double* times,
                       int64_t T, int64_t K, double* pmf, double* moments, double* dpmf,
                       double* dmoments, int threads, char* err, int64_t err_len) {
  return ptd_model_evaluate_hessian(model, theta, B, times, T, K, pmf, moments, dpmf, dmoments,
                                    nullptr, nullptr, threads, err, err_len);
}

int ptd_model_evaluate_hessian(const ptd_model* model, const double* theta, int64_t B,
                               const double* times, int64_t T, int64_t K, double* pmf,
                               double* moments, double* dpmf, double* dmoments, double* d2pmf,
                               double* d2moments, int threads, char* err, int64_t err_len) {
  try {
    if (model == nullptr) throw std::invalid_argument("model is NULL");
    if (B < 0 || T < 0 || K < 0) throw std::invalid_argument("negative batch, times or moments");
    if ((dpmf == nullptr) != (dmoments == nullptr))
      throw std::invalid_argument("dpmf and dmoments must both be given or both be NULL");
    if ((d2pmf == nullptr) != (d2moments == nullptr) || (d2pmf != nullptr && dpmf == nullptr))
      throw std::invalid_argument("d2pmf and d2moments need each other and the Jacobians");
    ptdcore::Outputs out{pmf, moments, dpmf, dmoments, d2pmf, d2moments};
    ptdcore::evaluate_batch(model->prepared, theta, B, times, T, K, out, threads);
    return 0;
  } catch (const std::exception& e) {
    write_error(err, err_len, e.what());
  }
  return 1;
}

}  // extern "C"
