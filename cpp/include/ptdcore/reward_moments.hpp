// ptdcore engine: first and second moments of m rewards at once (the
// multivariate phase-type distribution of Y_j = integral of r_j(X_t) dt).
//
// With M = -S and U = M^{-1} (Bladt & Nielsen, Matrix-Exponential
// Distributions in Applied Probability, Thm 8.1.2 and Sec. 8.1.1):
//     E[Y_j]     = alpha U r_j,
//     E[Y_i Y_j] = alpha U diag(r_i) U r_j + alpha U diag(r_j) U r_i
//                = sum_s a_s (r_i(s) x_j(s) + r_j(s) x_i(s)),
// with x_j = U r_j (m solves) and a = alpha U (one transposed solve): one
// factorisation of M serves all columns, and the cross moments cost O(n m^2).
// Every quantity is a sum of non-negative terms (entrywise accurate solves).
// Jacobians by forward mode: M dx_j = -dM_p x_j and da_p M = -a dM_p.
// Second derivatives (M is linear in theta): M d2x_j = -dM_p dx_jq - dM_q dx_jp
// and d2a M = -da_p dM_q - da_q dM_p.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ptdcore/linear_solver.hpp"
#include "ptdcore/moments.hpp"
#include "ptdcore/numeric_graph.hpp"
#include "ptdcore/refined_solves.hpp"

namespace ptdcore {

struct RewardMomentBuffers {
  std::vector<double> X, dX, d2X;  // x_j for every column: m x n, m x P x n, m x P x P x n
  std::vector<double> a, da, d2a;  // alpha U (n), its derivatives (P x n, P x P x n)
  std::vector<double> r, rhs, tmp;
};

namespace detail {

// Second derivatives of the m means and m^2 cross moments (d2out: (m + m^2) x P x P),
// from the first-order quantities in buf (X, dX, a, da filled).
// With `solved`, d2X and d2a are filled already (refined_reward_vectors).
inline void reward_moment_hessians(const NumericGraph& g, const double* rewards, int64_t m,
                                   double* d2out, const BlockSolver& solver,
                                   RewardMomentBuffers& buf, bool solved = false) {
  const int64_t n = g.n, P = g.P, PP = P * P;
  buf.rhs.resize(n);
  if (!solved) buf.d2X.assign(m * PP * n, 0.0);
  if (!solved) buf.d2a.assign(PP * n, 0.0);
  buf.tmp.resize(n);
  for (int64_t p = 0; p < P && !solved; ++p)
    for (int64_t q = p; q < P; ++q) {
      for (int64_t j = 0; j < m; ++j) {  // M d2x = -(dM_p dx_q + dM_q dx_p)
        std::fill(buf.rhs.begin(), buf.rhs.end(), 0.0);
        add_dM_times(g, p, buf.dX.data() + (j * P + q) * n, buf.rhs.data());
        add_dM_times(g, q, buf.dX.data() + (j * P + p) * n, buf.rhs.data());
        for (double& v : buf.rhs) v = -v;
        double* d2x = buf.d2X.data() + (j * PP + p * P + q) * n;
        solver.solve(buf.rhs.data(), d2x);
        std::copy(d2x, d2x + n, buf.d2X.data() + (j * PP + q * P + p) * n);
      }
      // d2a M = -(da_p dM_q + da_q dM_p)
      row_times_dM(g, q, buf.da.data() + p * n, buf.rhs.data());
      row_times_dM(g, p, buf.da.data() + q * n, buf.tmp.data());
      for (int64_t i = 0; i < n; ++i) buf.rhs[i] = -(buf.rhs[i] + buf.tmp[i]);
      double* d2a = buf.d2a.data() + (p * P + q) * n;
      solver.solve_transposed(buf.rhs.data(), d2a);
      std::copy(d2a, d2a + n, buf.d2a.data() + (q * P + p) * n);
    }
  for (int64_t j = 0; j < m; ++j)
    for (int64_t pq = 0; pq < PP; ++pq)
      d2out[j * PP + pq] = dot(g.alpha, buf.d2X.data() + (j * PP + pq) * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = i; j < m; ++j)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t q = 0; q < P; ++q) {
          const double* xi = buf.X.data() + i * n;
          const double* xj = buf.X.data() + j * n;
          const double* dxip = buf.dX.data() + (i * P + p) * n;
          const double* dxiq = buf.dX.data() + (i * P + q) * n;
          const double* dxjp = buf.dX.data() + (j * P + p) * n;
          const double* dxjq = buf.dX.data() + (j * P + q) * n;
          const double* d2xi = buf.d2X.data() + (i * PP + p * P + q) * n;
          const double* d2xj = buf.d2X.data() + (j * PP + p * P + q) * n;
          const double* dap = buf.da.data() + p * n;
          const double* daq = buf.da.data() + q * n;
          const double* d2a = buf.d2a.data() + (p * P + q) * n;
          double c = 0.0;
          for (int64_t s = 0; s < n; ++s) {
            const double ri = rewards[s * m + i], rj = rewards[s * m + j];
            c += d2a[s] * (ri * xj[s] + rj * xi[s]) + dap[s] * (ri * dxjq[s] + rj * dxiq[s]) +
                 daq[s] * (ri * dxjp[s] + rj * dxip[s]) + buf.a[s] * (ri * d2xj[s] + rj * d2xi[s]);
          }
          d2out[(m + i * m + j) * PP + p * P + q] = d2out[(m + j * m + i) * PP + p * P + q] = c;
        }
}

// Whether the derivative solves need refining (refined_solves.hpp), judged on the
// absorption time from alpha U (in buf.a): refinement_needed with E[T] = sum of a.
inline bool stiff_for_rewards(const NumericGraph& g, const BlockSolver& solver,
                              RewardMomentBuffers& buf) {
  double time = 0.0;
  for (int64_t i = 0; i < g.n; ++i) time += buf.a[i];
  return refinement_needed(g, solver, buf.a.data(), time, buf.rhs);
}

// a = alpha U and its tangents da_p M = -a dM_p (and d2a: -da_p dM_q - da_q dM_p)
// in double-double, rounded into buf.a, buf.da (buf.d2a with `second`).
inline void refined_row_vectors(const NumericGraph& g, RefinedSolver& refined, bool second,
                                RewardMomentBuffers& buf) {
  const int64_t n = g.n, P = g.P, PP = P * P;
  RefinedVector a, tangent;
  std::vector<RefinedVector> da(P);
  a.zero(n);
  std::vector<CompensatedSum>& acc = refined.rhs();
  for (int64_t i = 0; i < n; ++i) acc[i].hi = g.alpha[i];
  refined.solve_transposed(a.hi.data(), a.lo.data());
  buf.a.resize(n);
  a.round_into(buf.a.data());
  buf.da.assign(P * n, 0.0);
  for (int64_t p = 0; p < P; ++p) {
    da[p].zero(n);
    subtract_row_dM_compensated(g, p, a.hi.data(), a.lo.data(), refined.rhs());
    refined.solve_transposed(da[p].hi.data(), da[p].lo.data());
    da[p].round_into(buf.da.data() + p * n);
  }
  if (!second) return;
  buf.d2a.assign(PP * n, 0.0);
  tangent.zero(n);
  for (int64_t p = 0; p < P; ++p)
    for (int64_t q = p; q < P; ++q) {
      std::vector<CompensatedSum>& rhs = refined.rhs();
      subtract_row_dM_compensated(g, q, da[p].hi.data(), da[p].lo.data(), rhs);
      subtract_row_dM_compensated(g, p, da[q].hi.data(), da[q].lo.data(), rhs);
      refined.solve_transposed(tangent.hi.data(), tangent.lo.data());
      tangent.round_into(buf.d2a.data() + (p * P + q) * n);
      tangent.round_into(buf.d2a.data() + (q * P + p) * n);
    }
}

// x_j = U r_j, a = alpha U and their tangents (second ones with `second`), every
// solve refined in double-double, rounded into buf (X, dX, a, da; d2X, d2a).
inline void refined_reward_vectors(const NumericGraph& g, const BlockSolver& solver,
                                   const double* rewards, int64_t m, bool second,
                                   RewardMomentBuffers& buf) {
  const int64_t n = g.n, P = g.P, PP = P * P;
  RefinedSolver refined(g, solver);
  RefinedVector x, tangent;
  std::vector<RefinedVector> dx(P);
  x.zero(n);
  tangent.zero(n);
  buf.X.assign(m * n, 0.0);
  buf.dX.assign(m * P * n, 0.0);
  if (second) buf.d2X.assign(m * PP * n, 0.0);
  for (int64_t j = 0; j < m; ++j) {
    std::vector<CompensatedSum>& acc = refined.rhs();
    for (int64_t i = 0; i < n; ++i) acc[i].hi = rewards[i * m + j];
    refined.solve(x.hi.data(), x.lo.data());
    x.round_into(buf.X.data() + j * n);
    for (int64_t p = 0; p < P; ++p) {
      dx[p].zero(n);
      subtract_dM_times_compensated(g, p, x.hi.data(), x.lo.data(), refined.rhs());
      refined.solve(dx[p].hi.data(), dx[p].lo.data());
      dx[p].round_into(buf.dX.data() + (j * P + p) * n);
    }
    for (int64_t p = 0; p < P && second; ++p)
      for (int64_t q = p; q < P; ++q) {
        std::vector<CompensatedSum>& rhs = refined.rhs();
        subtract_dM_times_compensated(g, p, dx[q].hi.data(), dx[q].lo.data(), rhs);
        subtract_dM_times_compensated(g, q, dx[p].hi.data(), dx[p].lo.data(), rhs);
        refined.solve(tangent.hi.data(), tangent.lo.data());
        tangent.round_into(buf.d2X.data() + (j * PP + p * P + q) * n);
        tangent.round_into(buf.d2X.data() + (j * PP + q * P + p) * n);
      }
  }
  refined_row_vectors(g, refined, second, buf);
}

}  // namespace detail

// rewards: n x m row-major. out: mean (m) then cross (m x m row-major);
// dout: (m + m^2) x P, or nullptr; d2out: (m + m^2) x P x P, or nullptr (needs
// dout). Returns kInfinite when a state reachable from alpha cannot be absorbed
// at this theta (outputs then left unset).
inline MomentStatus compute_reward_moments(const SccTopology& topo, const NumericGraph& g,
                                           const double* rewards, int64_t m, double* out,
                                           double* dout, BlockSolver& solver,
                                           RewardMomentBuffers& buf, double* d2out = nullptr) {
  const int64_t n = g.n, P = dout ? g.P : 0;
  const MomentStatus status = solver.factorise(topo, g);
  if (status != MomentStatus::kFinite) return status;
  buf.a.resize(n);
  buf.rhs.resize(n);
  solver.solve_transposed(g.alpha.data(), buf.a.data());  // (decides the route: first)
  const bool refined = P && detail::stiff_for_rewards(g, solver, buf);
  if (refined) {
    detail::refined_reward_vectors(g, solver, rewards, m, d2out != nullptr, buf);
  } else {
    buf.X.assign(m * n, 0.0);
    buf.dX.assign(m * P * n, 0.0);
    buf.r.resize(n);
    for (int64_t j = 0; j < m; ++j) {
      for (int64_t i = 0; i < n; ++i) buf.r[i] = rewards[i * m + j];
      double* x = buf.X.data() + j * n;
      solver.solve(buf.r.data(), x);
      detail::solve_tangents(g, solver, x, buf.dX.data() + j * P * n, P, buf.rhs);
    }
    buf.da.assign(P * n, 0.0);
    detail::solve_transposed_tangents(g, solver, buf.a.data(), nullptr, buf.da.data(), P,
                                      buf.rhs);
  }
  for (int64_t j = 0; j < m; ++j) {
    const double* x = buf.X.data() + j * n;
    out[j] = detail::dot(g.alpha, x);
    for (int64_t p = 0; p < P; ++p)
      dout[j * P + p] = detail::dot(g.alpha, buf.dX.data() + (j * P + p) * n);
  }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = i; j < m; ++j) {
      const double* xi = buf.X.data() + i * n;
      const double* xj = buf.X.data() + j * n;
      double c = 0.0;
      for (int64_t s = 0; s < n; ++s)
        c += buf.a[s] * (rewards[s * m + i] * xj[s] + rewards[s * m + j] * xi[s]);
      out[m + i * m + j] = out[m + j * m + i] = c;
      for (int64_t p = 0; p < P; ++p) {
        const double* dxi = buf.dX.data() + (i * P + p) * n;
        const double* dxj = buf.dX.data() + (j * P + p) * n;
        const double* dap = buf.da.data() + p * n;
        double d = 0.0;
        for (int64_t s = 0; s < n; ++s) {
          const double ri = rewards[s * m + i], rj = rewards[s * m + j];
          d += dap[s] * (ri * xj[s] + rj * xi[s]) + buf.a[s] * (ri * dxj[s] + rj * dxi[s]);
        }
        dout[(m + i * m + j) * P + p] = dout[(m + j * m + i) * P + p] = d;
      }
    }
  if (dout && d2out) detail::reward_moment_hessians(g, rewards, m, d2out, solver, buf, refined);
  return MomentStatus::kFinite;
}

// The means alone, E[Y_j] = a . r_j with a = alpha U (one transposed solve for
// every column; no x_j, no cross moments), and their Jacobians (dout: m x P, or
// nullptr): da_p M = -a dM_p. Returns kInfinite as compute_reward_moments.
inline MomentStatus compute_reward_means(const SccTopology& topo, const NumericGraph& g,
                                         const double* rewards, int64_t m, double* out,
                                         double* dout, BlockSolver& solver,
                                         RewardMomentBuffers& buf) {
  const int64_t n = g.n, P = dout ? g.P : 0;
  const MomentStatus status = solver.factorise(topo, g);
  if (status != MomentStatus::kFinite) return status;
  buf.a.resize(n);
  buf.rhs.resize(n);
  solver.solve_transposed(g.alpha.data(), buf.a.data());
  if (P && detail::stiff_for_rewards(g, solver, buf)) {
    RefinedSolver refined(g, solver);
    detail::refined_row_vectors(g, refined, false, buf);
  } else {
    buf.da.assign(P * n, 0.0);
    if (P) detail::solve_transposed_tangents(g, solver, buf.a.data(), nullptr, buf.da.data(), P,
                                             buf.rhs);
  }
  for (int64_t j = 0; j < m; ++j) {
    double mean = 0.0;
    for (int64_t s = 0; s < n; ++s) mean += buf.a[s] * rewards[s * m + j];
    out[j] = mean;
    for (int64_t p = 0; p < P; ++p) {
      const double* dap = buf.da.data() + p * n;
      double d = 0.0;
      for (int64_t s = 0; s < n; ++s) d += dap[s] * rewards[s * m + j];
      dout[j * P + p] = d;
    }
  }
  return MomentStatus::kFinite;
}

}  // namespace ptdcore
