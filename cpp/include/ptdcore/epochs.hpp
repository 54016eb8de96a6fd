// ptdcore engine: time-inhomogeneous models, piecewise constant in time (epochs).
//
// A structure with E epochs takes the row theta_0 .. theta_{E-1} (P values
// each) followed by the breaks b_0 < ... < b_{E-2}. Epoch e covers
// [b_{e-1}, b_e) (b_{-1} = 0, b_{E-1} = inf; discrete: the steps from b_{e-1}
// on) and uses theta_e. With pi_e the state vector at the start of epoch e:
//     f(t) = pi_e exp(S_e (t - b_{e-1})) s_e,   pi_{e+1} = pi_e exp(S_e D_e),
// D_e = b_e - b_{e-1}: each epoch is the homogeneous functional (series or
// ladder, method.hpp) started from pi_e, and pi_{e+1} its state vector at D_e.
//
// Derivatives are carried in forward mode over all E P + E - 1 entries of
// the row, in the local time of each epoch. Moving b = b_{e-1} moves the
// state at the break (d pi_e / db = pi_e S_{e-1}) and shifts epoch e's local
// times (d tau / db = -1, worth -pi_e S_e since S_e commutes with its
// exponential), so column b of epoch e's starting tangent is
// pi_e (S_{e-1} - S_e); propagated over the fixed local durations this gives
// every later derivative exactly. (Discrete breaks are whole steps: their
// columns are NaN.)
//
// Moments (continuous): E[T^k] = sum_e int_0^{D_e} (a_e + tau)^k pi_e
// exp(S_e tau) s_e dtau (a_e = b_{e-1}; the last D is infinite). With
// U = (-S_e)^{-1} and pi' = pi_{e+1}, integrating by parts,
//     J_j = int_0^D tau^j pi e^{S tau} s dtau:  J_0 = |pi| - |pi'|,
//     J_j = -D^j |pi'| + j q_{j-1} 1,  q_0 = (pi - pi') U,
//     q_j = (-D^j pi' + j q_{j-1}) U   (transposed solves),
// and for the last epoch J_j = j! pi U^j 1. The local-time tangents differ
// from the true derivative in b_{e-1} by the shift of the whole epoch, whose
// effect is -a^k pi_e . s_e (the integrand at the start); b_e adds
// b_e^k pi' . s_e (at the end). Discrete models: discrete_epoch_sums.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ptdcore/linear_solver.hpp"
#include "ptdcore/method.hpp"
#include "ptdcore/moments.hpp"
#include "ptdcore/numeric_graph.hpp"
#include "ptdcore/structure.hpp"

namespace ptdcore {

struct EpochBuffers {
  std::vector<NumericGraph> graphs;  // one per epoch, gradients over the whole row
  std::vector<double> pi, dpi, next, dnext;  // (n), (n x P): start of this / the next epoch
  std::vector<double> local, values, dvalues;
  std::vector<int64_t> which;
  std::vector<double> q, dq, rhs, drhs, J, dJ;  // moment recursion
  // Of the last epoch_integrals: the magnitudes of the terms each J_j is a sum
  // or difference of (J_j itself where no cancellation can occur).
  std::vector<double> Jmag;
};

// The state vector at local time t of g (started from g.alpha, g.dalpha).
inline void state_at(const NumericGraph& g, bool discrete, double t, double* sv, double* sdv,
                     SeriesBuffers& series, SquaringBuffers& squaring) {
  const double lambda = discrete ? 1.0 : max_out_rate(g);
  const double m = lambda * t;
  if (lambda > 0.0 && std::isfinite(m) &&
      choose_density_method(g, g.with_grad, m, 1, discrete) == DensityMethod::kSquaring) {
    ladder_state(g, discrete, lambda, t, sv, sdv, squaring);
    return;
  }
  series_state(g, discrete, t, sv, sdv, series);
}

namespace detail {

// y += x (S_a - S_b) for two epochs' graphs of one structure (same internal
// edges): (x S)_j = sum_{i -> j} x_i w_ij - x_j out_j.
inline void add_generator_difference(const NumericGraph& a, const NumericGraph& b,
                                     const double* x, double* y, int64_t stride) {
  for (int64_t j = 0; j < a.n; ++j) y[j * stride] -= x[j] * (a.out[j] - b.out[j]);
  for (int64_t e = 0; e < a.nr_edges(); ++e)
    y[a.dst[e] * stride] += x[a.src[e]] * (a.w[e] - b.w[e]);
}

inline double binomial(int64_t k, int64_t j) {
  double b = 1.0;
  for (int64_t i = 1; i <= j; ++i) b = b * static_cast<double>(k - j + i) / static_cast<double>(i);
  return b;
}

// Appends N accumulator states to `aug` (its first N states feed them at rate
// 1, state i into accumulator i; they have no out-weight and no exit), so that
// the accumulators hold int_0^t of the first N states' mass.
inline void add_accumulators(NumericGraph& aug, int64_t N) {
  const int64_t P = aug.P;
  for (int64_t i = 0; i < N; ++i) {
    aug.src.push_back(i);
    aug.dst.push_back(N + i);
    aug.w.push_back(1.0);
    if (aug.with_grad) aug.g.insert(aug.g.end(), P, 0.0);
  }
  aug.n = 2 * N;
  aug.out.resize(2 * N, 0.0);
  aug.exit.resize(2 * N, 0.0);
  if (aug.with_grad) {
    aug.dout.resize(2 * N * P, 0.0);
    aug.dexit.resize(2 * N * P, 0.0);
  }
}

}  // namespace detail

// Adds epoch e's part of E[T^k], k = 1..K, to moments (and dmoments, K x P)
// from J_0..J_K (and dJ, (K + 1) x P): sum_j C(k, j) a^{k-j} J_j.
inline void add_epoch_moments(double a, int64_t K, int64_t P, const std::vector<double>& J,
                              const double* dJ, double* moments, double* dmoments) {
  for (int64_t k = 1; k <= K; ++k)
    for (int64_t j = 0; j <= k; ++j) {
      const double c = detail::binomial(k, j) * std::pow(a, static_cast<double>(k - j));
      moments[k - 1] += c * J[j];
      for (int64_t p = 0; p < P && dmoments; ++p) dmoments[(k - 1) * P + p] += c * dJ[j * P + p];
    }
}

// J_0..J_K of one epoch (finite when `last` is false: pi' = next, duration D;
// open-ended otherwise) and their derivatives (dJ: (K + 1) x P, when dpi is
// given); false when M cannot be factorised (a closed class at this theta).
inline bool epoch_integrals(const SccTopology& topo, const NumericGraph& g, const double* pi,
                            const double* dpi, const double* next, const double* dnext, double D,
                            bool last, int64_t K, BlockSolver& solver, EpochBuffers& buf) {
  const int64_t n = g.n, P = dpi ? g.P : 0;
  buf.J.assign(K + 1, 0.0);
  buf.dJ.assign((K + 1) * P, 0.0);
  if (solver.factorise(topo, g) != MomentStatus::kFinite) return false;
  auto total = [n](const double* x) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += x[i];
    return s;
  };
  buf.q.assign(n, 0.0);
  buf.dq.assign(P * n, 0.0);  // parameter-major: column p at dq + p n
  buf.rhs.resize(n);
  buf.drhs.resize(P * n);
  std::vector<double> c(n), qnew(n), dqnew(P * n);
  // rhs of step j (its derivative in drhs), then q_j = rhs U, dq_j = (drhs - q_j dM) U
  auto solve_step = [&]() {
    solver.solve_transposed(buf.rhs.data(), qnew.data());
    detail::solve_transposed_tangents(g, solver, qnew.data(), buf.drhs.data(), dqnew.data(), P, c);
    buf.q.swap(qnew);
    buf.dq.swap(dqnew);
  };
  if (last) {  // J_j = j! r_j 1, r_0 = pi, r_j = r_{j-1} U
    double factorial = 1.0;
    buf.J[0] = total(pi);
    for (int64_t p = 0; p < P; ++p)
      for (int64_t i = 0; i < n; ++i) buf.dJ[p] += dpi[i * g.P + p];
    std::copy(pi, pi + n, buf.rhs.begin());
    for (int64_t p = 0; p < P; ++p)
      for (int64_t i = 0; i < n; ++i) buf.drhs[p * n + i] = dpi[i * g.P + p];
    for (int64_t j = 1; j <= K; ++j) {
      solve_step();
      factorial *= static_cast<double>(j);
      buf.J[j] = factorial * total(buf.q.data());
      for (int64_t p = 0; p < P; ++p) buf.dJ[j * P + p] = factorial * total(buf.dq.data() + p * n);
      buf.rhs = buf.q;
      buf.drhs = buf.dq;
    }
    return true;
  }
  buf.J[0] = total(pi) - total(next);
  for (int64_t p = 0; p < P; ++p)
    for (int64_t i = 0; i < n; ++i) buf.dJ[p] += dpi[i * g.P + p] - dnext[i * g.P + p];
  // The magnitudes the terms carry: the same recursion on |rhs| (U = (-S)^{-1}
  // is non-negative, so |q_j| <= qmag_j, and qmag_j bounds what rounding in
  // earlier differences can have left in q_j).
  buf.Jmag.assign(K + 1, 0.0);
  buf.Jmag[0] = total(pi) + total(next);
  std::vector<double> rhs_mag(n), qmag(n);
  for (int64_t i = 0; i < n; ++i) rhs_mag[i] = std::fabs(pi[i]) + std::fabs(next[i]);
  // q_0 = (pi - pi') U
  for (int64_t i = 0; i < n; ++i) buf.rhs[i] = pi[i] - next[i];
  for (int64_t p = 0; p < P; ++p)
    for (int64_t i = 0; i < n; ++i) buf.drhs[p * n + i] = dpi[i * g.P + p] - dnext[i * g.P + p];
  const double next_total = total(next);
  for (int64_t j = 1; j <= K; ++j) {
    solve_step();  // q_{j-1}
    const double Dj = std::pow(D, static_cast<double>(j));
    buf.J[j] = -Dj * next_total + static_cast<double>(j) * total(buf.q.data());
    solver.solve_transposed(rhs_mag.data(), qmag.data());
    for (int64_t i = 0; i < n; ++i) {
      rhs_mag[i] = Dj * std::fabs(next[i]) + static_cast<double>(j) * std::fabs(qmag[i]);
      buf.Jmag[j] += rhs_mag[i];
    }
    for (int64_t p = 0; p < P; ++p) {
      double dnt = 0.0;
      for (int64_t i = 0; i < n; ++i) dnt += dnext[i * g.P + p];
      buf.dJ[j * P + p] = -Dj * dnt + static_cast<double>(j) * total(buf.dq.data() + p * n);
    }
    if (j == K) break;
    for (int64_t i = 0; i < n; ++i) buf.rhs[i] = -Dj * next[i] + static_cast<double>(j) * buf.q[i];
    for (int64_t p = 0; p < P; ++p)
      for (int64_t i = 0; i < n; ++i)
        buf.drhs[p * n + i] =
            -Dj * dnext[i * g.P + p] + static_cast<double>(j) * buf.dq[p * n + i];
  }
  return true;
}

// Discrete models: E[N^k] = sum_{n >= 0} ((n + 1)^k - n^k) P(N > n), and over an
// epoch of D steps from a, P(N > a + j) = pi T^j 1. With M = I - T, U = M^{-1}
// and R_i = sum_{j < D} j^i pi T^j, summation by parts gives
//     R_i = [0^i pi - (D - 1)^i pi' + sum_{l < i} C(i, l) (-1)^{i-1-l} (R_l - 0^l pi)] U
// (pi' = pi T^D; the open last epoch has no pi' term). Fills buf.J with
// S_l = R_l 1, l < K (and buf.dJ); false when M cannot be factorised.
inline bool discrete_epoch_sums(const SccTopology& topo, const NumericGraph& g, const double* pi,
                                const double* dpi, const double* next, const double* dnext,
                                double D, bool last, int64_t K, BlockSolver& solver,
                                EpochBuffers& buf) {
  const int64_t n = g.n, P = dpi ? g.P : 0;
  buf.J.assign(K, 0.0);
  buf.dJ.assign(K * P, 0.0);
  if (solver.factorise(topo, g) != MomentStatus::kFinite) return false;
  std::vector<std::vector<double>> R(K, std::vector<double>(n)), dR(K, std::vector<double>(P * n));
  std::vector<double> rhs(n), drhs(P * n), c(n);
  for (int64_t i = 0; i < K; ++i) {
    const double end_weight = last ? 0.0 : std::pow(D - 1.0, static_cast<double>(i));
    for (int64_t s = 0; s < n; ++s) {
      rhs[s] = (i == 0 ? pi[s] : 0.0) - (last ? 0.0 : end_weight * next[s]);
      for (int64_t p = 0; p < P; ++p)
        drhs[p * n + s] = (i == 0 ? dpi[s * g.P + p] : 0.0) -
                          (last ? 0.0 : end_weight * dnext[s * g.P + p]);
    }
    for (int64_t l = 0; l < i; ++l) {
      const double coef = detail::binomial(i, l) * ((i - 1 - l) % 2 ? -1.0 : 1.0);
      for (int64_t s = 0; s < n; ++s) {
        rhs[s] += coef * (R[l][s] - (l == 0 ? pi[s] : 0.0));
        for (int64_t p = 0; p < P; ++p)
          drhs[p * n + s] += coef * (dR[l][p * n + s] - (l == 0 ? dpi[s * g.P + p] : 0.0));
      }
    }
    solver.solve_transposed(rhs.data(), R[i].data());
    detail::solve_transposed_tangents(g, solver, R[i].data(), drhs.data(), dR[i].data(), P, c);
    for (int64_t s = 0; s < n; ++s) buf.J[i] += R[i][s];
    for (int64_t p = 0; p < P; ++p)
      for (int64_t s = 0; s < n; ++s) buf.dJ[i * P + p] += dR[i][p * n + s];
  }
  return true;
}

// Adds sum_j ((a + j + 1)^k - (a + j)^k) P(N > a + j) for k = 1..K from
// S_l = sum_j j^l P(N > a + j): the weight's coefficient of j^l is
// sum_{i = l}^{k - 1} C(k, i) C(i, l) a^(i - l).
inline void add_discrete_epoch_moments(double a, int64_t K, int64_t P,
                                       const std::vector<double>& S, const double* dS,
                                       double* moments, double* dmoments) {
  for (int64_t k = 1; k <= K; ++k)
    for (int64_t l = 0; l < k; ++l) {
      double c = 0.0;
      for (int64_t i = l; i < k; ++i)
        c += detail::binomial(k, i) * detail::binomial(i, l) *
             std::pow(a, static_cast<double>(i - l));
      moments[k - 1] += c * S[l];
      for (int64_t p = 0; p < P && dmoments; ++p) dmoments[(k - 1) * P + p] += c * dS[l * P + p];
    }
}

// True when the breaks of a row are finite, positive and increasing (whole
// steps for a discrete model).
inline bool valid_breaks(const Structure& s, const double* breaks) {
  for (int64_t e = 0; e + 1 < s.epochs; ++e) {
    const double b = breaks[e], prev = e ? breaks[e - 1] : 0.0;
    if (!std::isfinite(b) || !(b > prev) || (s.discrete && b != std::floor(b))) return false;
  }
  return true;
}

// Every epoch's graph at the row (gradients over the whole row when `jac`);
// false for invalid breaks or weights (the caller reports NaN).
inline bool epoch_graphs(const Structure& s, const double* row, bool jac, EpochBuffers& buf) {
  const int64_t E = s.epochs, Pb = s.base_params();
  if (!valid_breaks(s, row + E * Pb)) return false;
  buf.graphs.resize(E);
  for (int64_t e = 0; e < E; ++e)
    if (!build_numeric_graph(s, row, jac, buf.graphs[e], e * Pb)) return false;
  return true;
}

// One row of an epoch structure (s.epochs > 1): the functional at the times
// (pmf: T, dpmf: T x P) and the moments (K, dmoments K x P), P = s.nr_params
// = E Pb + E - 1. Invalid rows (a weight negative or not finite in some epoch,
// breaks not finite, not positive and increasing, or not whole steps for a
// discrete model) give NaN.
inline void evaluate_epoch_reward_power_moments(const Structure& s, const SccTopology& topo,
                                                const double* row, int64_t K, double* out,
                                                double* dout, EpochBuffers& buf,
                                                SeriesBuffers& series, BlockSolver& solver,
                                                const double* rewards, double infinite_value,
                                                bool integrate_short_epochs);

// A finite epoch whose largest out-rate times duration is at most this is
// integrated by the series (accumulators) for the moments, not by solves.
inline constexpr double kEpochSeriesMaxRateTime = 1000.0;
// Moments over epochs leave the solves for the block chain when the terms
// behind a moment exceed it by more than this factor (then rounding could
// cost it more than the contract's 1e-13).
inline constexpr double kEpochMaxCancellation = 256.0;

inline void evaluate_epochs(const Structure& s, const SccTopology& topo, const double* row,
                            const double* times, int64_t T, int64_t K, Output what, double* pmf,
                            double* moments, double* dpmf, double* dmoments, EpochBuffers& buf,
                            SeriesBuffers& series, SquaringBuffers& squaring,
                            BlockSolver& solver) {
  const int64_t E = s.epochs, Pb = s.base_params(), P = s.nr_params, n = s.nr_states;
  const bool jac = dpmf != nullptr;
  const bool discrete = s.discrete;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto fill_nan = [&](int64_t count, double* v, double* dv) {
    std::fill(v, v + count, nan);
    if (dv) std::fill(dv, dv + count * P, nan);
  };
  auto invalid_row = [&]() {
    fill_nan(T, pmf, dpmf);
    fill_nan(K, moments, dmoments);
  };
  const double* breaks = row + E * Pb;
  if (!epoch_graphs(s, row, jac, buf)) return invalid_row();
  auto start = [&](int64_t e) { return e ? breaks[e - 1] : 0.0; };
  // Which epoch measures each time: [b_{e-1}, b_e); a discrete mass at n is
  // absorption in the step from n - 1, so (b_{e-1}, b_e] (and 0 in epoch 0).
  const bool by_step = discrete && what == Output::kDensity;
  buf.which.assign(T, -1);
  for (int64_t q = 0; q < T; ++q) {
    const double t = times[q];
    if (!std::isfinite(t) || t < 0.0) continue;
    int64_t e = 0;
    while (e + 1 < E && (by_step ? t > breaks[e] : t >= breaks[e])) ++e;
    buf.which[q] = e;
  }
  fill_nan(T, pmf, dpmf);  // (times nobody measures: invalid)
  if (K > 0) {
    std::fill(moments, moments + K, 0.0);
    if (dmoments) std::fill(dmoments, dmoments + K * P, 0.0);
  }
  bool moments_ok = true;
  bool moments_infinite = false;
  // Continuous moments: solves per epoch; where a finite epoch's integrals are
  // differences of nearly equal terms (a short epoch in which little happens)
  // or its generator is singular, from the block chain of T = int 1 dt instead
  // (below, after the density), which integrates such epochs without either.
  std::vector<double> rounding(K, 0.0);  // sum of the magnitudes behind each moment
  buf.pi.assign(s.alpha.begin(), s.alpha.end());
  buf.dpi.assign(jac ? n * P : 0, 0.0);
  double alpha_total = 0.0;
  for (double a : s.alpha) alpha_total += a;
  double absorbed = std::max(0.0, 1.0 - alpha_total);  // P(T <= start of the epoch) (cdf)
  std::vector<double> dabsorbed(jac ? P : 0, 0.0);
  for (int64_t e = 0; e < E; ++e) {
    NumericGraph& g = buf.graphs[e];
    g.alpha = buf.pi;
    g.dalpha = buf.dpi;
    const double a = start(e);
    buf.local.clear();
    std::vector<int64_t> idx;
    for (int64_t q = 0; q < T; ++q)
      if (buf.which[q] == e) idx.push_back(q), buf.local.push_back(times[q] - a);
    // The cdf's integral over the epoch so far is not invariant under the shift
    // of the whole epoch (the local-time tangents): its derivative in b_{e-1}
    // gains -pi_e . s_e, the integrand at the start.
    double start_flux = 0.0;
    for (int64_t i = 0; i < n; ++i) start_flux += buf.pi[i] * g.exit[i];
    const int64_t start_col = e > 0 && what == Output::kCdf && !discrete ? E * Pb + e - 1 : -1;
    const int64_t Te = static_cast<int64_t>(idx.size());
    if (Te) {
      buf.values.resize(Te);
      buf.dvalues.resize(jac ? Te * P : 0);
      functional(g, discrete, what, absorbed, jac ? dabsorbed.data() : nullptr, buf.local.data(),
                 Te, buf.values.data(), jac ? buf.dvalues.data() : nullptr, series, squaring);
      for (int64_t r = 0; r < Te; ++r) {
        pmf[idx[r]] = buf.values[r];
        if (jac) std::copy(buf.dvalues.data() + r * P, buf.dvalues.data() + (r + 1) * P,
                           dpmf + idx[r] * P);
        if (jac && start_col >= 0) dpmf[idx[r] * P + start_col] -= start_flux;
      }
    }
    const bool last = e + 1 == E;
    const double D = last ? 0.0 : breaks[e] - a;
    if (!last) {
      buf.next.resize(n);
      buf.dnext.assign(jac ? n * P : 0, 0.0);
      state_at(g, discrete, D, buf.next.data(), jac ? buf.dnext.data() : nullptr, series,
               squaring);
      if (what == Output::kCdf) {  // mass absorbed by the end of this epoch
        double f = 0.0;
        std::vector<double> df(jac ? P : 0);
        functional(g, discrete, Output::kCdf, absorbed, jac ? dabsorbed.data() : nullptr, &D, 1,
                   &f, jac ? df.data() : nullptr, series, squaring);
        absorbed = f;
        dabsorbed = df;
        if (jac && !discrete) {  // true derivatives: the start shift and the end b_e
          if (start_col >= 0) dabsorbed[start_col] -= start_flux;
          double end_flux = 0.0;
          for (int64_t i = 0; i < n; ++i) end_flux += buf.next[i] * g.exit[i];
          dabsorbed[E * Pb + e] += end_flux;
        }
      }
    }
    if (K > 0 && discrete && moments_ok && !moments_infinite) {
      if (!discrete_epoch_sums(topo, g, buf.pi.data(), jac ? buf.dpi.data() : nullptr,
                               last ? nullptr : buf.next.data(),
                               last || !jac ? nullptr : buf.dnext.data(), D, last, K, solver,
                               buf)) {
        if (last)
          moments_infinite = true;
        else
          moments_ok = false;
      } else {
        add_discrete_epoch_moments(a, K, jac ? P : 0, buf.J, buf.dJ.data(), moments, dmoments);
      }
    } else if (K > 0 && moments_ok && !moments_infinite) {
      if (!epoch_integrals(topo, g, buf.pi.data(), jac ? buf.dpi.data() : nullptr,
                           last ? nullptr : buf.next.data(),
                           last || !jac ? nullptr : buf.dnext.data(), D, last, K, solver, buf)) {
        if (last)
          moments_infinite = true;  // never absorbed from a reachable state
        else
          moments_ok = false;  // a closed class within a finite epoch: by the chain
      } else {
        if (!last)  // what rounding can do to the sum: the terms' magnitudes
          add_epoch_moments(a, K, 0, buf.Jmag, nullptr, rounding.data(), nullptr);
        add_epoch_moments(a, K, jac ? P : 0, buf.J, buf.dJ.data(), moments, dmoments);
        if (jac) {  // the break columns: the epoch's shift, its end
          double end_flux = 0.0;
          for (int64_t i = 0; i < n && !last; ++i) end_flux += buf.next[i] * g.exit[i];
          for (int64_t k = 1; k <= K; ++k) {
            if (e > 0)
              dmoments[(k - 1) * P + E * Pb + e - 1] -=
                  std::pow(a, static_cast<double>(k)) * start_flux;
            if (!last)
              dmoments[(k - 1) * P + E * Pb + e] +=
                  std::pow(breaks[e], static_cast<double>(k)) * end_flux;
          }
        }
      }
    }
    if (last) break;
    // Break b_e: the next epoch's starting tangent in column b_e (see above).
    if (jac) {
      double* col = buf.dnext.data() + E * Pb + e;
      if (discrete)
        for (int64_t i = 0; i < n; ++i) col[i * P] = nan;
      else
        detail::add_generator_difference(g, buf.graphs[e + 1], buf.next.data(), col, P);
    }
    buf.pi.swap(buf.next);
    buf.dpi.swap(buf.dnext);
  }
  bool by_chain = !moments_ok;  // (a finite epoch's generator was singular)
  for (int64_t k = 0; k < K && moments_ok && !moments_infinite; ++k)
    by_chain = by_chain || rounding[k] > kEpochMaxCancellation * std::fabs(moments[k]);
  if (K > 0 && !discrete && by_chain) {
    // E[T^k] as the moments of T = int 1 dt: a class closed in a finite epoch
    // only needs no solve there, and a short epoch no difference of nearly
    // equal terms (see evaluate_epoch_reward_power_moments).
    const std::vector<double> ones(n, 1.0);
    evaluate_epoch_reward_power_moments(s, topo, row, K, moments, dmoments, buf, series, solver,
                                        ones.data(), std::numeric_limits<double>::infinity(),
                                        true);
  } else if (K > 0 && (!moments_ok || moments_infinite)) {
    fill_nan(K, moments, dmoments);
    if (moments_infinite && moments_ok)
      std::fill(moments, moments + K, std::numeric_limits<double>::infinity());
  }
}

// The chain of `blocks` copies of g in which copy l moves to copy l + 1 at rate
// r(k) from state k (r = rewards[k * stride]): the generator with S on the
// diagonal blocks and diag(r) above them, along which [v, u_1, ...] evolve
// (u_l(t) = E[Y(t)^l / l!; X_t]). Not a sub-generator: only the series runs it.
// The caller sets alpha and dalpha.
inline void reward_chain(const NumericGraph& g, const double* rewards, int64_t stride,
                         int64_t blocks, NumericGraph& aug) {
  const int64_t n = g.n, P = g.P;
  aug.n = blocks * n;
  aug.P = P;
  aug.with_grad = g.with_grad;
  aug.src.clear();
  aug.dst.clear();
  aug.w.clear();
  aug.g.clear();
  aug.out.clear();
  aug.exit.clear();
  aug.dout.clear();
  aug.dexit.clear();
  for (int64_t copy = 0; copy < blocks; ++copy) {
    for (int64_t e = 0; e < g.nr_edges(); ++e) {
      aug.src.push_back(g.src[e] + copy * n);
      aug.dst.push_back(g.dst[e] + copy * n);
      aug.w.push_back(g.w[e]);
      if (g.with_grad) aug.g.insert(aug.g.end(), g.g.begin() + e * P, g.g.begin() + (e + 1) * P);
    }
    if (copy + 1 < blocks)
      for (int64_t k = 0; k < n; ++k)
        if (rewards[k * stride] > 0.0) {
          aug.src.push_back(k + copy * n);
          aug.dst.push_back(k + (copy + 1) * n);
          aug.w.push_back(rewards[k * stride]);
          if (g.with_grad) aug.g.insert(aug.g.end(), P, 0.0);
        }
    aug.out.insert(aug.out.end(), g.out.begin(), g.out.end());
    aug.exit.insert(aug.exit.end(), g.exit.begin(), g.exit.end());
    aug.dout.insert(aug.dout.end(), g.dout.begin(), g.dout.end());
    aug.dexit.insert(aug.dexit.end(), g.dexit.begin(), g.dexit.end());
  }
}

// Reward moments over epochs (a reward matrix, rewards n x m). With
// v(t) the state vector and u_i(t) = E[Y_i(t); X_t = .] the reward accumulated
// so far, [v, u_i] evolves by A_i = [[S, D_i], [0, S]] (D_i = diag(r_i)), and
//     E[Y_j] = int v . r_j dt,   E[Y_i Y_j] = C_ij + C_ji,  C_ij = int u_i . r_j dt.
// Over an epoch, with x_j = U r_j and q = (v(a) - v(b)) U (transposed solve),
//     int v . r_j = q . r_j,   int u_i . r_j = sum_s q_s r_i(s) x_j(s)
//                                              + (u_i(a) - u_i(b)) . x_j
// (the open last epoch: v(b) = u_i(b) = 0). [v, u_i] crosses an epoch by the
// series on the 2n-state augmented graph (not the ladder: A_i is not a
// sub-generator). Break columns as for the density: starting tangents
// [v, u_i] (S_before - S_after), and each integral's shift (-integrand at
// the start) and end (+integrand at the end). out: mean (m), cross (m x m);
// dout: (m + m^2) x P. NaN where a factorisation fails.
inline void evaluate_epoch_reward_moments(const Structure& s, const SccTopology& topo,
                                          const double* row, double* out, double* dout,
                                          EpochBuffers& buf, SeriesBuffers& series,
                                          SquaringBuffers& squaring, BlockSolver& solver) {
  const int64_t E = s.epochs, Pb = s.base_params(), P = s.nr_params, n = s.nr_states;
  const int64_t m = s.reward_columns(), K = m + m * m;
  const bool jac = dout != nullptr;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double* R = s.rewards.data();
  auto fail = [&]() {
    std::fill(out, out + K, nan);
    if (jac) std::fill(dout, dout + K * P, nan);
  };
  const double* breaks = row + E * Pb;
  if (!epoch_graphs(s, row, jac, buf)) return fail();
  const int64_t Pj = jac ? P : 0;
  std::fill(out, out + K, 0.0);
  if (jac) std::fill(dout, dout + K * P, 0.0);
  // z[i] = [v, u_i] with tangents (2n x P, row-major as dalpha); v kept apart too.
  std::vector<std::vector<double>> u(m, std::vector<double>(n, 0.0)), du(m),
      u_end(m, std::vector<double>(n)), du_end(m);
  for (int64_t i = 0; i < m; ++i) du[i].assign(n * Pj, 0.0), du_end[i].assign(n * Pj, 0.0);
  buf.pi.assign(s.alpha.begin(), s.alpha.end());
  buf.dpi.assign(n * Pj, 0.0);
  std::vector<double> X(m * n), dX(m * Pj * n), q(n), dq(Pj * n), diff(n), ddiff(Pj * n), c(n),
      rhs(n);
  NumericGraph aug;
  std::vector<double> zend(2 * n), dzend(2 * n * Pj);
  for (int64_t e = 0; e < E; ++e) {
    NumericGraph& g = buf.graphs[e];
    const bool last = e + 1 == E;
    const double D = last ? 0.0 : breaks[e] - (e ? breaks[e - 1] : 0.0);
    g.alpha = buf.pi;
    g.dalpha = buf.dpi;
    // the ends of the epoch: v (next) and every u_i
    if (!last) {
      buf.next.resize(n);
      buf.dnext.assign(n * Pj, 0.0);
      state_at(g, false, D, buf.next.data(), jac ? buf.dnext.data() : nullptr, series, squaring);
      for (int64_t i = 0; i < m; ++i) {
        reward_chain(g, R + i, m, 2, aug);
        aug.alpha = buf.pi;
        aug.alpha.insert(aug.alpha.end(), u[i].begin(), u[i].end());
        aug.dalpha = buf.dpi;
        aug.dalpha.insert(aug.dalpha.end(), du[i].begin(), du[i].end());
        series_state(aug, false, D, zend.data(), jac ? dzend.data() : nullptr, series);
        std::copy(zend.begin() + n, zend.end(), u_end[i].begin());
        if (jac) std::copy(dzend.begin() + n * P, dzend.end(), du_end[i].begin());
      }
    }
    // x_j = U r_j and q = (v(a) - v(b)) U, with tangents
    if (solver.factorise(topo, g) != MomentStatus::kFinite) return fail();
    for (int64_t j = 0; j < m; ++j) {
      for (int64_t k = 0; k < n; ++k) rhs[k] = R[k * m + j];
      solver.solve(rhs.data(), X.data() + j * n);
      detail::solve_tangents(g, solver, X.data() + j * n, dX.data() + j * Pj * n, Pj, c);
    }
    for (int64_t k = 0; k < n; ++k) diff[k] = buf.pi[k] - (last ? 0.0 : buf.next[k]);
    solver.solve_transposed(diff.data(), q.data());
    for (int64_t p = 0; p < Pj; ++p)
      for (int64_t k = 0; k < n; ++k)
        ddiff[p * n + k] = buf.dpi[k * P + p] - (last ? 0.0 : buf.dnext[k * P + p]);
    detail::solve_transposed_tangents(g, solver, q.data(), ddiff.data(), dq.data(), Pj, c);
    // this epoch's integrals
    const int64_t b_start = e > 0 ? E * Pb + e - 1 : -1, b_end = last ? -1 : E * Pb + e;
    for (int64_t j = 0; j < m; ++j) {
      const double* xj = X.data() + j * n;
      for (int64_t k = 0; k < n; ++k) out[j] += q[k] * R[k * m + j];
      for (int64_t p = 0; p < Pj; ++p)
        for (int64_t k = 0; k < n; ++k) dout[j * P + p] += dq[p * n + k] * R[k * m + j];
      if (jac) {
        double at_start = 0.0, at_end = 0.0;
        for (int64_t k = 0; k < n; ++k) {
          at_start += buf.pi[k] * R[k * m + j];
          if (!last) at_end += buf.next[k] * R[k * m + j];
        }
        if (b_start >= 0) dout[j * P + b_start] -= at_start;
        if (b_end >= 0) dout[j * P + b_end] += at_end;
      }
      for (int64_t i = 0; i < m; ++i) {
        const double* dxj = dX.data() + j * Pj * n;
        double Cij = 0.0;
        for (int64_t k = 0; k < n; ++k) {
          const double du_k = u[i][k] - (last ? 0.0 : u_end[i][k]);
          Cij += q[k] * R[k * m + i] * xj[k] + du_k * xj[k];
        }
        double* o = out + m + i * m + j;
        double* o2 = out + m + j * m + i;
        *o += Cij;
        *o2 += Cij;
        for (int64_t p = 0; p < Pj; ++p) {
          double d = 0.0;
          for (int64_t k = 0; k < n; ++k) {
            const double du_k = u[i][k] - (last ? 0.0 : u_end[i][k]);
            const double ddu = du[i][k * P + p] - (last ? 0.0 : du_end[i][k * P + p]);
            d += dq[p * n + k] * R[k * m + i] * xj[k] + q[k] * R[k * m + i] * dxj[p * n + k] +
                 ddu * xj[k] + du_k * dxj[p * n + k];
          }
          dout[(m + i * m + j) * P + p] += d;
          dout[(m + j * m + i) * P + p] += d;
        }
        if (jac) {  // C_ij's integrand u_i . r_j at the start and the end
          double at_start = 0.0, at_end = 0.0;
          for (int64_t k = 0; k < n; ++k) {
            at_start += u[i][k] * R[k * m + j];
            if (!last) at_end += u_end[i][k] * R[k * m + j];
          }
          for (double* d : {dout + (m + i * m + j) * P, dout + (m + j * m + i) * P}) {
            if (b_start >= 0) d[b_start] -= at_start;
            if (b_end >= 0) d[b_end] += at_end;
          }
        }
      }
    }
    if (last) break;
    // the break: starting tangents [v, u_i] (S_e - S_{e+1}) in column b_e
    if (jac) {
      const NumericGraph& h = buf.graphs[e + 1];
      detail::add_generator_difference(g, h, buf.next.data(), buf.dnext.data() + b_end, P);
      for (int64_t i = 0; i < m; ++i)
        detail::add_generator_difference(g, h, u_end[i].data(), du_end[i].data() + b_end, P);
    }
    buf.pi.swap(buf.next);
    buf.dpi.swap(buf.dnext);
    for (int64_t i = 0; i < m; ++i) u[i].swap(u_end[i]), du[i].swap(du_end[i]);
  }
}

// E[Y^k], k = 1..K, of one reward vector over epochs: z = [v, u_1 .. u_{K-1}]
// crosses each epoch along reward_chain(K blocks), and over an epoch
//     int z dt = (z(a) - z(b)) (-A)^{-1}:  w_0 = dz_0 U,  w_l = (dz_l + w_{l-1} o r) U,
// so E[Y^k] = k! sum_epochs w_{k-1} . r (transposed solves; the last epoch has
// z(b) = 0). Break columns as in evaluate_epoch_reward_moments. Time-valued
// outputs (the density of Y) are not computed here (NaN).
//
// A finite epoch whose generator cannot be factorised (a class that is closed
// in that epoch only) is integrated without a solve: accumulator blocks W_l,
// fed at rate 1 from the blocks z_l and never left, ride along in the series,
// so that W(D) = int z dt. Only a closed class in the open-ended last epoch
// makes the moments infinite (then `infinite_value`: inf for T, NaN for a
// reward that may stay finite). `rewards`: one value per state. With
// `integrate_short_epochs` (the route evaluate_epochs takes when its solves
// would lose digits) every finite epoch with lambda D <= kEpochSeriesMaxRateTime
// is integrated this way too.
inline void evaluate_epoch_reward_power_moments(const Structure& s, const SccTopology& topo,
                                                const double* row, int64_t K, double* out,
                                                double* dout, EpochBuffers& buf,
                                                SeriesBuffers& series, BlockSolver& solver,
                                                const double* rewards, double infinite_value,
                                                bool integrate_short_epochs) {
  const int64_t E = s.epochs, Pb = s.base_params(), P = s.nr_params, n = s.nr_states;
  const bool jac = dout != nullptr;
  const int64_t Pj = jac ? P : 0;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double* r = rewards;
  auto fail = [&]() {
    std::fill(out, out + K, nan);
    if (jac) std::fill(dout, dout + K * P, nan);
  };
  if (K <= 0) return;
  const double* breaks = row + E * Pb;
  if (!epoch_graphs(s, row, jac, buf)) return fail();
  std::fill(out, out + K, 0.0);
  if (jac) std::fill(dout, dout + K * P, 0.0);
  const int64_t N = K * n;
  std::vector<double> z(N, 0.0), dz(N * Pj, 0.0), zend(N, 0.0), dzend(N * Pj, 0.0);
  std::copy(s.alpha.begin(), s.alpha.end(), z.begin());
  std::vector<double> w(N), dw(N * Pj), rhs(n), drhs(Pj * n), c(n);  // w: K x n; dw: (K x P) x n
  NumericGraph aug;
  double factorial = 1.0;
  std::vector<double> fact(K + 1, 1.0);
  for (int64_t k = 1; k <= K; ++k) fact[k] = factorial *= static_cast<double>(k);
  std::vector<double> full, dfull;  // [z, W] of the accumulator fallback
  for (int64_t e = 0; e < E; ++e) {
    NumericGraph& g = buf.graphs[e];
    const bool last = e + 1 == E;
    const bool solvable = solver.factorise(topo, g) == MomentStatus::kFinite;
    if (!solvable && last) {  // mass trapped for ever: infinite (T) or not computed (Y)
      fail();
      std::fill(out, out + K, infinite_value);
      return;
    }
    const double D = last ? 0.0 : breaks[e] - (e ? breaks[e - 1] : 0.0);
    // The solves' integral (z(a) - z(b)) (-A)^{-1} is a difference of nearly
    // equal terms when little happens in the epoch (E[T^4] lost 9 digits on a
    // short, slow epoch); the series' accumulators add non-negative terms only.
    // Asked for, short epochs take them; the solves stay where the series would
    // be long.
    const bool integrate =
        !last && (!solvable || (integrate_short_epochs &&
                                max_out_rate(g) * D <= kEpochSeriesMaxRateTime));
    if (!last) {
      reward_chain(g, r, 1, K, aug);
      if (!integrate) {
        aug.alpha = z;
        aug.dalpha = dz;
        series_state(aug, false, D, zend.data(), jac ? dzend.data() : nullptr, series);
      } else {
        detail::add_accumulators(aug, N);
        aug.alpha.assign(2 * N, 0.0);
        std::copy(z.begin(), z.end(), aug.alpha.begin());
        aug.dalpha.assign(jac ? 2 * N * P : 0, 0.0);
        if (jac) std::copy(dz.begin(), dz.end(), aug.dalpha.begin());
        full.resize(2 * N);
        dfull.resize(jac ? 2 * N * P : 0);
        series_state(aug, false, D, full.data(), jac ? dfull.data() : nullptr, series);
        std::copy(full.begin(), full.begin() + N, zend.begin());
        std::copy(full.begin() + N, full.end(), w.begin());  // W_l = int z_l dt
        if (jac) {
          std::copy(dfull.begin(), dfull.begin() + N * P, dzend.begin());
          for (int64_t l = 0; l < K; ++l)  // (state, parameter) rows to parameter-major
            for (int64_t p = 0; p < P; ++p)
              for (int64_t i = 0; i < n; ++i)
                dw[(l * P + p) * n + i] = dfull[(N + l * n + i) * P + p];
        }
      }
    } else {
      std::fill(zend.begin(), zend.end(), 0.0);
      std::fill(dzend.begin(), dzend.end(), 0.0);
    }
    for (int64_t l = 0; l < K && !integrate; ++l) {
      for (int64_t i = 0; i < n; ++i)
        rhs[i] = z[l * n + i] - zend[l * n + i] + (l ? w[(l - 1) * n + i] * r[i] : 0.0);
      solver.solve_transposed(rhs.data(), w.data() + l * n);
      for (int64_t p = 0; p < Pj; ++p)
        for (int64_t i = 0; i < n; ++i)
          drhs[p * n + i] = dz[(l * n + i) * P + p] - dzend[(l * n + i) * P + p] +
                            (l ? dw[((l - 1) * Pj + p) * n + i] * r[i] : 0.0);
      detail::solve_transposed_tangents(g, solver, w.data() + l * n, drhs.data(),
                                        dw.data() + l * Pj * n, Pj, c);
    }
    const int64_t b_start = e > 0 ? E * Pb + e - 1 : -1, b_end = last ? -1 : E * Pb + e;
    for (int64_t k = 1; k <= K; ++k) {
      const int64_t l = k - 1;
      double value = 0.0, at_start = 0.0, at_end = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        value += w[l * n + i] * r[i];
        at_start += z[l * n + i] * r[i];
        at_end += zend[l * n + i] * r[i];
      }
      out[k - 1] += fact[k] * value;
      for (int64_t p = 0; p < Pj; ++p) {
        double d = 0.0;
        for (int64_t i = 0; i < n; ++i) d += dw[(l * Pj + p) * n + i] * r[i];
        dout[(k - 1) * P + p] += fact[k] * d;
      }
      if (jac && b_start >= 0) dout[(k - 1) * P + b_start] -= fact[k] * at_start;
      if (jac && b_end >= 0) dout[(k - 1) * P + b_end] += fact[k] * at_end;
    }
    if (last) break;
    if (jac) {  // the break: starting tangents z_l (S_e - S_{e+1}) for every block
      const NumericGraph& h = buf.graphs[e + 1];
      for (int64_t l = 0; l < K; ++l)
        detail::add_generator_difference(g, h, zend.data() + l * n,
                                         dzend.data() + l * n * P + b_end, P);
    }
    z.swap(zend);
    dz.swap(dzend);
  }
}

}  // namespace ptdcore
