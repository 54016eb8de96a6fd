// ptdcore engine: moments of T over epochs, one epoch at a time: the
// integrals J_j of a finite or open-ended epoch by transposed solves
// (continuous) or sums over steps (discrete), and their binomial shift to
// the epoch's start. The maths: epochs.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ptdcore/epoch_state.hpp"
#include "ptdcore/linear_solver.hpp"
#include "ptdcore/moments.hpp"
#include "ptdcore/refined_solves.hpp"

namespace ptdcore {

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

// J_1..J_K of one epoch and their derivatives (buf.J, buf.dJ; J_0 set by the caller)
// as epoch_integrals computes them, with every vector of the recursion (the rows q_j,
// their tangents and right-hand sides) in double-double and every transposed solve
// refined (refined_solves.hpp): for stiff epochs, where the tangents' right-hand sides
// dq_j - q_j dM_p cancel.
inline void refined_epoch_integrals(const NumericGraph& g, const BlockSolver& solver,
                                    const double* pi, const double* dpi, const double* next,
                                    const double* dnext, double D, bool last, int64_t K,
                                    int64_t P, EpochBuffers& buf) {
  const int64_t n = g.n;
  RefinedSolver refined(g, solver);
  RefinedVector q;
  std::vector<RefinedVector> dq(P);
  q.zero(n);
  for (auto& v : dq) v.zero(n);
  std::vector<CompensatedSum> rhs(n), drhs(P * n);
  auto total = [n](const RefinedVector& v) {
    CompensatedSum s;
    for (int64_t i = 0; i < n; ++i) s.add(v.hi[i]), s.lo += v.lo[i];
    return s.value();
  };
  for (int64_t i = 0; i < n; ++i) {  // q_0's right-hand side: pi (last) or pi - pi'
    rhs[i] = CompensatedSum{};
    rhs[i].add(pi[i]);
    if (!last) rhs[i].add(-next[i]);
    for (int64_t p = 0; p < P; ++p) {
      CompensatedSum& d = drhs[p * n + i];
      d = CompensatedSum{};
      d.add(dpi[i * g.P + p]);
      if (!last) d.add(-dnext[i * g.P + p]);
    }
  }
  double next_total = 0.0;
  std::vector<double> dnext_total(P, 0.0);
  for (int64_t i = 0; i < n && !last; ++i) {
    next_total += next[i];
    for (int64_t p = 0; p < P; ++p) dnext_total[p] += dnext[i * g.P + p];
  }
  double factorial = 1.0;
  for (int64_t j = 1; j <= K; ++j) {
    std::copy(rhs.begin(), rhs.end(), refined.rhs().begin());
    refined.solve_transposed(q.hi.data(), q.lo.data());
    for (int64_t p = 0; p < P; ++p) {
      std::vector<CompensatedSum>& acc = refined.rhs();
      std::copy(drhs.begin() + p * n, drhs.begin() + (p + 1) * n, acc.begin());
      detail::subtract_row_dM_compensated(g, p, q.hi.data(), q.lo.data(), acc);
      refined.solve_transposed(dq[p].hi.data(), dq[p].lo.data());
    }
    const double Dj = last ? 0.0 : std::pow(D, static_cast<double>(j));
    const double weight = last ? (factorial *= static_cast<double>(j)) : static_cast<double>(j);
    buf.J[j] = -Dj * next_total + weight * total(q);
    for (int64_t p = 0; p < P; ++p)
      buf.dJ[j * P + p] = -Dj * dnext_total[p] + weight * total(dq[p]);
    // the next right-hand side: q_j itself (last), or -D^j pi' + j q_{j-1}
    const double scale = last ? 1.0 : static_cast<double>(j);
    for (int64_t i = 0; i < n; ++i) {
      rhs[i] = CompensatedSum{};
      if (!last) rhs[i].add_product(-Dj, next[i], 0.0);
      rhs[i].add_product(scale, q.hi[i], q.lo[i]);
      for (int64_t p = 0; p < P; ++p) {
        CompensatedSum& d = drhs[p * n + i];
        d = CompensatedSum{};
        if (!last) d.add_product(-Dj, dnext[i * g.P + p], 0.0);
        d.add_product(scale, dq[p].hi[i], dq[p].lo[i]);
      }
    }
  }
}

// Whether epoch_integrals' first solve (q_0 = rhs U, rhs = pi or pi - pi') says the
// epoch is stiff enough for refined_epoch_integrals: refinement_needed with the
// occupation |q_0| and its total per unit of starting mass.
inline bool stiff_epoch(const NumericGraph& g, const BlockSolver& solver, const double* pi,
                        const double* q0, std::vector<double>& scratch) {
  const int64_t n = g.n;
  double mass = 0.0, time = 0.0;
  std::vector<double> a(n);
  for (int64_t i = 0; i < n; ++i) mass += std::fabs(pi[i]), a[i] = std::fabs(q0[i]), time += a[i];
  return mass > 0.0 && refinement_needed(g, solver, a.data(), time / mass, scratch);
}

// buf.Jmag: the magnitudes the terms of a finite epoch's J_j carry, the recursion of
// epoch_integrals on |rhs| (U = (-S)^{-1} is non-negative, so |q_j| <= qmag_j, and
// qmag_j bounds what rounding in earlier differences can have left in q_j).
inline void epoch_magnitudes(const BlockSolver& solver, int64_t n, const double* pi,
                             const double* next, double D, int64_t K, EpochBuffers& buf) {
  double pi_total = 0.0, next_total = 0.0;
  for (int64_t i = 0; i < n; ++i) pi_total += pi[i];
  for (int64_t i = 0; i < n; ++i) next_total += next[i];
  buf.Jmag.assign(K + 1, 0.0);
  buf.Jmag[0] = pi_total + next_total;
  std::vector<double> rhs_mag(n), qmag(n);
  for (int64_t i = 0; i < n; ++i) rhs_mag[i] = std::fabs(pi[i]) + std::fabs(next[i]);
  for (int64_t j = 1; j <= K; ++j) {
    const double Dj = std::pow(D, static_cast<double>(j));
    solver.solve_transposed(rhs_mag.data(), qmag.data());
    for (int64_t i = 0; i < n; ++i) {
      rhs_mag[i] = Dj * std::fabs(next[i]) + static_cast<double>(j) * std::fabs(qmag[i]);
      buf.Jmag[j] += rhs_mag[i];
    }
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
      if (j == 1 && P && stiff_epoch(g, solver, pi, buf.q.data(), c)) {
        refined_epoch_integrals(g, solver, pi, dpi, nullptr, nullptr, D, true, K, P, buf);
        return true;
      }
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
  epoch_magnitudes(solver, n, pi, next, D, K, buf);
  // q_0 = (pi - pi') U
  for (int64_t i = 0; i < n; ++i) buf.rhs[i] = pi[i] - next[i];
  for (int64_t p = 0; p < P; ++p)
    for (int64_t i = 0; i < n; ++i) buf.drhs[p * n + i] = dpi[i * g.P + p] - dnext[i * g.P + p];
  const double next_total = total(next);
  for (int64_t j = 1; j <= K; ++j) {
    solve_step();  // q_{j-1}
    if (j == 1 && P && stiff_epoch(g, solver, pi, buf.q.data(), c)) {
      refined_epoch_integrals(g, solver, pi, dpi, next, dnext, D, false, K, P, buf);
      return true;
    }
    const double Dj = std::pow(D, static_cast<double>(j));
    buf.J[j] = -Dj * next_total + static_cast<double>(j) * total(buf.q.data());
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

}  // namespace ptdcore
