// ptdcore engine: products with the derivatives dM_p of M = -S (or I - T) and the
// tangent solves built on them, shared by the moments, the reward moments, the epochs
// and the refined solves.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ptdcore/linear_solver.hpp"
#include "ptdcore/numeric_graph.hpp"

namespace ptdcore {

namespace detail {

// y += dM_p x for parameter p, in the edges' differences:
//     (dM_p x)_i = dexit_{i,p} x_i + sum_{e: i->j} g_{e,p} (x_i - x_j)
// (dout = dexit + the out-edges' g). Where fast exchange makes x nearly constant on a
// class of states (migration 1e6 times the coalescence rate), dM_p x is a small
// difference of large terms, and the slow exit amplifies its rounding by the ratio of
// the rates. With every term a difference x_i - x_j (exact when x_i and x_j are within
// a factor 2) the rounding, like the exact vector, is nearly orthogonal to the
// stationary distribution of the exchange: dE[T]/dm of the structured coalescent with
// 3 + 2 lineages at m = 1e6 is 3.7e-10 off instead of 5.7e-4 (with dout_i x_i minus
// the edges' g x_j); refined_solves.hpp takes stiff graphs the rest of the way.
inline void add_dM_times(const NumericGraph& g, int64_t p, const double* x, double* y) {
  const int64_t n = g.n, P = g.P;
  for (int64_t i = 0; i < n; ++i) y[i] += g.dexit[i * P + p] * x[i];
  for (int64_t e = 0; e < g.nr_edges(); ++e)
    y[g.src[e]] += g.g[e * P + p] * (x[g.src[e]] - x[g.dst[e]]);
}

// c = x dM_p for a row vector x: (x dM_p)_j = x_j dout_jp - sum_{i -> j} x_i g_ep.
inline void row_times_dM(const NumericGraph& g, int64_t p, const double* x, double* c) {
  for (int64_t j = 0; j < g.n; ++j) c[j] = x[j] * g.dout[j * g.P + p];
  for (int64_t e = 0; e < g.nr_edges(); ++e) c[g.dst[e]] -= x[g.src[e]] * g.g[e * g.P + p];
}

// Tangents of x = M^{-1} b for a constant b: dx_p = -M^{-1} dM_p x, p < P
// (dx: P x n, parameter-major).
inline void solve_tangents(const NumericGraph& g, const BlockSolver& solver, const double* x,
                           double* dx, int64_t P, std::vector<double>& scratch) {
  scratch.resize(g.n);
  for (int64_t p = 0; p < P; ++p) {
    std::fill(scratch.begin(), scratch.end(), 0.0);
    add_dM_times(g, p, x, scratch.data());
    for (double& v : scratch) v = -v;
    solver.solve(scratch.data(), dx + p * g.n);
  }
}

// Tangents of the row vector y = rhs M^{-1}: dy_p = (drhs_p - y dM_p) M^{-1}, p < P
// (drhs: P x n parameter-major, or null for a constant rhs; dy: P x n).
inline void solve_transposed_tangents(const NumericGraph& g, const BlockSolver& solver,
                                      const double* y, const double* drhs, double* dy, int64_t P,
                                      std::vector<double>& scratch) {
  const int64_t n = g.n;
  scratch.resize(n);
  for (int64_t p = 0; p < P; ++p) {
    row_times_dM(g, p, y, scratch.data());
    for (int64_t i = 0; i < n; ++i) scratch[i] = (drhs ? drhs[p * n + i] : 0.0) - scratch[i];
    solver.solve_transposed(scratch.data(), dy + p * n);
  }
}

// y = M x (sparse product).
inline void M_times(const NumericGraph& g, const double* x, double* y) {
  for (int64_t i = 0; i < g.n; ++i) y[i] = g.out[i] * x[i];
  for (int64_t e = 0; e < g.nr_edges(); ++e) y[g.src[e]] -= g.w[e] * x[g.dst[e]];
}

}  // namespace detail

}  // namespace ptdcore
