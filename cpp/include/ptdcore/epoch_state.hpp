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
