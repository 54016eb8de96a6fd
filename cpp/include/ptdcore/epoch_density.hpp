// ptdcore engine: the density, cdf and sf over epochs (and the moments of T
// with them): each epoch's functional started from the state at its break.
// The maths: epochs.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ptdcore/epoch_moments.hpp"
#include "ptdcore/epoch_reward_moments.hpp"
#include "ptdcore/epoch_state.hpp"
#include "ptdcore/linear_solver.hpp"

namespace ptdcore {

// One row of an epoch structure (s.epochs > 1): the functional at the times
// (pmf: T, dpmf: T x P) and the moments (K, dmoments K x P), P = s.nr_params
// = E Pb + E - 1. Invalid rows (a weight negative or not finite in some epoch,
// breaks not finite, not positive and increasing, or not whole steps for a
// discrete model) give NaN.
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

}  // namespace ptdcore
