// ptdcore engine: Poisson weights for uniformisation.
//
// The weights exp(-m) m^k / k! are generated outward from the mode by the
// recurrences w_{k+1} = w_k m / (k+1) and w_{k-1} = w_k k / m, starting
// from 1 at the mode, and normalised by their own sum (the idea of Fox and
// Glynn, 1988): nothing under- or overflows for any m, and no exp or lgamma
// enters the result.
//
// Truncation:
// - right: the series is computed up to the first k above the mode whose
//   weight is below kPoissonCutoff (1e-40) of the mode weight, so the
//   neglected mass is below ~1e-40;
// - summation (both sides): terms are added outward from the mode until the
//   weight is below kPoissonNormCutoff of the mode (for the normaliser) and
//   the term can no longer matter: w * max_k |c_k| <= kPoissonTermCutoff (1e-17) * |sum|.
//   Far tails of the density, which come from terms far from the mode,
//   therefore stay relatively accurate (down to values near 1e-300).
#pragma once

#include <cmath>
#include <cstdint>

namespace ptdcore {

inline constexpr double kPoissonCutoff = 1e-40;
inline constexpr double kPoissonNormCutoff = 1e-17;
inline constexpr double kPoissonTermCutoff = 1e-17;
inline constexpr double kPoissonUnderflow = 1e-300;

inline int64_t poisson_mode(double m) { return static_cast<int64_t>(std::floor(m)); }

// The last series index needed for Poisson(m): the first k > mode with
// w_k / w_mode < kPoissonCutoff (m >= 0 and finite).
inline int64_t poisson_right_end(double m) {
  if (m <= 0.0) return 0;
  int64_t k = poisson_mode(m);
  for (double w = 1.0; w >= kPoissonCutoff; ++k) w *= m / static_cast<double>(k + 1);
  return k;
}

// f = sum_k Pois(k; m) c_k and df[p] = sum_k Pois(k; m) dc[k * P + p] over
// k in [0, K] (K >= poisson_right_end(m)); cmax bounds |c_k|. dc may be null.
// inv_k[k] = 1 / k for 1 <= k <= K (a table, so the recurrences multiply).
inline void poisson_sum(double m, const double* c, const double* dc, int64_t P, int64_t K,
                        double cmax, const double* inv_k, double* f, double* df) {
  const int64_t mode = m <= 0.0 ? 0 : poisson_mode(m);
  double total = 1.0, F = c[mode];
  for (int64_t p = 0; p < P && dc; ++p) df[p] = dc[mode * P + p];
  auto done = [&](double w) {
    if (w < kPoissonUnderflow) return true;
    return w < kPoissonNormCutoff && w * cmax <= kPoissonTermCutoff * std::fabs(F);
  };
  double w = 1.0;
  for (int64_t k = mode + 1; k <= K; ++k) {
    w *= m * inv_k[k];
    total += w;
    F += w * c[k];
    for (int64_t p = 0; p < P && dc; ++p) df[p] += w * dc[k * P + p];
    if (done(w)) break;
  }
  w = 1.0;
  const double inv_m = 1.0 / m;
  for (int64_t k = mode - 1; k >= 0; --k) {
    w *= static_cast<double>(k + 1) * inv_m;
    total += w;
    F += w * c[k];
    for (int64_t p = 0; p < P && dc; ++p) df[p] += w * dc[k * P + p];
    if (done(w)) break;
  }
  *f = F / total;
  for (int64_t p = 0; p < P && dc; ++p) df[p] /= total;
}

}  // namespace ptdcore
