// ptdcore engine: epochs, what every output over epochs is built from: the
// per-epoch graphs of a row, the state vector carried across a break, the
// checks of the breaks, the accumulator chain and the route thresholds.
// The model and its maths: epochs.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ptdcore/compensated.hpp"
#include "ptdcore/method.hpp"
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

// Adaptive uniformisation: a series longer than this (lambda t) runs in steps.
inline constexpr double kAdaptiveMinRateTime = 256.0;
// The first step's Poisson mean (lambda h); it doubles at each step after which
// the rate has not fallen, and after kAdaptiveStalls of those the rest of the
// time goes in one series (a chain whose fastest states keep their mass pays at
// most these few short steps more than one series).
inline constexpr double kAdaptiveStepMean = 64.0;
inline constexpr int kAdaptiveStalls = 3;
// A state whose mass and tangents are below this fraction of their totals, and
// that no state above it reaches, is set to zero before a step.
inline constexpr double kAdaptiveDrop = 1e-25;

namespace detail {

// The states that hold mass or a tangent above kAdaptiveDrop of its total (v: n,
// dv: n x P or null), and every state they reach by any edge (a zero weight may
// still carry a tangent; CSR by source: edges_by_source); the others are set to
// zero. Returns the largest out-rate among those kept.
inline double keep_live_states(const NumericGraph& g, const std::vector<int64_t>& out_ptr,
                               const std::vector<int64_t>& out_edge, double* v, double* dv,
                               std::vector<char>& live, std::vector<int64_t>& stack) {
  const int64_t n = g.n, P = dv ? g.P : 0;
  double total = 0.0;
  std::vector<double> column(P, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    total += std::fabs(v[i]);
    for (int64_t p = 0; p < P; ++p) column[p] += std::fabs(dv[i * P + p]);
  }
  live.assign(n, 0);
  stack.clear();
  for (int64_t i = 0; i < n; ++i) {
    bool above = std::fabs(v[i]) > kAdaptiveDrop * total;
    for (int64_t p = 0; p < P && !above; ++p)
      above = std::fabs(dv[i * P + p]) > kAdaptiveDrop * column[p];
    if (above) live[i] = 1, stack.push_back(i);
  }
  close_reached(out_ptr, out_edge, g.dst, [](int64_t) { return true; }, live, stack);
  double lambda = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    if (live[i]) {
      lambda = std::max(lambda, g.out[i]);
      continue;
    }
    v[i] = 0.0;
    for (int64_t p = 0; p < P; ++p) dv[i * P + p] = 0.0;
  }
  return lambda;
}

}  // namespace detail

// The state vector at time t of g by adaptive uniformisation (van Moorsel and
// Sanders 1994): steps of Poisson mean kAdaptiveStepMean, each at the largest
// out-rate of the states that still hold mass (detail::keep_live_states: states
// with less than kAdaptiveDrop of it, reached by none that hold more, are set to
// zero and never fed again), so that the steps lengthen as the mass leaves the
// fast states (lineages coalescing), each step on the subgraph of the states kept
// (they shrink with the rate). Every term non-negative, as in the series.
inline void adaptive_series_state(const NumericGraph& g, double t, double* sv, double* sdv,
                                  SeriesBuffers& series, NumericGraph& sub) {
  const int64_t n = g.n, P = g.with_grad && sdv ? g.P : 0;
  std::vector<int64_t> out_ptr, out_edge, stack, states;
  edges_by_source(n, g.src, out_ptr, out_edge);
  std::vector<char> live;
  std::vector<int64_t> index(n, -1);
  std::vector<double> v(g.alpha), dv(n * P, 0.0), sub_v, sub_dv;
  if (P && !g.dalpha.empty()) std::copy(g.dalpha.begin(), g.dalpha.end(), dv.begin());
  double rest = t, previous = max_out_rate(g), mean = kAdaptiveStepMean;
  int stalls = 0;
  bool finite = true;
  while (rest > 0.0 && finite) {
    const double lambda = detail::keep_live_states(g, out_ptr, out_edge, v.data(),
                                                   P ? dv.data() : nullptr, live, stack);
    if (!(lambda > 0.0)) break;  // nothing left moves
    if (rest < t && lambda >= previous) ++stalls, mean *= 2.0;
    const double h = stalls >= kAdaptiveStalls ? rest : std::min(rest, mean / lambda);
    // the step on the subgraph of the live states (closed under the edges)
    states.clear();
    for (int64_t i = 0; i < n; ++i)
      if (live[i]) index[i] = static_cast<int64_t>(states.size()), states.push_back(i);
    const int64_t m = static_cast<int64_t>(states.size());
    sub.n = m;
    sub.P = P;
    sub.with_grad = P > 0;
    sub.src.clear(), sub.dst.clear(), sub.w.clear(), sub.g.clear();
    sub.alpha.resize(m), sub.out.resize(m), sub.exit.resize(m);
    sub.dalpha.resize(m * P), sub.dout.resize(m * P), sub.dexit.resize(m * P);
    for (int64_t a = 0; a < m; ++a) {
      const int64_t i = states[a];
      sub.alpha[a] = v[i], sub.out[a] = g.out[i], sub.exit[a] = g.exit[i];
      for (int64_t p = 0; p < P; ++p) {
        sub.dalpha[a * P + p] = dv[i * P + p];
        sub.dout[a * P + p] = g.dout[i * P + p];
        sub.dexit[a * P + p] = g.dexit[i * P + p];
      }
      for (int64_t k = out_ptr[i]; k < out_ptr[i + 1]; ++k) {
        const int64_t e = out_edge[k];
        sub.src.push_back(a);
        sub.dst.push_back(index[g.dst[e]]);
        sub.w.push_back(g.w[e]);
        if (P) sub.g.insert(sub.g.end(), g.g.begin() + e * P, g.g.begin() + (e + 1) * P);
      }
    }
    sub_v.resize(m);
    sub_dv.resize(m * P);
    series_state_at_rate(sub, false, lambda, h, sub_v.data(), P ? sub_dv.data() : nullptr,
                         series);
    for (int64_t a = 0; a < m; ++a) {
      v[states[a]] = sub_v[a];
      for (int64_t p = 0; p < P; ++p) dv[states[a] * P + p] = sub_dv[a * P + p];
      finite = finite && std::isfinite(sub_v[a]);  // (beyond kMaxSeriesTerms: NaN, kept)
    }
    rest = h < rest ? rest - h : 0.0;
    previous = lambda;
  }
  std::copy(v.begin(), v.end(), sv);
  if (sdv) std::fill(sdv, sdv + n * (g.with_grad ? g.P : 0), 0.0);
  if (P) std::copy(dv.begin(), dv.end(), sdv);
}

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
  if (!discrete && std::isfinite(m) && m > kAdaptiveMinRateTime) {
    NumericGraph work;
    adaptive_series_state(g, t, sv, sdv, series, work);
    return;
  }
  series_state(g, discrete, t, sv, sdv, series);
}

namespace detail {

// The tangent columns p that can be non-zero over an epoch of g: a non-zero
// entry in the weights' gradients or in the starting tangents (a row carries
// every epoch's parameters; one epoch's graph depends on its own only).
inline std::vector<int64_t> active_columns(const NumericGraph& g) {
  const int64_t P = g.P, n = g.n, E = g.nr_edges();
  std::vector<char> on(P, 0);
  for (int64_t e = 0; e < E; ++e)
    for (int64_t p = 0; p < P; ++p) on[p] |= g.g[e * P + p] != 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < P; ++p)
      on[p] |= g.dout[i * P + p] != 0.0 || g.dexit[i * P + p] != 0.0 ||
               (!g.dalpha.empty() && g.dalpha[i * P + p] != 0.0);
  std::vector<int64_t> cols;
  for (int64_t p = 0; p < P; ++p)
    if (on[p]) cols.push_back(p);
  return cols;
}

}  // namespace detail

// state_at with the tangents of the active columns only (the others stay zero):
// the series' cost grows with the number of tangents it carries. `compact` is
// scratch. Without gradients, or with every column active, state_at itself.
inline void state_at_active(const NumericGraph& g, double t, double* sv, double* sdv,
                            SeriesBuffers& series, SquaringBuffers& squaring,
                            NumericGraph& compact) {
  if (!g.with_grad || !sdv) return state_at(g, false, t, sv, sdv, series, squaring);
  const std::vector<int64_t> cols = detail::active_columns(g);
  const int64_t P = g.P, Q = static_cast<int64_t>(cols.size()), n = g.n;
  if (Q == P) return state_at(g, false, t, sv, sdv, series, squaring);
  compact.n = n;
  compact.P = Q;
  compact.with_grad = Q > 0;
  compact.src = g.src;
  compact.dst = g.dst;
  compact.w = g.w;
  compact.alpha = g.alpha;
  compact.out = g.out;
  compact.exit = g.exit;
  auto pick = [&](const std::vector<double>& from, int64_t rows, std::vector<double>& to) {
    to.assign(from.empty() ? 0 : rows * Q, 0.0);
    if (!from.empty())
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t q = 0; q < Q; ++q) to[r * Q + q] = from[r * P + cols[q]];
  };
  pick(g.g, g.nr_edges(), compact.g);
  pick(g.dout, n, compact.dout);
  pick(g.dexit, n, compact.dexit);
  pick(g.dalpha, n, compact.dalpha);
  std::vector<double> dv(n * Q);
  state_at(compact, false, t, sv, Q ? dv.data() : nullptr, series, squaring);
  std::fill(sdv, sdv + n * P, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t q = 0; q < Q; ++q) sdv[i * P + cols[q]] = dv[i * Q + q];
}

namespace detail {

// y += x (S_a - S_b) for two epochs' graphs of one structure (same internal
// edges): each edge i -> j moves the flux x_i (w_a - w_b) out of i and into j, each
// exit takes x_i (exit_a - exit_b). Accumulated exactly (compensated.hpp) and
// rounded once per state: where the rates differ by a fast exchange, inflow and
// outflow of a state nearly balance, and their rounding, amplified by the next
// epoch's slow exit, was the largest error of a break's derivative (2.4e-9 on the
// structured coalescent with migration 0.5 then 1e6).
inline void add_generator_difference(const NumericGraph& a, const NumericGraph& b,
                                     const double* x, double* y, int64_t stride) {
  std::vector<CompensatedSum> acc(a.n);
  for (int64_t j = 0; j < a.n; ++j) {
    acc[j].add(y[j * stride]);
    acc[j].add_product(-x[j], a.exit[j] - b.exit[j], 0.0);
  }
  for (int64_t e = 0; e < a.nr_edges(); ++e) {
    const double dw = a.w[e] - b.w[e];
    acc[a.dst[e]].add_product(x[a.src[e]], dw, 0.0);
    acc[a.src[e]].add_product(-x[a.src[e]], dw, 0.0);
  }
  for (int64_t j = 0; j < a.n; ++j) y[j * stride] = acc[j].value();
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

// A finite epoch whose largest out-rate times duration is at most this is
// integrated by the series (accumulators) for the moments, not by solves.
inline constexpr double kEpochSeriesMaxRateTime = 1000.0;
// Moments over epochs leave the solves for the block chain when the terms
// behind a moment exceed it by more than this factor (then rounding could
// cost it more than the contract's 1e-13).
inline constexpr double kEpochMaxCancellation = 256.0;

}  // namespace ptdcore
