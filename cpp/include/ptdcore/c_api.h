/* ptdcore engine: the C ABI (used by the cffi backend and by C callers).
 *
 * Every function is thread-safe: a ptd_model is immutable once created.
 * Errors are reported through the return value and a caller-provided
 * message buffer, never by aborting. */
#ifndef PTDCORE_C_API_H
#define PTDCORE_C_API_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define PTD_EXPORT __declspec(dllexport)
#else
#define PTD_EXPORT __attribute__((visibility("default")))
#endif

typedef struct ptd_model ptd_model;

/* Builds and validates a model; NULL on failure with the reason in err.
 * dst[e] == -1 is the exit; rewards (nr_rewards values) may be NULL;
 * reward_matrix non-zero: no times, the moments hold the means and cross
 * moments of the reward columns (rewards is nr_states x m, row-major). epochs:
 * see ptdcore/epochs.hpp (1 for a time-homogeneous model). */
PTD_EXPORT ptd_model* ptd_model_new(int64_t nr_states, int64_t nr_params, int discrete,
                                    const double* alpha, int64_t nr_edges, const int64_t* src,
                                    const int64_t* dst, const double* constant,
                                    const int64_t* coef_ptr, const int64_t* coef_index,
                                    const double* coef_value, const double* rewards,
                                    int64_t nr_rewards, int reward_matrix, int64_t epochs, char* err,
                                    int64_t err_len);

PTD_EXPORT void ptd_model_free(ptd_model* model);

/* Evaluates a batch of B parameter vectors (theta is B x P, row-major).
 * pmf is B x T, moments B x K; dpmf (B x T x P) and dmoments (B x K x P)
 * may both be NULL when no Jacobian is wanted. output is what pmf receives at
 * the times: 0 the density (probability mass), 1 the cdf, 2 the survival
 * function. threads = 0 uses every core.
 * Returns 0 on success, non-zero with the reason in err otherwise. */
PTD_EXPORT int ptd_model_evaluate(const ptd_model* model, const double* theta, int64_t B,
                                  const double* times, int64_t T, int64_t K, int output,
                                  double* pmf, double* moments, double* dpmf, double* dmoments,
                                  int threads, char* err, int64_t err_len);

/* As ptd_model_evaluate, plus the Hessians d2pmf (B x T x P x P) and d2moments
 * (B x K x P x P); both NULL, or both given together with the Jacobians. */
PTD_EXPORT int ptd_model_evaluate_hessian(const ptd_model* model, const double* theta, int64_t B,
                                          const double* times, int64_t T, int64_t K, int output,
                                          double* pmf,
                                          double* moments, double* dpmf, double* dmoments,
                                          double* d2pmf, double* d2moments, int threads,
                                          char* err, int64_t err_len);

/* count exact draws of T (of Y with rewards) at theta (nr_params values) into
 * out, reproducible from seed whatever the thread count. Returns 0 on success. */
PTD_EXPORT int ptd_model_sample(const ptd_model* model, const double* theta, int64_t count,
                                uint64_t seed, double* out, int threads, char* err,
                                int64_t err_len);

PTD_EXPORT int64_t ptd_model_nr_params(const ptd_model* model);

#ifdef __cplusplus
}
#endif

#endif /* PTDCORE_C_API_H */
