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
#pragma once

#include <cstdint>
#include <vector>

#include "ptdcore/linear_solver.hpp"
#include "ptdcore/moments.hpp"
#include "ptdcore/numeric_graph.hpp"

namespace ptdcore {

struct RewardMomentBuffers {
  std::vector<double> X, dX;  // x_j for every column: m x n, m x P x n
  std::vector<double> a, da;  // alpha U (n), its derivatives (P x n)
  std::vector<double> r, rhs;
};

// rewards: n x m row-major. out: mean (m) then cross (m x m row-major);
// dout: (m + m^2) x P, or nullptr. Returns kInfinite when a state reachable
// from alpha cannot be absorbed at this theta (outputs then left unset).
inline MomentStatus compute_reward_moments(const SccTopology& topo, const NumericGraph& g,
                                           const double* rewards, int64_t m, double* out,
                                           double* dout, BlockSolver& solver,
                                           RewardMomentBuffers& buf) {
  const int64_t n = g.n, P = dout ? g.P : 0;
  const MomentStatus status = solver.factorise(topo, g);
  if (status != MomentStatus::kFinite) return status;
  buf.X.assign(m * n, 0.0);
  buf.dX.assign(m * P * n, 0.0);
  buf.r.resize(n);
  buf.rhs.resize(n);
  for (int64_t j = 0; j < m; ++j) {
    for (int64_t i = 0; i < n; ++i) buf.r[i] = rewards[i * m + j];
    double* x = buf.X.data() + j * n;
    solver.solve(buf.r.data(), x);
    detail::solve_tangents(g, solver, x, buf.dX.data() + j * P * n, P, buf.rhs);
  }
  buf.a.resize(n);
  solver.solve_transposed(g.alpha.data(), buf.a.data());
  buf.da.assign(P * n, 0.0);
  detail::solve_transposed_tangents(g, solver, buf.a.data(), nullptr, buf.da.data(), P, buf.rhs);
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
  return MomentStatus::kFinite;
}

}  // namespace ptdcore
