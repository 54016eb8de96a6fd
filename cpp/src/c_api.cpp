// ptdcore engine: the C ABI over PreparedModel.
#include "ptdcore/c_api.h"

#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "ptdcore/engine.hpp"
#include "ptdcore/sampling.hpp"

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
                         const double* rewards, int64_t nr_rewards, int reward_matrix, int64_t epochs,
                         char* err, int64_t err_len) {
  try {
    return new ptd_model{ptdcore::PreparedModel(ptdcore::structure_from_arrays(
        nr_states, nr_params, discrete != 0, alpha, nr_edges, src, dst, constant, coef_ptr,
        coef_index, coef_value, rewards, nr_rewards, reward_matrix != 0, epochs))};
  } catch (const std::exception& e) {
    write_error(err, err_len, e.what());
  }
  return nullptr;
}

void ptd_model_free(ptd_model* model) { delete model; }

int64_t ptd_model_nr_params(const ptd_model* model) { return model->prepared.nr_params(); }

int ptd_model_sample(const ptd_model* model, const double* theta, int64_t count, uint64_t seed,
                     double* out, int threads, char* err, int64_t err_len) {
  try {
    if (model == nullptr) throw std::invalid_argument("model is NULL");
    if (count < 0) throw std::invalid_argument("the number of draws must be >= 0");
    ptdcore::sample_draws(model->prepared.structure(), theta, count, seed, out, threads);
    return 0;
  } catch (const std::exception& e) {
    write_error(err, err_len, e.what());
  }
  return 1;
}

int ptd_model_evaluate(const ptd_model* model, const double* theta, int64_t B, const double* times,
                       int64_t T, int64_t K, int output, double* pmf, double* moments,
                       double* dpmf, double* dmoments, int threads, char* err, int64_t err_len) {
  return ptd_model_evaluate_hessian(model, theta, B, times, T, K, output, pmf, moments, dpmf,
                                    dmoments,
                                    nullptr, nullptr, threads, err, err_len);
}

int ptd_model_evaluate_hessian(const ptd_model* model, const double* theta, int64_t B,
                               const double* times, int64_t T, int64_t K, int output, double* pmf,
                               double* moments, double* dpmf, double* dmoments, double* d2pmf,
                               double* d2moments, int threads, char* err, int64_t err_len) {
  try {
    if (model == nullptr) throw std::invalid_argument("model is NULL");
    if (B < 0 || T < 0 || K < 0) throw std::invalid_argument("negative batch, times or moments");
    if ((dpmf == nullptr) != (dmoments == nullptr))
      throw std::invalid_argument("dpmf and dmoments must both be given or both be NULL");
    if ((d2pmf == nullptr) != (d2moments == nullptr) || (d2pmf != nullptr && dpmf == nullptr))
      throw std::invalid_argument("d2pmf and d2moments need each other and the Jacobians");
    const ptdcore::Output what = ptdcore::output_from_code(output);
    ptdcore::Outputs out{pmf, moments, dpmf, dmoments, d2pmf, d2moments, what};
    ptdcore::evaluate_batch(model->prepared, theta, B, times, T, K, out, threads);
    return 0;
  } catch (const std::exception& e) {
    write_error(err, err_len, e.what());
  }
  return 1;
}

}  // extern "C"
