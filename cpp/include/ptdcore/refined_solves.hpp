// ptdcore engine: solves refined in double-double, for derivatives on stiff graphs.
//
// Where one state is left far faster than the chain is absorbed, or fast exchange
// mixes a class of states whose exit is slow (migration 1e6 times the coalescence
// rate), the vectors x = M^{-1} b are nearly constant along fast edges, a tangent
// right-hand side dM_p x is a small difference of large terms, and the slow exit
// amplifies its rounding by the ratio of the time scales: the structured coalescent
// with 3 + 2 lineages at migration 1e6 gave dE[T]/dm 5.7e-4 off, its pooled SFS means
// 3.2e-4 (transposed solves) in double. Above kRefineStiffness every vector of a
// derivative recursion is carried as an unevaluated sum hi + lo: right-hand sides
// accumulated exactly (compensated.hpp), each solve refined once by its residual
// computed in double-double from the exit weights and edge weights themselves (the
// exact M whose GTH factorisation the solver holds), final contractions compensated.
// The refined solve is accurate to about (eps x stiffness)^2.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ptdcore/compensated.hpp"
#include "ptdcore/linear_solver.hpp"
#include "ptdcore/numeric_graph.hpp"
#include "ptdcore/tangents.hpp"

namespace ptdcore {

// Refinement is considered above this stiffness (below it the unrefined error, about
// eps x stiffness, stays under ~1e-12), and taken where the rounding bound of the
// first-order tangents exceeds kRefineTolerance of the derivative itself.
inline constexpr double kRefineStiffness = 1e4;
inline constexpr double kRefineTolerance = 1e-12;

// max_i out_i x_i for x_i = E[T | start in i] (or, with rewards, the expected reward
// in units of the largest one): the absorption time from a state in units of that
// state's own holding time. The differences x_i - x_j along fast edges are of the
// order of 1/out_i and come from x_i, x_j rounded relative to themselves, so they
// carry eps x stiffness before any solve (the two-state chain at rate 1e7 then 1:
// 5.8e-10 in dE[T]/dtheta); a fast cyclic class then amplifies that again.
inline double stiffness(const NumericGraph& g, const double* x, const double* rewards) {
  double worst = 0.0, largest_reward = 1.0;
  if (rewards) largest_reward = *std::max_element(rewards, rewards + g.n);
  for (int64_t i = 0; i < g.n; ++i) worst = std::max(worst, g.out[i] * x[i]);
  return largest_reward > 0.0 ? worst / largest_reward : 0.0;
}

// Whether the tangents of x = M^{-1} r (r >= 0, x >= 0) need refining. For each
// parameter p the rounding of dM_p x (differences along edges of x_i, x_j, each
// rounded relative to itself) is bounded by
//     eps x [sum_i a_i |dexit_ip| x_i + sum_{e: i -> j} a_i |g_ep| (x_i + x_j)],
// carried to the output alpha dx_p = -a . dM_p x by the occupation a = alpha U >= 0,
// and compared with that derivative itself: where it cancels (fast exchange, a fast
// state's own rate) the bound is a large part of it; where every rate scales together
// (Kingman's coalescent, stiff by max_i out_i x_i alone) it is not.
inline bool needs_refinement(const NumericGraph& g, const double* a, const double* x,
                             std::vector<double>& scratch) {
  constexpr double kEps = 4.0 * 1.1102230246251565e-16;  // a few roundings per term
  const int64_t n = g.n, P = g.P;
  scratch.resize(n);
  for (int64_t p = 0; p < P; ++p) {
    std::fill(scratch.begin(), scratch.end(), 0.0);
    detail::add_dM_times(g, p, x, scratch.data());
    double derivative = 0.0, bound = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      derivative += a[i] * scratch[i];
      bound += a[i] * std::abs(g.dexit[i * P + p]) * x[i];
    }
    for (int64_t e = 0; e < g.nr_edges(); ++e)
      bound += a[g.src[e]] * std::abs(g.g[e * P + p]) * (x[g.src[e]] + x[g.dst[e]]);
    if (kEps * bound > kRefineTolerance * std::abs(derivative)) return true;
  }
  return false;
}

// The two-stage test for a recursion that has an occupation a >= 0 (alpha U, or an
// epoch's first row) but not yet x = U 1: the fastest rate times `time` (that
// occupation per unit of starting mass) against kRefineStiffness, then
// needs_refinement with x = U 1 (one more solve).
inline bool refinement_needed(const NumericGraph& g, const BlockSolver& solver, const double* a,
                              double time, std::vector<double>& scratch) {
  if (max_out_rate(g) * time <= kRefineStiffness) return false;
  std::vector<double> ones(g.n, 1.0), x(g.n);
  solver.solve(ones.data(), x.data());
  return needs_refinement(g, a, x.data(), scratch);
}

// A vector hi + lo (n each).
struct RefinedVector {
  std::vector<double> hi, lo;
  void zero(int64_t n) { hi.assign(n, 0.0), lo.assign(n, 0.0); }
  // hi + lo rounded to double, into `out`.
  void round_into(double* out) const {
    for (size_t i = 0; i < hi.size(); ++i) out[i] = hi[i] + lo[i];
  }
};

namespace detail {

// acc -= dM_p (uh + ul) for a column vector: (dM_p u)_i = dexit_ip u_i + sum over
// the edges i -> j of g_ep (u_i - u_j), every product and difference kept exactly.
inline void subtract_dM_times_compensated(const NumericGraph& g, int64_t p, const double* uh,
                                          const double* ul, std::vector<CompensatedSum>& acc) {
  const int64_t n = g.n, P = g.P;
  for (int64_t i = 0; i < n; ++i) acc[i].add_product(-g.dexit[i * P + p], uh[i], ul[i]);
  for (int64_t e = 0; e < g.nr_edges(); ++e) {
    const int64_t i = g.src[e], j = g.dst[e];
    double d, d_err;
    two_sum(uh[i], -uh[j], d, d_err);
    acc[i].add_product(-g.g[e * P + p], d, d_err + (ul[i] - ul[j]));
  }
}

// acc -= (yh + yl) dM_p for a row vector: each edge i -> j moves the flux
// g_ep y_i out of i and into j; the exits take dexit_ip y_i.
inline void subtract_row_dM_compensated(const NumericGraph& g, int64_t p, const double* yh,
                                        const double* yl, std::vector<CompensatedSum>& acc) {
  const int64_t n = g.n, P = g.P;
  for (int64_t i = 0; i < n; ++i) acc[i].add_product(-g.dexit[i * P + p], yh[i], yl[i]);
  for (int64_t e = 0; e < g.nr_edges(); ++e) {
    const int64_t i = g.src[e], j = g.dst[e];
    acc[i].add_product(-g.g[e * P + p], yh[i], yl[i]);
    acc[j].add_product(g.g[e * P + p], yh[i], yl[i]);
  }
}

// alpha . (vh + vl), compensated.
inline double dot_compensated(const std::vector<double>& a, const double* vh, const double* vl) {
  CompensatedSum s;
  for (size_t i = 0; i < a.size(); ++i) s.add_product(a[i], vh[i], vl[i]);
  return s.value();
}

}  // namespace detail

// The refined solves of one factorised M; acc is the right-hand side, accumulated by
// the caller (it is overwritten).
class RefinedSolver {
 public:
  RefinedSolver(const NumericGraph& g, const BlockSolver& solver)
      : g_(g), solver_(solver), b_(g.n), bl_(g.n), tmp_(g.n), acc_(g.n) {}

  // The right-hand side to fill, zeroed.
  std::vector<CompensatedSum>& rhs() {
    std::fill(acc_.begin(), acc_.end(), CompensatedSum{});
    return acc_;
  }

  // y = M^{-1} rhs: in double, then once more on the residual rhs - M y computed in
  // double-double ((M y)_i = exit_i y_i + sum over the edges i -> j of w_e (y_i - y_j)).
  void solve(double* yh, double* yl) {
    take_rhs();
    solver_.solve(tmp_.data(), yh);
    start_residual(yh);
    for (int64_t e = 0; e < g_.nr_edges(); ++e) {
      double d, d_err;
      two_sum(yh[g_.src[e]], -yh[g_.dst[e]], d, d_err);
      acc_[g_.src[e]].add_product(-g_.w[e], d, d_err);
    }
    round_residual();
    solver_.solve(tmp_.data(), yl);
  }

  // The row vector y = rhs M^{-1} likewise ((y M)_j = y_j exit_j + the fluxes w_e y_i
  // of the edges out of j, less those into j).
  void solve_transposed(double* yh, double* yl) {
    take_rhs();
    solver_.solve_transposed(tmp_.data(), yh);
    start_residual(yh);
    for (int64_t e = 0; e < g_.nr_edges(); ++e) {
      const int64_t i = g_.src[e], j = g_.dst[e];
      acc_[i].add_product(-g_.w[e], yh[i], 0.0);
      acc_[j].add_product(g_.w[e], yh[i], 0.0);
    }
    round_residual();
    solver_.solve_transposed(tmp_.data(), yl);
  }

 private:
  // The residual's start: rhs - exit o y (rhs as take_rhs kept it).
  void start_residual(const double* yh) {
    for (int64_t i = 0; i < g_.n; ++i) {
      acc_[i] = CompensatedSum{b_[i], bl_[i]};
      acc_[i].add_product(-g_.exit[i], yh[i], 0.0);
    }
  }
  void round_residual() {
    for (int64_t i = 0; i < g_.n; ++i) tmp_[i] = acc_[i].value();
  }
  void take_rhs() {
    for (int64_t i = 0; i < g_.n; ++i) {
      b_[i] = acc_[i].hi, bl_[i] = acc_[i].lo;
      tmp_[i] = b_[i] + bl_[i];
    }
  }

  const NumericGraph& g_;
  const BlockSolver& solver_;
  std::vector<double> b_, bl_, tmp_;
  std::vector<CompensatedSum> acc_;
};

}  // namespace ptdcore
