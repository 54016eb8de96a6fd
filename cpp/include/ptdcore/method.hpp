// ptdcore engine: which algorithm computes the density (or PMF) at one theta.
//
// Two exact algorithms, chosen per theta by estimated cost and accuracy:
//  - the uniformisation series (distribution.hpp): sparse, cost about
//    lambda t_max passes over the edges, rounding error growing like
//    lambda t_max * eps (a state whose out-rate is far below lambda loses the
//    relative precision of its complement 1 - out_i / lambda);
//  - the squaring ladder (squaring.hpp): dense, cost about
//    log2(lambda t_max) n^3 plus log2 n^2 per time, rounding error growing
//    like log2(lambda t_max) * eps.
// The ladder is taken when it is cheaper, when the series would need more
// than kSeriesAccurateTerms terms (and the ladder costs at most
// kSquaringAccuracyPremium times as much), and always when the series would
// need more terms than it may run; models above kSquaringMaxStates states
// stay with the series (where the series cannot run, they get NaN).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "ptdcore/distribution.hpp"
#include "ptdcore/numeric_graph.hpp"
#include "ptdcore/poisson.hpp"
#include "ptdcore/squaring.hpp"

namespace ptdcore {

inline constexpr int64_t kSquaringMaxStates = 2000;
inline constexpr double kSeriesAccurateTerms = 1.0e4;
inline constexpr double kSquaringAccuracyPremium = 50.0;

enum class DensityMethod { kSeries, kSquaring };

// m_max: lambda * t_max (continuous) or the largest step count (discrete).
inline DensityMethod choose_density_method(const NumericGraph& g, bool jac, double m_max,
                                           int64_t T, bool discrete) {
  if (g.n > kSquaringMaxStates || !(m_max > 0.0)) return DensityMethod::kSeries;
  if (m_max > 0.5 * static_cast<double>(kMaxSeriesTerms)) return DensityMethod::kSquaring;
  const double f = jac ? 1.0 + static_cast<double>(g.P) : 1.0;
  const double terms = discrete ? m_max : static_cast<double>(poisson_right_end(m_max));
  if (terms > 0.9 * static_cast<double>(kMaxSeriesTerms)) return DensityMethod::kSquaring;
  const double per_time = discrete ? 1.0 : 20.0 * std::sqrt(m_max) + 10.0;
  const double series = f * ((terms + 1.0) * static_cast<double>(g.n + g.nr_edges()) +
                             static_cast<double>(T) * per_time);
  const double steps = discrete ? m_max : m_max / kSquaringBaseStep;
  const double squaring = squaring_cost(g.n, g.P, jac, steps, T, discrete);
  if (squaring <= series) return DensityMethod::kSquaring;
  if (terms > kSeriesAccurateTerms && squaring <= kSquaringAccuracyPremium * series)
    return DensityMethod::kSquaring;
  return DensityMethod::kSeries;
}

// The density/mass, distribution function or survival function (`what`) of g
// at times[0..T) (NaN at invalid times); atom = P(T = 0), datom its gradient
// (P values, or null for zero).
inline void functional(const NumericGraph& g, bool discrete, Output what, double atom,
                       const double* datom, const double* times, int64_t T, double* out,
                       double* dout, SeriesBuffers& series, SquaringBuffers& squaring) {
  double t_max = 0.0;
  for (int64_t q = 0; q < T; ++q)
    if (std::isfinite(times[q])) t_max = std::max(t_max, times[q]);
  if (discrete) {
    if (choose_density_method(g, dout != nullptr, t_max, T, true) == DensityMethod::kSquaring)
      squaring_density(g, true, 1.0, what, atom, datom, times, T, out, dout, squaring);
    else
      series_mass(g, what, atom, datom, times, T, out, dout, series);
    return;
  }
  const double lambda = max_out_rate(g);
  const double m_max = lambda * t_max;
  if (lambda > 0.0 && std::isfinite(m_max) &&
      choose_density_method(g, dout != nullptr, m_max, T, false) == DensityMethod::kSquaring) {
    squaring_density(g, false, lambda, what, atom, datom, times, T, out, dout, squaring);
    return;
  }
  series_functional(g, what, atom, datom, times, T, out, dout, series);
}

}  // namespace ptdcore
