// ptdcore engine: the density (continuous) and the probability mass
// function (discrete), with exact Jacobians.
//
// Both rest on one kernel, the sequence c_k = alpha P^k s for
// P = I + Q / lambda:
//  - continuous, by uniformisation: f(t) = sum_k Pois(k; lambda t) c_k with
//    Q the sub-intensity matrix, s the exit rates and lambda the largest
//    total out-rate, so P is substochastic and every term is non-negative.
//    The Poisson weights are truncated as poisson.hpp describes, which
//    bounds the truncation error by ~1e-40 * lambda in absolute terms, far
//    below the stated 1e-13 relative accuracy wherever the density is not
//    negligible; both tails of the density stay relatively accurate down to
//    values near 1e-300.
//  - discrete: P(N = n) = c_{n-1} with lambda = 1 (P = T, s = t).
// The Jacobian holds lambda fixed: the identity
// exp(Q t) = sum_k Pois(k; lambda t) (I + Q/lambda)^k holds for any lambda,
// so differentiating the series at fixed lambda is exact.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "ptdcore/numeric_graph.hpp"
#include "ptdcore/poisson.hpp"

namespace ptdcore {

// Largest number of series terms evaluated for one theta; times that need
// more (lambda * t beyond ~4e6, or discrete n beyond it) give NaN here.
// method.hpp sends such cases to the squaring ladder (squaring.hpp) instead,
// except on models too large for dense matrices.
inline constexpr int64_t kMaxSeriesTerms = int64_t{1} << 22;

// Scratch space of the series, kept across rows to avoid reallocation.
struct SeriesBuffers {
  std::vector<double> c, dc;  // results: (K+1), (K+1) x P
  std::vector<double> fun, dfun;     // the functional: exits, or ones (n), (n x P)
  std::vector<double> csum, dcsum;   // prefix sums of c and dc (cdf)
  std::vector<double> weights;       // Poisson weights of one time (cdf)
  std::vector<double> diag, wl, gl, ddl, v, v2, dv, dv2, d2v, d2v2;
  std::vector<double> g2l, d2dl, d2fun;  // second derivatives of the weights (/ lambda)
  std::vector<int64_t> in_ptr, in_src;
  std::vector<double> inv_k;  // 1 / k, for the Poisson recurrences
};

// Read-only arrays of one series run (raw pointers: no aliasing surprises).
struct SeriesView {
  int64_t n;
  const int64_t* in_ptr;  // edges into state j: in_ptr[j] .. in_ptr[j + 1]
  const int64_t* in_src;  // their sources
  const double* wl;     // their w / lambda
  const double* gl;     // their g / lambda (x P)
  const double* diag;   // 1 - out / lambda (n)
  const double* ddl;    // dout / lambda (n x P)
  const double* exit;   // (n)
  const double* dexit;  // (n x P)
};

// The iteration c_k = v_k . s, v_{k+1} = v_k P (and its forward-mode
// derivative when kP != 0). kP > 0 fixes the parameter count at compile
// time, kP = -1 reads it from P; kP = 0 computes no derivative.
// With `state` (weights sw[0..K], outputs sv (n) and sdv (n x P), zeroed by
// the caller) it also accumulates sum_k sw[k] v_k and its derivative: the
// state vector at one time (epochs.hpp).
struct SeriesState {
  const double* sw = nullptr;
  double* sv = nullptr;
  double* sdv = nullptr;
};

template <int kP>
void series_iterate(const SeriesView& s, int64_t P_runtime, int64_t K, double* v, double* v2,
                    double* dv, double* dv2, double* c, double* dc,
                    const SeriesState& state = {}) {
  const int64_t P = kP >= 0 ? kP : P_runtime;
  const int64_t n = s.n;
  for (int64_t k = 0;; ++k) {
    if (state.sw && state.sw[k] != 0.0) {
      const double w = state.sw[k];
      for (int64_t i = 0; i < n; ++i) state.sv[i] += w * v[i];
      for (int64_t q = 0; q < n * P && kP != 0; ++q) state.sdv[q] += w * dv[q];
    }
    double ck = 0.0;
    for (int64_t i = 0; i < n; ++i) ck += v[i] * s.exit[i];
    c[k] = ck;
    if (kP != 0) {
      double* dck = dc + k * P;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t p = 0; p < P; ++p) dck[p] += dv[i * P + p] * s.exit[i] + v[i] * s.dexit[i * P + p];
    }
    if (k == K) break;
    // Gather over in-edges: one write per state, accumulators in registers.
    for (int64_t j = 0; j < n; ++j) {
      double acc = v[j] * s.diag[j];
      for (int64_t q = s.in_ptr[j]; q < s.in_ptr[j + 1]; ++q) acc += v[s.in_src[q]] * s.wl[q];
      v2[j] = acc;
    }
    if (kP != 0) {
      for (int64_t j = 0; j < n; ++j) {
        double* out = dv2 + j * P;
        for (int64_t p = 0; p < P; ++p) out[p] = dv[j * P + p] * s.diag[j] - v[j] * s.ddl[j * P + p];
        for (int64_t q = s.in_ptr[j]; q < s.in_ptr[j + 1]; ++q) {
          const int64_t i = s.in_src[q];
          const double vi = v[i], we = s.wl[q];
          const double* dvi = dv + i * P;
          const double* ge = s.gl + q * P;
          for (int64_t p = 0; p < P; ++p) out[p] += dvi[p] * we + vi * ge[p];
        }
      }
      std::swap(dv, dv2);
    }
    std::swap(v, v2);
  }
}

// Second-order forward mode of the same iteration (runtime P): per k, dc holds
// the P first derivatives followed by the P x P second derivatives. P = I + S /
// lambda is linear in theta at fixed lambda and so are the exits, so their
// second derivatives vanish and
//   d2v' = d2v P + dv_p dP_q + dv_q dP_p,  d2c = d2v . s + dv_p . ds_q + dv_q . ds_p.
//
// Weights with second derivatives of their own (the reward transformation's
// rational weights: g2l, d2dl, d2fun non-null, d2alpha the start) add
//   d2v' += v d2P,  d2c += v . d2s.
inline void series_iterate_second(const SeriesView& s, int64_t P, int64_t K, SeriesBuffers& b,
                                  double* c, double* dc, const double* g2l = nullptr,
                                  const double* d2dl = nullptr, const double* d2fun = nullptr,
                                  const double* d2alpha = nullptr) {
  const int64_t n = s.n, cols = P + P * P, PP = P * P;
  std::vector<double>&v = b.v, &v2 = b.v2, &dv = b.dv, &dv2 = b.dv2, &d2v = b.d2v, &d2v2 = b.d2v2;
  if (d2alpha)
    d2v.assign(d2alpha, d2alpha + n * PP);
  else
    d2v.assign(n * PP, 0.0);
  d2v2.assign(n * PP, 0.0);
  for (int64_t k = 0;; ++k) {
    double ck = 0.0;
    double* dck = dc + k * cols;
    for (int64_t i = 0; i < n; ++i) {
      ck += v[i] * s.exit[i];
      for (int64_t p = 0; p < P; ++p) {
        dck[p] += dv[i * P + p] * s.exit[i] + v[i] * s.dexit[i * P + p];
        for (int64_t q = 0; q < P; ++q)
          dck[P + p * P + q] += d2v[(i * P + p) * P + q] * s.exit[i] +
                                dv[i * P + p] * s.dexit[i * P + q] +
                                dv[i * P + q] * s.dexit[i * P + p];
      }
    }
    if (d2fun)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t pq = 0; pq < PP; ++pq) dck[P + pq] += v[i] * d2fun[i * PP + pq];
    c[k] = ck;
    if (k == K) break;
    for (int64_t j = 0; j < n; ++j) {
      double acc = v[j] * s.diag[j];
      double* o1 = dv2.data() + j * P;
      double* o2 = d2v2.data() + j * P * P;
      if (d2dl)
        for (int64_t pq = 0; pq < PP; ++pq) o2[pq] -= v[j] * d2dl[j * PP + pq];
      for (int64_t p = 0; p < P; ++p) {
        o1[p] = dv[j * P + p] * s.diag[j] - v[j] * s.ddl[j * P + p];
        for (int64_t q = 0; q < P; ++q)
          o2[p * P + q] = d2v[(j * P + p) * P + q] * s.diag[j] -
                          dv[j * P + p] * s.ddl[j * P + q] - dv[j * P + q] * s.ddl[j * P + p];
      }
      for (int64_t e = s.in_ptr[j]; e < s.in_ptr[j + 1]; ++e) {
        const int64_t i = s.in_src[e];
        const double we = s.wl[e];
        const double* ge = s.gl + e * P;
        acc += v[i] * we;
        for (int64_t p = 0; p < P; ++p) {
          o1[p] += dv[i * P + p] * we + v[i] * ge[p];
          for (int64_t q = 0; q < P; ++q)
            o2[p * P + q] += d2v[(i * P + p) * P + q] * we + dv[i * P + p] * ge[q] +
                             dv[i * P + q] * ge[p];
        }
        if (g2l)
          for (int64_t pq = 0; pq < PP; ++pq) o2[pq] += v[i] * g2l[e * PP + pq];
      }
      v2[j] = acc;
    }
    std::swap(v, v2);
    std::swap(dv, dv2);
    std::swap(d2v, d2v2);
  }
}

// buf.c (K+1) and buf.dc ((K+1) x cols, only if g.with_grad) for k = 0..K:
// c_k = alpha P^k w with w the exit vector, or all ones when `ones`
// (survival); with `second_order` the columns are the P first and the P x P
// second derivatives (cols = P + P^2), else cols = P.
inline void power_series(const NumericGraph& g, double lambda, int64_t K, SeriesBuffers& buf,
                         bool ones = false, bool second_order = false,
                         const SeriesState& state = {}) {
  const int64_t n = g.n, P = g.P, E = g.nr_edges();
  const bool jac = g.with_grad;
  const double inv = 1.0 / lambda;
  std::vector<double>&diag = buf.diag, &wl = buf.wl, &gl = buf.gl, &ddl = buf.ddl;
  std::vector<double>&v = buf.v, &v2 = buf.v2, &dv = buf.dv, &dv2 = buf.dv2;
  std::vector<double>&c = buf.c, &dc = buf.dc;
  diag.resize(n);
  wl.resize(E);
  gl.resize(jac ? E * P : 0);
  ddl.resize(jac ? n * P : 0);
  for (int64_t i = 0; i < n; ++i) diag[i] = 1.0 - g.out[i] * inv;
  for (size_t q = 0; q < ddl.size(); ++q) ddl[q] = g.dout[q] * inv;
  // Edges grouped by destination (counting sort; order within a group kept).
  std::vector<int64_t>&in_ptr = buf.in_ptr, &in_src = buf.in_src;
  in_ptr.assign(n + 1, 0);
  in_src.resize(E);
  for (int64_t e = 0; e < E; ++e) ++in_ptr[g.dst[e] + 1];
  for (int64_t j = 0; j < n; ++j) in_ptr[j + 1] += in_ptr[j];
  const bool weights2 = jac && second_order && !g.g2.empty();
  const int64_t PP = P * P;
  buf.g2l.assign(weights2 ? E * PP : 0, 0.0);
  for (int64_t e = 0, pos; e < E; ++e) {
    pos = in_ptr[g.dst[e]]++;
    in_src[pos] = g.src[e];
    wl[pos] = g.w[e] * inv;
    for (int64_t p = 0; p < P && jac; ++p) gl[pos * P + p] = g.g[e * P + p] * inv;
    for (int64_t pq = 0; pq < PP && weights2; ++pq) buf.g2l[pos * PP + pq] = g.g2[e * PP + pq] * inv;
  }
  for (int64_t j = n; j > 0; --j) in_ptr[j] = in_ptr[j - 1];
  in_ptr[0] = 0;
  v.assign(g.alpha.begin(), g.alpha.end());
  v2.resize(n);
  dv.assign(jac ? n * P : 0, 0.0);
  dv2.resize(jac ? n * P : 0);
  if (jac && !g.dalpha.empty()) dv.assign(g.dalpha.begin(), g.dalpha.end());
  c.assign(K + 1, 0.0);
  const bool second = jac && second_order;
  dc.assign(jac ? (K + 1) * (second ? P + P * P : P) : 0, 0.0);
  if (ones) {
    buf.fun.assign(n, 1.0);
    buf.dfun.assign(jac ? n * P : 0, 0.0);
  }
  const double* fun = ones ? buf.fun.data() : g.exit.data();
  const double* dfun = ones ? buf.dfun.data() : g.dexit.data();
  const SeriesView view{n,           in_ptr.data(), in_src.data(), wl.data(), gl.data(),
                        diag.data(), ddl.data(),    fun,           dfun};
  if (second) {
    if (!weights2) {
      series_iterate_second(view, P, K, buf, c.data(), dc.data());
      return;
    }
    buf.d2dl.assign(n * PP, 0.0);
    for (int64_t q = 0; q < n * PP; ++q) buf.d2dl[q] = g.d2out.empty() ? 0.0 : g.d2out[q] * inv;
    buf.d2fun.assign(n * PP, 0.0);  // sf: the ones have none; else the exits'
    if (!ones && !g.d2exit.empty()) buf.d2fun.assign(g.d2exit.begin(), g.d2exit.end());
    series_iterate_second(view, P, K, buf, c.data(), dc.data(), buf.g2l.data(), buf.d2dl.data(),
                          buf.d2fun.data(), g.d2alpha.empty() ? nullptr : g.d2alpha.data());
    return;
  }
  switch (jac ? P : 0) {  // compile-time parameter counts for the common cases
    case 0:
      series_iterate<0>(view, 0, K, v.data(), v2.data(), nullptr, nullptr, c.data(), nullptr,
                        state);
      break;
    case 1:
      series_iterate<1>(view, 1, K, v.data(), v2.data(), dv.data(), dv2.data(), c.data(), dc.data(),
                        state);
      break;
    case 2:
      series_iterate<2>(view, 2, K, v.data(), v2.data(), dv.data(), dv2.data(), c.data(), dc.data(),
                        state);
      break;
    case 3:
      series_iterate<3>(view, 3, K, v.data(), v2.data(), dv.data(), dv2.data(), c.data(), dc.data(),
                        state);
      break;
    default:
      series_iterate<-1>(view, P, K, v.data(), v2.data(), dv.data(), dv2.data(), c.data(), dc.data(),
                         state);
  }
}

// The state vector v(t) = alpha exp(S t) = sum_k Pois(k; lambda t) alpha P^k
// (discrete: alpha T^t) and its derivatives (sdv: n x P, when g.with_grad),
// by the series; NaN beyond kMaxSeriesTerms. lambda: the uniformisation rate, at
// least the out-rate of every state that alpha (or dalpha) can reach.
inline void series_state_at_rate(const NumericGraph& g, bool discrete, double lambda, double t,
                                 double* sv, double* sdv, SeriesBuffers& buf) {
  const int64_t n = g.n, P = g.with_grad ? g.P : 0;
  std::fill(sv, sv + n, 0.0);
  if (P) std::fill(sdv, sdv + n * P, 0.0);
  const double m = lambda * t;
  if (!(m > 0.0)) {  // no time, or no state leaves: v = alpha
    std::copy(g.alpha.begin(), g.alpha.end(), sv);
    if (P && !g.dalpha.empty()) std::copy(g.dalpha.begin(), g.dalpha.end(), sdv);
    return;
  }
  const int64_t K = discrete ? static_cast<int64_t>(t) : poisson_right_end(m);
  if (!std::isfinite(m) || K > kMaxSeriesTerms) {
    std::fill(sv, sv + n, std::numeric_limits<double>::quiet_NaN());
    if (P) std::fill(sdv, sdv + n * P, std::numeric_limits<double>::quiet_NaN());
    return;
  }
  std::vector<double>& w = buf.weights;
  w.assign(K + 1, 0.0);
  if (discrete) {
    w[K] = 1.0;
  } else {  // Poisson weights outward from the mode while they can matter, normalised
    const int64_t mode = std::min(poisson_mode(m), K);
    w[mode] = 1.0;
    double total = 1.0;
    for (int64_t k = mode + 1; k <= K && w[k - 1] >= kPoissonCutoff; ++k)
      total += w[k] = w[k - 1] * m / static_cast<double>(k);
    for (int64_t k = mode - 1; k >= 0 && w[k + 1] >= kPoissonCutoff; --k)
      total += w[k] = w[k + 1] * static_cast<double>(k + 1) / m;
    for (double& x : w) x /= total;
  }
  power_series(g, lambda, K, buf, false, false, SeriesState{w.data(), sv, P ? sdv : nullptr});
}

// series_state_at_rate at the largest out-rate of g (discrete: 1).
inline void series_state(const NumericGraph& g, bool discrete, double t, double* sv, double* sdv,
                         SeriesBuffers& buf) {
  series_state_at_rate(g, discrete, discrete ? 1.0 : max_out_rate(g), t, sv, sdv, buf);
}

// f = atom + (1 / lambda) sum_k P(N > k) c_k, N ~ Poisson(m): the distribution
// function by uniformisation (every term non-negative, so the left tail is
// relatively accurate). csum[k] = sum_{j < k} c_j (prefix sums, k <= K + 1).
inline void poisson_tail_sum(double m, double lambda, const double* c, const double* dc,
                             const double* csum, const double* dcsum, int64_t P, int64_t K,
                             double atom, const double* datom, std::vector<double>& w, double* f,
                             double* df) {
  const int64_t mode = std::min<int64_t>(m <= 0.0 ? 0 : poisson_mode(m), K);
  // Unnormalised weights outward from the mode, while they can matter.
  int64_t lo = mode, hi = mode;
  {
    double x = 1.0;
    while (lo > 0 && x >= kPoissonCutoff) {
      x *= static_cast<double>(lo) / m;
      --lo;
    }
    x = 1.0;
    while (hi < K && x >= kPoissonCutoff) {
      x *= m / static_cast<double>(hi + 1);
      ++hi;
    }
  }
  w.assign(hi - lo + 1, 0.0);
  w[mode - lo] = 1.0;
  for (int64_t k = mode + 1; k <= hi; ++k) w[k - lo] = w[k - 1 - lo] * m / static_cast<double>(k);
  for (int64_t k = mode - 1; k >= lo; --k)
    w[k - lo] = w[k + 1 - lo] * static_cast<double>(k + 1) / m;
  double total = 0.0;
  for (double x : w) total += x;
  // Tail probabilities Q_k = P(N > k) for lo <= k <= hi (suffix sums), 1 below lo.
  double F = csum[lo], tail = 0.0;
  for (int64_t p = 0; p < P && dc; ++p) df[p] = dcsum[lo * P + p];
  for (int64_t k = hi; k >= lo; --k) {
    const double Q = tail / total;
    F += Q * c[k];
    for (int64_t p = 0; p < P && dc; ++p) df[p] += Q * dc[k * P + p];
    tail += w[k - lo];
  }
  *f = atom + F / lambda;
  for (int64_t p = 0; p < P && dc; ++p) df[p] = (datom ? datom[p] : 0.0) + df[p] / lambda;
}

// The density, distribution function or survival function (`what`) of a
// continuous model at times[0..T): out (T), dout (T x P). `atom` = P(T = 0)
// with its gradient `datom` (P, or null for zero).
// With `second_order` (and dout) each time gets P first derivatives followed by
// P x P second derivatives in dout (T x (P + P^2)); datom then has that width too.
inline void series_functional(const NumericGraph& g, Output what, double atom,
                              const double* datom, const double* times, int64_t T, double* out,
                              double* dout, SeriesBuffers& buf, bool second_order = false) {
  const int64_t P = dout && second_order ? g.P + g.P * g.P : g.P;
  const bool jac = dout != nullptr;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double lambda = max_out_rate(g);
  auto valid = [&](double t) {
    const double m = lambda * t;
    return std::isfinite(m) && t >= 0.0 && m <= 0.9 * static_cast<double>(kMaxSeriesTerms);
  };
  if (!(lambda > 0.0)) {  // no state ever leaves: the distribution is the atom
    for (int64_t q = 0; q < T; ++q) {
      const bool ok = std::isfinite(times[q]) && times[q] >= 0.0;
      const double value = what == Output::kDensity ? 0.0
                           : what == Output::kCdf   ? atom
                                                    : 1.0 - atom;
      out[q] = ok ? value : nan;
      for (int64_t p = 0; p < P && jac; ++p) {
        const double d = what == Output::kDensity ? 0.0
                         : what == Output::kCdf   ? (datom ? datom[p] : 0.0)
                                                  : (datom ? -datom[p] : 0.0);
        dout[q * P + p] = ok ? d : nan;
      }
    }
    return;
  }
  int64_t K = 0;
  double m_max = -1.0;
  for (int64_t q = 0; q < T; ++q)
    if (valid(times[q])) m_max = std::max(m_max, lambda * times[q]);
  if (m_max >= 0.0) K = poisson_right_end(m_max);
  power_series(g, lambda, K, buf, what == Output::kSurvival, second_order);
  double cmax = 0.0;
  for (double ck : buf.c) cmax = std::max(cmax, std::fabs(ck));
  buf.inv_k.resize(K + 1);
  buf.inv_k[0] = 0.0;
  for (int64_t k = 1; k <= K; ++k) buf.inv_k[k] = 1.0 / static_cast<double>(k);
  if (what == Output::kCdf) {
    buf.csum.assign(K + 2, 0.0);
    buf.dcsum.assign(jac ? (K + 2) * P : 0, 0.0);
    for (int64_t k = 0; k <= K; ++k) {
      buf.csum[k + 1] = buf.csum[k] + buf.c[k];
      for (int64_t p = 0; p < P && jac; ++p)
        buf.dcsum[(k + 1) * P + p] = buf.dcsum[k * P + p] + buf.dc[k * P + p];
    }
  }
  for (int64_t q = 0; q < T; ++q) {
    if (!valid(times[q])) {
      out[q] = nan;
      for (int64_t p = 0; p < P && jac; ++p) dout[q * P + p] = nan;
      continue;
    }
    const double m = lambda * times[q];
    if (what == Output::kCdf) {
      poisson_tail_sum(m, lambda, buf.c.data(), jac ? buf.dc.data() : nullptr, buf.csum.data(),
                       jac ? buf.dcsum.data() : nullptr, P, K, atom, datom, buf.weights, out + q,
                       jac ? dout + q * P : nullptr);
      continue;
    }
    poisson_sum(m, buf.c.data(), jac ? buf.dc.data() : nullptr, P, K, cmax, buf.inv_k.data(),
                out + q, jac ? dout + q * P : nullptr);
  }
}

// The probability mass, distribution function or survival function of a
// discrete model at whole numbers times[0..T):
//   P(N = n) = alpha T^(n-1) t,  P(N > n) = alpha T^n 1,
//   P(N <= n) = atom + sum_{k < n} alpha T^k t  (atom = P(N = 0)).
inline void series_mass(const NumericGraph& g, Output what, double atom, const double* datom,
                        const double* times, int64_t T, double* out, double* dout,
                        SeriesBuffers& buf, bool second_order = false) {
  const int64_t P = dout && second_order ? g.P + g.P * g.P : g.P;
  const bool jac = dout != nullptr;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  int64_t K = 0;
  auto step_of = [](double t) -> int64_t {  // -1: not a valid whole number
    if (!std::isfinite(t) || t < 0.0 || t != std::floor(t) ||
        t > static_cast<double>(kMaxSeriesTerms))
      return -1;
    return static_cast<int64_t>(t);
  };
  for (int64_t q = 0; q < T; ++q) K = std::max(K, step_of(times[q]));
  power_series(g, 1.0, K, buf, what == Output::kSurvival, second_order);
  const std::vector<double>&c = buf.c, &dc = buf.dc;
  if (what == Output::kCdf) {  // csum[n] = atom + c_0 + ... + c_{n-1}, summed in that order
    buf.csum.assign(K + 2, 0.0);
    buf.dcsum.assign(jac ? (K + 2) * P : 0, 0.0);
    buf.csum[0] = atom;
    for (int64_t p = 0; p < P && jac; ++p) buf.dcsum[p] = datom ? datom[p] : 0.0;
    for (int64_t k = 0; k <= K; ++k) {
      buf.csum[k + 1] = buf.csum[k] + c[k];
      for (int64_t p = 0; p < P && jac; ++p)
        buf.dcsum[(k + 1) * P + p] = buf.dcsum[k * P + p] + dc[k * P + p];
    }
  }
  for (int64_t q = 0; q < T; ++q) {
    const int64_t step = step_of(times[q]);
    double* d = jac ? dout + q * P : nullptr;
    if (step < 0) {
      out[q] = nan;
      for (int64_t p = 0; p < P && jac; ++p) d[p] = nan;
    } else if (what == Output::kSurvival) {
      out[q] = c[step];
      for (int64_t p = 0; p < P && jac; ++p) d[p] = dc[step * P + p];
    } else if (what == Output::kCdf) {
      out[q] = buf.csum[step];
      for (int64_t p = 0; p < P && jac; ++p) d[p] = buf.dcsum[step * P + p];
    } else if (step == 0) {
      out[q] = atom;
      for (int64_t p = 0; p < P && jac; ++p) d[p] = datom ? datom[p] : 0.0;
    } else {
      out[q] = c[step - 1];
      for (int64_t p = 0; p < P && jac; ++p) d[p] = dc[(step - 1) * P + p];
    }
  }
}

}  // namespace ptdcore
