// ptdcore engine: the density by scaling and squaring of a non-negative
// matrix, for stiff and long-time cases (dense; small and mid-size models).
//
// Uniformisation needs about lambda * t series terms, and its rounding error
// grows with their number: a state whose out-rate is far below lambda has
// P_ii = 1 - out_i / lambda, whose complement is held to absolute, not
// relative, precision, so the k-th power carries a relative error of about
// k * eps. This header computes the same quantities with a cost and a
// rounding error that grow with log2(lambda t) instead:
//
//  1. Base step h0 = m0 / lambda (m0 = 1/4): E0 = exp(S h0) by the
//     uniformisation series of the non-negative matrix B = I + S / lambda
//     (every term non-negative, truncated below 1e-28), and the one-step
//     absorption probabilities l0 = 1 - E0 1 as their own non-negative series
//     sum_k P(N > k) B^k s / lambda (N ~ Poisson(m0)).
//  2. Ladder E_{k+1} = E_k^2, l_{k+1} = l_k + E_k l_k (both sums of
//     non-negative terms). The mass a row keeps within its strongly connected
//     component C has the complement (l_k)_i + sum_{j not in C} (E_k)_ij, a
//     sum of non-negative terms too; wherever it is at most 1/2 the entries
//     within C are rescaled to match it. So the slow modes of leaving a
//     component (a slow state, or a fast-mixing block such as the migration
//     states of one coalescent level) keep their complement to relative
//     precision, and errors grow additively (about eps per level), not by
//     doubling as in plain squaring. (A slow mode inside one component, two
//     fast-mixing clusters joined by slow exchange, is not protected: its
//     error grows like (fast rate x t) eps, as with the series.)
//  3. Times in increasing order: v(J h0) = alpha E0^J by the binary digits of
//     the step counts between consecutive times (products of non-negative
//     vectors and matrices), and the rest r = t - J h0 < h0 by a short
//     uniformisation sum f(t) = sum_k Pois(k; lambda r) v(J h0) . B^k s.
//
// Every value is a sum of non-negative terms, so the density is relatively
// accurate entrywise; the error bound is about (K0 + L + digits) * n * eps with
// L = log2(lambda t / m0) levels. Discrete models use the same ladder with
// E0 = T (one step) and no remainder: P(N = n) = alpha T^(n-1) t.
//
// The Jacobian is carried through in forward mode at fixed lambda (as in
// distribution.hpp: the uniformisation identity holds for any lambda).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "ptdcore/dense_kernels.hpp"
#include "ptdcore/linear_solver.hpp"
#include "ptdcore/numeric_graph.hpp"
#include "ptdcore/poisson.hpp"

namespace ptdcore {

// Base step of the continuous ladder: lambda * h0.
inline constexpr double kSquaringBaseStep = 0.25;
// Series terms of the base step: Pois(19; 1/4) < 1e-28.
inline constexpr int64_t kSquaringBaseTerms = 18;
// Step counts above this give NaN (lambda t beyond ~2e28). Step counts are
// doubles: past 2^53 their lowest binary digits fall below the resolution of
// t itself (an error of a few ulps of t, relative 1e-16 in time), and the
// ladder takes the digits that remain.
inline constexpr double kSquaringMaxSteps = 0x1p96;

struct SquaringBuffers {
  std::vector<double> B, dB;           // n x n, P x n x n (row-major per parameter)
  std::vector<double> E, dE;           // ladder: (L + 1) levels of n x n, P x n x n
  std::vector<double> l, dl, l2, dl2;  // one-step absorption probabilities (n), (P x n)
  std::vector<double> Bk, dBk, tmp, dtmp;
  std::vector<double> U, dU;           // remainder columns u_k = B^k s: (K + 1) x n, x P
  std::vector<double> v, dv, v2, dv2;  // state probabilities at the current time
  std::vector<double> y, dy;           // remainder: sum_k weight_k u_k (n), (P x n)
  std::vector<double> inv_k;           // 1 / k for the remainder weights
  std::vector<int64_t> order;
  std::vector<int64_t> comp_of, comp_ptr, comp_states;  // components at this theta
  std::vector<double> lv, dlv;         // l of every level: (L + 1) x n, (L + 1) x P x n
  std::vector<double> pois, tails;     // Poisson weights and tails of one remainder (cdf)
};

namespace detail {

// Restores the complement of each row's mass within its strongly connected
// component C(i): out_i = l_i + sum_{j not in C(i)} E_ij is a sum of
// non-negative terms (relatively accurate); where it is at most 1/2 the
// entries of row i within C(i) are rescaled to sum to 1 - out_i exactly (a
// relative change of rounding size), and their derivatives are shifted in
// proportion so that they sum to -d out_i. For a component of one state this
// sets the diagonal from its complement. comp_ptr / comp_states list the
// states of each component, comp_of maps a state to its component.
inline void fix_complements(double* E, double* dE, const double* l, const double* dl, int64_t n,
                            int64_t P, const std::vector<int64_t>& comp_of,
                            const std::vector<int64_t>& comp_ptr,
                            const std::vector<int64_t>& comp_states) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = comp_of[i];
    double outside = l[i], inside = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      if (comp_of[j] == c)
        inside += E[i * n + j];
      else
        outside += E[i * n + j];
    }
    if (!(outside <= 0.5) || !(inside > 0.0)) continue;
    const double scale = (1.0 - outside) / inside;
    for (int64_t q = comp_ptr[c]; q < comp_ptr[c + 1]; ++q) E[i * n + comp_states[q]] *= scale;
    const double total = 1.0 - outside;
    for (int64_t p = 0; p < P && dE; ++p) {
      double* dEp = dE + p * n * n;
      double doutside = dl[p * n + i], dinside = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        if (comp_of[j] == c)
          dinside += dEp[i * n + j];
        else
          doutside += dEp[i * n + j];
      }
      const double shift = -doutside - dinside;  // what the inside derivatives miss
      for (int64_t q = comp_ptr[c]; q < comp_ptr[c + 1]; ++q) {
        const int64_t j = comp_states[q];
        dEp[i * n + j] += shift * (E[i * n + j] / total);
      }
    }
  }
}

// Whether the step count `remaining` (a whole number, as a double) has binary
// digit k set, taken from the top: then 2^k is subtracted. Past 2^53 the digits
// below the double's resolution read as set: a few ulps of extra steps.
inline bool take_binary_digit(double& remaining, int64_t k) {
  const double digit = std::ldexp(1.0, static_cast<int>(k));
  if (remaining < digit) return false;
  remaining -= digit;
  return true;
}

}  // namespace detail

// Number of ladder levels needed for `steps` base steps (steps >= 1).
inline int64_t squaring_levels(double steps) {
  int64_t L = 0;
  while (std::ldexp(1.0, static_cast<int>(L)) <= steps) ++L;
  return L;
}

// Rough flop counts, used to choose between this method and the series.
inline double squaring_cost(int64_t n, int64_t P, bool jac, double steps, int64_t T, bool discrete) {
  const double f = jac ? 1.0 + 2.0 * static_cast<double>(P) : 1.0;
  const double L = static_cast<double>(squaring_levels(std::max(steps, 1.0)));
  const double nn = static_cast<double>(n) * static_cast<double>(n);
  const double base = discrete ? 0.0 : static_cast<double>(kSquaringBaseTerms) * nn * n;
  return f * (base + L * nn * n + static_cast<double>(T) * (0.5 * L * nn + (discrete ? n : 12.0 * n)));
}

// Builds the ladder: levels 0..L of E (and l) in buf, from the base step.
// Continuous: base = exp(S h0), h0 = kSquaringBaseStep / lambda. Discrete: base = T.
inline void build_ladder(const NumericGraph& g, bool discrete, double lambda, int64_t L,
                         SquaringBuffers& buf) {
  const int64_t n = g.n, P = g.with_grad ? g.P : 0, nn = n * n;
  const double inv = discrete ? 1.0 : 1.0 / lambda;
  // B = I + S / lambda (discrete: T itself), b = s / lambda.
  buf.B.assign(nn, 0.0);
  buf.dB.assign(P * nn, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    buf.B[i * n + i] = 1.0 - g.out[i] * inv;
    for (int64_t p = 0; p < P; ++p) buf.dB[p * nn + i * n + i] = -g.dout[i * g.P + p] * inv;
  }
  for (int64_t e = 0; e < g.nr_edges(); ++e) {
    const int64_t i = g.src[e], j = g.dst[e];
    buf.B[i * n + j] += g.w[e] * inv;
    for (int64_t p = 0; p < P; ++p) buf.dB[p * nn + i * n + j] += g.g[e * g.P + p] * inv;
  }
  // Strongly connected components at this theta (edges of positive weight).
  {
    std::vector<int64_t> src, dst;
    for (int64_t e = 0; e < g.nr_edges(); ++e)
      if (g.w[e] > 0.0) src.push_back(g.src[e]), dst.push_back(g.dst[e]);
    const SccTopology topo = build_topology(n, src, dst);
    buf.comp_of = topo.scc_of;
    buf.comp_ptr = topo.scc_ptr;
    buf.comp_states = topo.order;
  }
  buf.E.assign((L + 1) * nn, 0.0);
  buf.dE.assign((L + 1) * P * nn, 0.0);
  buf.l.assign(n, 0.0);
  buf.dl.assign(P * n, 0.0);
  double* E0 = buf.E.data();
  double* dE0 = buf.dE.data();
  if (discrete) {
    std::copy(buf.B.begin(), buf.B.end(), E0);
    std::copy(buf.dB.begin(), buf.dB.end(), dE0);
    for (int64_t i = 0; i < n; ++i) {
      buf.l[i] = g.exit[i];
      for (int64_t p = 0; p < P; ++p) buf.dl[p * n + i] = g.dexit[i * g.P + p];
    }
  } else {
    // Poisson(m0) weights and tails P(N > k), the tails summed from the far end.
    const int64_t K0 = kSquaringBaseTerms;
    std::vector<double> pois(K0 + 12), tail(K0 + 1);
    pois[0] = std::exp(-kSquaringBaseStep);
    for (size_t k = 1; k < pois.size(); ++k)
      pois[k] = pois[k - 1] * kSquaringBaseStep / static_cast<double>(k);
    double acc = 0.0;
    for (int64_t k = static_cast<int64_t>(pois.size()) - 1; k >= 0; --k) {
      if (k <= K0) tail[k] = acc;  // sum over j > k
      acc += pois[k];
    }
    // Bk = B^k (with dBk), y = B^k b (with dy); accumulate E0 and l0.
    buf.Bk.assign(nn, 0.0);
    buf.dBk.assign(P * nn, 0.0);
    for (int64_t i = 0; i < n; ++i) buf.Bk[i * n + i] = 1.0;
    std::vector<double> y(n), dy(P * n), y2(n), dy2(P * n);
    for (int64_t i = 0; i < n; ++i) {
      y[i] = g.exit[i] * inv;
      for (int64_t p = 0; p < P; ++p) dy[p * n + i] = g.dexit[i * g.P + p] * inv;
    }
    buf.tmp.resize(nn);
    buf.dtmp.resize(P * nn);
    for (int64_t k = 0; k <= K0; ++k) {
      for (int64_t q = 0; q < nn; ++q) E0[q] += pois[k] * buf.Bk[q];
      for (int64_t q = 0; q < P * nn; ++q) dE0[q] += pois[k] * buf.dBk[q];
      for (int64_t i = 0; i < n; ++i) buf.l[i] += tail[k] * y[i];
      for (int64_t q = 0; q < P * n; ++q) buf.dl[q] += tail[k] * dy[q];
      if (k == K0) break;
      // dBk' = dBk B + Bk dB ; Bk' = Bk B
      for (int64_t p = 0; p < P; ++p) {
        detail::matmul(buf.dBk.data() + p * nn, buf.B.data(), buf.dtmp.data() + p * nn, n);
        detail::matmul_add(buf.Bk.data(), buf.dB.data() + p * nn, buf.dtmp.data() + p * nn, n);
      }
      detail::matmul(buf.Bk.data(), buf.B.data(), buf.tmp.data(), n);
      std::swap(buf.Bk, buf.tmp);
      std::swap(buf.dBk, buf.dtmp);
      // y' = B y ; dy' = dB y + B dy
      std::fill(y2.begin(), y2.end(), 0.0);
      detail::matvec_add(buf.B.data(), y.data(), y2.data(), n);
      std::fill(dy2.begin(), dy2.end(), 0.0);
      for (int64_t p = 0; p < P; ++p) {
        detail::matvec_add(buf.dB.data() + p * nn, y.data(), dy2.data() + p * n, n);
        detail::matvec_add(buf.B.data(), dy.data() + p * n, dy2.data() + p * n, n);
      }
      std::swap(y, y2);
      std::swap(dy, dy2);
    }
    detail::fix_complements(E0, P ? dE0 : nullptr, buf.l.data(), buf.dl.data(), n, P, buf.comp_of,
                            buf.comp_ptr, buf.comp_states);
  }
  // Squarings; l of every level is kept (the cdf adds v . l_k before each step).
  buf.lv.assign((L + 1) * n, 0.0);
  buf.dlv.assign((L + 1) * P * n, 0.0);
  std::copy(buf.l.begin(), buf.l.end(), buf.lv.begin());
  std::copy(buf.dl.begin(), buf.dl.end(), buf.dlv.begin());
  buf.l2.resize(n);
  buf.dl2.resize(P * n);
  for (int64_t k = 0; k < L; ++k) {
    const double* Ek = buf.E.data() + k * nn;
    const double* dEk = buf.dE.data() + k * P * nn;
    double* En = buf.E.data() + (k + 1) * nn;
    double* dEn = buf.dE.data() + (k + 1) * P * nn;
    detail::matmul(Ek, Ek, En, n);
    for (int64_t p = 0; p < P; ++p) {
      detail::matmul(dEk + p * nn, Ek, dEn + p * nn, n);
      detail::matmul_add(Ek, dEk + p * nn, dEn + p * nn, n);
    }
    // l' = l + E l ; dl' = dl + dE l + E dl
    std::copy(buf.l.begin(), buf.l.end(), buf.l2.begin());
    detail::matvec_add(Ek, buf.l.data(), buf.l2.data(), n);
    std::copy(buf.dl.begin(), buf.dl.end(), buf.dl2.begin());
    for (int64_t p = 0; p < P; ++p) {
      detail::matvec_add(dEk + p * nn, buf.l.data(), buf.dl2.data() + p * n, n);
      detail::matvec_add(Ek, buf.dl.data() + p * n, buf.dl2.data() + p * n, n);
    }
    std::swap(buf.l, buf.l2);
    std::swap(buf.dl, buf.dl2);
    std::copy(buf.l.begin(), buf.l.end(), buf.lv.begin() + (k + 1) * n);
    std::copy(buf.dl.begin(), buf.dl.end(), buf.dlv.begin() + (k + 1) * P * n);
    detail::fix_complements(En, P ? dEn : nullptr, buf.l.data(), buf.dl.data(), n, P, buf.comp_of,
                            buf.comp_ptr, buf.comp_states);
  }
}

inline void ladder_step(SquaringBuffers& buf, const double* E, const double* dE, int64_t n,
                        int64_t P) {
  vecmat_jvp(buf.v.data(), buf.dv.data(), E, dE, buf.v2.data(), buf.dv2.data(), n, P);
  std::swap(buf.v, buf.v2);
  std::swap(buf.dv, buf.dv2);
}

// buf.v = alpha and buf.dv = dalpha (parameter-major, P columns; zero without dalpha).
inline void start_vector(const NumericGraph& g, int64_t P, SquaringBuffers& buf) {
  const int64_t n = g.n;
  buf.v.assign(g.alpha.begin(), g.alpha.end());
  buf.v2.resize(n);
  buf.dv.assign(P * n, 0.0);
  buf.dv2.resize(P * n);
  if (P && !g.dalpha.empty())
    for (int64_t i = 0; i < n; ++i)
      for (int64_t p = 0; p < P; ++p) buf.dv[p * n + i] = g.dalpha[i * g.P + p];
}

namespace detail {

// The ladder's step count for time t (-1: invalid); a discrete mass at n needs
// n - 1 steps.
inline double ladder_steps(double t, bool discrete, Output what, double h0) {
  if (!std::isfinite(t) || t < 0.0) return -1.0;
  if (discrete) {
    if (t != std::floor(t)) return -1.0;
    if (what != Output::kDensity) return t;
    return t >= 1.0 ? t - 1.0 : 0.0;
  }
  const double s = std::floor(t / h0);
  return s <= kSquaringMaxSteps ? s : -1.0;
}

// The ladder's top level: enough for the largest step difference between
// consecutive valid times (`order` sorts the times), as squaring_density takes them.
inline int64_t ladder_top_level(const double* times, const std::vector<int64_t>& order,
                                bool discrete, Output what, double h0) {
  double max_diff = 0.0, prev = 0.0;
  for (const int64_t q : order) {
    const double steps = ladder_steps(times[q], discrete, what, h0);
    if (steps < 0.0 || (discrete && what == Output::kDensity && times[q] == 0.0)) continue;
    max_diff = std::max(max_diff, steps - prev);
    prev = steps;
  }
  return max_diff >= 1.0 ? squaring_levels(max_diff) - 1 : 0;
}

// Remainder columns u_k = B^k w, k = 0..K (w = s for the density and cdf, 1
// for the sf) with their tangents, into buf.U / buf.dU, and 1 / k into
// buf.inv_k. Returns K; `umax` receives the largest entry of the u_k.
inline int64_t remainder_columns(const NumericGraph& g, bool sf, int64_t P, SquaringBuffers& buf,
                                 double& umax) {
  const int64_t n = g.n, nn = n * n;
  const int64_t K = poisson_right_end(kSquaringBaseStep);
  buf.U.assign((K + 1) * n, 0.0);
  buf.dU.assign((K + 1) * P * n, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    buf.U[i] = sf ? 1.0 : g.exit[i];
    for (int64_t p = 0; p < P; ++p) buf.dU[p * n + i] = sf ? 0.0 : g.dexit[i * g.P + p];
  }
  for (int64_t k = 1; k <= K; ++k) {
    const double* u = buf.U.data() + (k - 1) * n;
    const double* du = buf.dU.data() + (k - 1) * P * n;
    matvec_add(buf.B.data(), u, buf.U.data() + k * n, n);
    for (int64_t p = 0; p < P; ++p) {
      double* o = buf.dU.data() + (k * P + p) * n;
      matvec_add(buf.dB.data() + p * nn, u, o, n);
      matvec_add(buf.B.data(), du + p * n, o, n);
    }
  }
  umax = 0.0;
  for (double u : buf.U) umax = std::max(umax, u);
  buf.y.resize(n);
  buf.dy.resize(P * n);
  buf.inv_k.resize(K + 1);
  buf.inv_k[0] = 0.0;
  for (int64_t k = 1; k <= K; ++k) buf.inv_k[k] = 1.0 / static_cast<double>(k);
  return K;
}

// The remainder of one time: F = v . sum_k weight_k u_k with m = lambda r <=
// ~1/4 (buf.v the state probabilities after the whole steps), its gradient
// into dq (P values), the terms computed only as far as they can matter (the
// stopping rule of poisson.hpp, with v . u_k <= sum(v) max(u) bounding later
// terms). The weights are Pois(k; m), or P(N_m > k) / lambda for the cdf.
inline double remainder_sum(double m, double lambda, bool cdf, int64_t K, double umax, int64_t n,
                            int64_t P, double* dq, SquaringBuffers& buf) {
  double vsum = 0.0;
  for (int64_t i = 0; i < n; ++i) vsum += buf.v[i];
  const double bound = vsum * umax;
  std::vector<double>& tails = buf.tails;
  tails.assign(K + 2, 0.0);
  if (cdf) {  // tails[k] = P(N_m > k), from the far end
    double pk = std::exp(-m), acc = 0.0;
    std::vector<double>& pois = buf.pois;
    pois.assign(K + 1, 0.0);
    for (int64_t k = 0; k <= K; ++k) {
      pois[k] = pk;
      pk *= m * (k + 1 <= K ? buf.inv_k[k + 1] : 0.0);
    }
    for (int64_t k = K; k >= 0; --k) {
      tails[k] = acc;
      acc += pois[k];
    }
  }
  // y = sum_k weight_k u_k (and dy_p likewise) as independent per-state
  // sums, then F = v . y and dF_p = dv_p . y + v . dy_p. The stopping rule
  // measures later terms against F0 = weight_0 v . u_0 <= F.
  double w = std::exp(-m), F0 = 0.0;
  for (int64_t i = 0; i < n; ++i) F0 += buf.v[i] * buf.U[i];
  F0 *= cdf ? tails[0] / lambda : w;
  std::fill(buf.y.begin(), buf.y.end(), 0.0);
  std::fill(buf.dy.begin(), buf.dy.end(), 0.0);
  for (int64_t k = 0; k <= K; ++k) {
    if (k > 0) w *= m * buf.inv_k[k];
    const double weight = cdf ? tails[k] / lambda : w;
    const double* u = buf.U.data() + k * n;
    for (int64_t i = 0; i < n; ++i) buf.y[i] += weight * u[i];
    const double* du = buf.dU.data() + k * P * n;
    for (int64_t i = 0; i < P * n; ++i) buf.dy[i] += weight * du[i];
    const double scale = cdf ? w * (1.0 + m) / lambda : w;  // bounds the next weights
    if (scale < kPoissonUnderflow ||
        (scale < kPoissonNormCutoff && scale * bound <= kPoissonTermCutoff * F0))
      break;
  }
  double F = 0.0;
  for (int64_t i = 0; i < n; ++i) F += buf.v[i] * buf.y[i];
  for (int64_t p = 0; p < P; ++p) {
    const double* dv = buf.dv.data() + p * n;
    const double* dy = buf.dy.data() + p * n;
    double d = 0.0;
    for (int64_t i = 0; i < n; ++i) d += dv[i] * buf.y[i] + buf.v[i] * dy[i];
    dq[p] = d;
  }
  return F;
}

}  // namespace detail

// The density (probability mass), distribution function or survival function
// (`what`) at times[0..T) by the ladder; `atom` = P(T = 0) with gradient
// `datom` (or null). Invalid times (not finite, negative, not whole for
// discrete, or beyond kSquaringMaxSteps) give NaN. lambda > 0 (continuous).
//   density: v(J h0) . sum_k Pois(k; m) B^k s       (discrete: v(n - 1) . t)
//   sf:      v(J h0) . sum_k Pois(k; m) B^k 1       (discrete: v(n) . 1)
//   cdf:     atom + absorbed(J h0) + v(J h0) . sum_k P(N_m > k) B^k s / lambda
// where absorbed() adds v . l_k before each step by E_k (discrete: no
// remainder, n steps).
inline void squaring_density(const NumericGraph& g, bool discrete, double lambda, Output what,
                             double atom, const double* datom, const double* times, int64_t T,
                             double* out, double* dout, SquaringBuffers& buf) {
  const int64_t n = g.n, P = dout ? g.P : 0, nn = n * n;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double h0 = discrete ? 1.0 : kSquaringBaseStep / lambda;
  const bool cdf = what == Output::kCdf, sf = what == Output::kSurvival;
  buf.order.resize(T);
  std::iota(buf.order.begin(), buf.order.end(), int64_t{0});
  std::sort(buf.order.begin(), buf.order.end(),
            [&](int64_t a, int64_t b) { return times[a] < times[b]; });
  const int64_t L = detail::ladder_top_level(times, buf.order, discrete, what, h0);
  build_ladder(g, discrete, lambda, L, buf);
  double umax = 0.0;
  const int64_t K = discrete ? 0 : detail::remainder_columns(g, sf, P, buf, umax);
  start_vector(g, P, buf);
  double absorbed = 0.0;  // mass absorbed up to the current step (cdf)
  std::vector<double> dabsorbed(P, 0.0);
  double at = 0.0;  // steps taken so far
  for (int64_t idx = 0; idx < T; ++idx) {
    const int64_t q = buf.order[idx];
    const double steps = detail::ladder_steps(times[q], discrete, what, h0);
    double* dq = dout ? dout + q * g.P : nullptr;
    if (steps < 0.0) {
      out[q] = nan;
      for (int64_t p = 0; p < g.P && dq; ++p) dq[p] = nan;
      continue;
    }
    if (discrete && what == Output::kDensity && times[q] == 0.0) {
      out[q] = atom;
      for (int64_t p = 0; p < g.P && dq; ++p) dq[p] = datom ? datom[p] : 0.0;
      continue;
    }
    // Advance by the binary digits of the step difference (from the top).
    double diff = steps - at;
    for (int64_t k = L; k >= 0; --k) {
      if (!detail::take_binary_digit(diff, k)) continue;
      if (cdf) {
        const double* l = buf.lv.data() + k * n;
        const double* dl = buf.dlv.data() + k * P * n;
        for (int64_t i = 0; i < n; ++i) absorbed += buf.v[i] * l[i];
        for (int64_t p = 0; p < P; ++p)
          for (int64_t i = 0; i < n; ++i)
            dabsorbed[p] += buf.dv[p * n + i] * l[i] + buf.v[i] * dl[p * n + i];
      }
      ladder_step(buf, buf.E.data() + k * nn, buf.dE.data() + k * P * nn, n, P);
    }
    at = steps;
    if (discrete) {
      double f = cdf ? atom + absorbed : 0.0;
      if (!cdf)
        for (int64_t i = 0; i < n; ++i) f += buf.v[i] * (sf ? 1.0 : g.exit[i]);
      out[q] = f;
      for (int64_t p = 0; p < P; ++p) {
        double d = cdf ? (datom ? datom[p] : 0.0) + dabsorbed[p] : 0.0;
        if (!cdf)
          for (int64_t i = 0; i < n; ++i)
            d += buf.dv[p * n + i] * (sf ? 1.0 : g.exit[i]) +
                 (sf ? 0.0 : buf.v[i] * g.dexit[i * g.P + p]);
        dq[p] = d;
      }
      continue;
    }
    const double m = std::clamp(lambda * (times[q] - steps * h0), 0.0, kSquaringBaseStep);
    double F = detail::remainder_sum(m, lambda, cdf, K, umax, n, P, dq, buf);
    if (cdf) {
      F += atom + absorbed;
      for (int64_t p = 0; p < P; ++p) dq[p] += (datom ? datom[p] : 0.0) + dabsorbed[p];
    }
    out[q] = F;
  }
}

// The state vector v(t) = alpha exp(S t) (discrete: alpha T^t) by the ladder:
// the binary digits of t / h0 and the remainder sum_k Pois(k; m) v B^k, with
// its derivatives. sv: n; sdv: n x P (row i, column p), or null. NaN beyond
// kSquaringMaxSteps.
inline void ladder_state(const NumericGraph& g, bool discrete, double lambda, double t,
                         double* sv, double* sdv, SquaringBuffers& buf) {
  const int64_t n = g.n, P = sdv && g.with_grad ? g.P : 0, nn = n * n;
  const double h0 = discrete ? 1.0 : kSquaringBaseStep / lambda;
  const double steps = std::floor(t / h0);
  if (!(steps <= kSquaringMaxSteps)) {
    std::fill(sv, sv + n, std::numeric_limits<double>::quiet_NaN());
    if (sdv) std::fill(sdv, sdv + n * P, std::numeric_limits<double>::quiet_NaN());
    return;
  }
  const int64_t L = steps >= 1.0 ? squaring_levels(steps) - 1 : 0;
  build_ladder(g, discrete, lambda, L, buf);
  start_vector(g, P, buf);
  double remaining = steps;
  for (int64_t k = L; k >= 0; --k)
    if (detail::take_binary_digit(remaining, k))
      ladder_step(buf, buf.E.data() + k * nn, buf.dE.data() + k * P * nn, n, P);
  std::fill(sv, sv + n, 0.0);
  std::vector<double> dy(P * n, 0.0);
  if (discrete) {
    std::copy(buf.v.begin(), buf.v.end(), sv);
    dy = buf.dv;
  } else {  // remainder m = lambda (t - J h0) < 1/4: all K terms (each non-negative)
    const double m = std::clamp(lambda * (t - steps * h0), 0.0, kSquaringBaseStep);
    const int64_t K = poisson_right_end(kSquaringBaseStep);
    double w = std::exp(-m);
    for (int64_t k = 0; k <= K; ++k) {
      if (k > 0) {
        w *= m / static_cast<double>(k);
        ladder_step(buf, buf.B.data(), buf.dB.data(), n, P);  // u_k = u_{k-1} B
      }
      for (int64_t i = 0; i < n; ++i) sv[i] += w * buf.v[i];
      for (int64_t q = 0; q < P * n; ++q) dy[q] += w * buf.dv[q];
      if (w == 0.0) break;
    }
  }
  for (int64_t i = 0; i < n && P; ++i)
    for (int64_t p = 0; p < P; ++p) sdv[i * P + p] = dy[p * n + i];
}

}  // namespace ptdcore
