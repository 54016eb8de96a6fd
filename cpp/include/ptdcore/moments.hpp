// ptdcore engine: moments and their exact Jacobians.
//
// Continuous (Bladt & Nielsen, Matrix-Exponential Distributions in Applied
// Probability, Thm 8.1.5), with U = M^{-1}, M = -S and rewards r (all ones
// without rewards):
//     E[Y^k] = k! alpha (U diag(r))^k 1,
// computed by the solves x_0 = 1, M x_k = r o x_{k-1}.
// Discrete: factorial moments E[N (N-1) ... (N-k+1)] = k! alpha T^{k-1}
// (I - T)^{-k} 1, turned into raw moments with Stirling numbers of the
// second kind.
// Jacobians by forward mode: M dx_k = r o dx_{k-1} - dM x_k (tangents.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ptdcore/linear_solver.hpp"
#include "ptdcore/numeric_graph.hpp"
#include "ptdcore/refined_solves.hpp"
#include "ptdcore/tangents.hpp"

namespace ptdcore {

namespace detail {

// k! as a mantissa in [0.5, 1) and a binary exponent: k! * x is returned for any x
// whose product is representable, although k! itself overflows from k = 171.
class ScaledFactorial {
 public:
  void times(int64_t k) {
    int e = 0;
    mantissa_ = std::frexp(mantissa_ * static_cast<double>(k), &e);
    exponent_ += e;
  }
  double of(double x) const { return std::ldexp(mantissa_ * x, exponent_); }

 private:
  double mantissa_ = 0.5;
  int exponent_ = 1;
};

inline double dot(const std::vector<double>& a, const double* b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// The continuous moments and their derivatives (d2moments may be null) with every
// vector of the recursions x_k, dx_k, d2x_k carried in double-double and every solve
// refined (refined_solves.hpp), for stiff graphs; solver factorised.
inline void refined_continuous_moments(const NumericGraph& g, const BlockSolver& solver,
                                       const double* rewards, int64_t K, double* moments,
                                       double* dmoments, double* d2moments) {
  const int64_t n = g.n, P = g.P;
  const bool hess = d2moments != nullptr;
  std::vector<double> x((K + 1) * n, 0.0), dx((K + 1) * P * n, 0.0);
  std::vector<double> d2x(hess ? (K + 1) * P * P * n : 0, 0.0);
  std::fill(x.begin(), x.begin() + n, 1.0);
  auto DX = [&](int64_t k, int64_t p) { return dx.data() + (k * P + p) * n; };
  auto D2X = [&](int64_t k, int64_t p, int64_t q) { return d2x.data() + ((k * P + p) * P + q) * n; };
  std::vector<double> xl(x.size(), 0.0), dxl(dx.size(), 0.0), d2xl(d2x.size(), 0.0);
  RefinedSolver refined(g, solver);
  auto XL = [&](int64_t k) { return xl.data() + k * n; };
  auto DXL = [&](int64_t k, int64_t p) { return dxl.data() + (k * P + p) * n; };
  auto D2XL = [&](int64_t k, int64_t p, int64_t q) { return d2xl.data() + ((k * P + p) * P + q) * n; };
  // rhs = r o (vh + vl)
  auto start = [&](const double* vh, const double* vl) -> std::vector<CompensatedSum>& {
    std::vector<CompensatedSum>& acc = refined.rhs();
    for (int64_t i = 0; i < n; ++i) acc[i].add_product(rewards ? rewards[i] : 1.0, vh[i], vl[i]);
    return acc;
  };
  for (int64_t k = 1; k <= K; ++k) {
    start(x.data() + (k - 1) * n, XL(k - 1));
    refined.solve(x.data() + k * n, XL(k));
    for (int64_t p = 0; p < P; ++p) {
      auto& acc = start(DX(k - 1, p), DXL(k - 1, p));
      subtract_dM_times_compensated(g, p, x.data() + k * n, XL(k), acc);
      refined.solve(DX(k, p), DXL(k, p));
    }
    if (!hess) continue;
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = p; q < P; ++q) {
        auto& acc = start(D2X(k - 1, p, q), D2XL(k - 1, p, q));
        subtract_dM_times_compensated(g, p, DX(k, q), DXL(k, q), acc);
        subtract_dM_times_compensated(g, q, DX(k, p), DXL(k, p), acc);
        refined.solve(D2X(k, p, q), D2XL(k, p, q));
        if (q != p) {
          std::copy(D2X(k, p, q), D2X(k, p, q) + n, D2X(k, q, p));
          std::copy(D2XL(k, p, q), D2XL(k, p, q) + n, D2XL(k, q, p));
        }
      }
  }
  ScaledFactorial factorial;
  for (int64_t k = 1; k <= K; ++k) {
    factorial.times(k);
    moments[k - 1] = factorial.of(dot_compensated(g.alpha, x.data() + k * n, XL(k)));
    for (int64_t p = 0; p < P; ++p)
      dmoments[(k - 1) * P + p] =
          factorial.of(dot_compensated(g.alpha, DX(k, p), DXL(k, p)));
    for (int64_t pq = 0; pq < P * P && hess; ++pq)
      d2moments[(k - 1) * P * P + pq] = factorial.of(
          dot_compensated(g.alpha, D2X(k, pq / P, pq % P), D2XL(k, pq / P, pq % P)));
  }
}

}  // namespace detail

// moments: (K); dmoments: (K x P) or nullptr; d2moments: (K x P x P) or
// nullptr (second derivatives; needs dmoments). `rewards` may be nullptr.
// Returns kInfinite when a state reachable from alpha cannot be absorbed at
// this theta (the outputs are then left unset).
// Second order: M is linear in theta, so M d2x_k = r o d2x_{k-1} - dM_p dx_q -
// dM_q dx_p, and the discrete iteration z' = z - M z likewise.
inline MomentStatus compute_moments(const SccTopology& topo, const NumericGraph& g,
                                    const double* rewards, bool discrete, int64_t K,
                                    double* moments, double* dmoments, BlockSolver& solver,
                                    double* d2moments = nullptr) {
  if (K <= 0) return MomentStatus::kFinite;
  const int64_t n = g.n, P = g.P;
  const bool jac = dmoments != nullptr;
  const bool hess = jac && d2moments != nullptr;
  const MomentStatus status = solver.factorise(topo, g);
  if (status != MomentStatus::kFinite) return status;
  // x[k] for k = 0..K, dx[k][p] and d2x[k][p][q] (n each).
  std::vector<double> x((K + 1) * n, 0.0), dx(jac ? (K + 1) * P * n : 0, 0.0);
  std::vector<double> d2x(hess ? (K + 1) * P * P * n : 0, 0.0);
  auto DX = [&](int64_t k, int64_t p) { return dx.data() + (k * P + p) * n; };
  auto D2X = [&](int64_t k, int64_t p, int64_t q) { return d2x.data() + ((k * P + p) * P + q) * n; };
  std::vector<double> b(n), tmp(n);
  auto scaled = [&](const double* v) {  // b = r o v
    for (int64_t i = 0; i < n; ++i) b[i] = rewards ? rewards[i] * v[i] : v[i];
  };
  auto subtract_dM_times = [&](int64_t p, const double* v) {  // b -= dM_p v
    std::fill(tmp.begin(), tmp.end(), 0.0);
    detail::add_dM_times(g, p, v, tmp.data());
    for (int64_t i = 0; i < n; ++i) b[i] -= tmp[i];
  };
  std::fill(x.begin(), x.begin() + n, 1.0);
  scaled(x.data());
  solver.solve(b.data(), x.data() + n);
  // Stiff: the derivative recursions in double-double (refined_solves.hpp).
  if (jac && !discrete && stiffness(g, x.data() + n, rewards) > kRefineStiffness) {
    std::vector<double> a(n);
    solver.solve_transposed(g.alpha.data(), a.data());
    if (needs_refinement(g, a.data(), x.data() + n, tmp)) {
      detail::refined_continuous_moments(g, solver, rewards, K, moments, dmoments, d2moments);
      return MomentStatus::kFinite;
    }
  }
  for (int64_t k = 1; k <= K; ++k) {
    if (k > 1) {
      scaled(x.data() + (k - 1) * n);
      solver.solve(b.data(), x.data() + k * n);
    }
    if (!jac) continue;
    for (int64_t p = 0; p < P; ++p) {
      scaled(DX(k - 1, p));
      subtract_dM_times(p, x.data() + k * n);
      solver.solve(b.data(), DX(k, p));
    }
    if (!hess) continue;
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = p; q < P; ++q) {
        scaled(D2X(k - 1, p, q));
        subtract_dM_times(p, DX(k, q));
        subtract_dM_times(q, DX(k, p));
        solver.solve(b.data(), D2X(k, p, q));
        if (q != p) std::copy(D2X(k, p, q), D2X(k, p, q) + n, D2X(k, q, p));
      }
  }
  std::vector<double> raw(K), draw(jac ? K * P : 0), d2raw(hess ? K * P * P : 0);
  detail::ScaledFactorial factorial;
  for (int64_t k = 1; k <= K; ++k) {
    factorial.times(k);
    if (!discrete) {
      raw[k - 1] = factorial.of(detail::dot(g.alpha, x.data() + k * n));
      for (int64_t p = 0; p < P && jac; ++p)
        draw[(k - 1) * P + p] = factorial.of(detail::dot(g.alpha, DX(k, p)));
      for (int64_t pq = 0; pq < P * P && hess; ++pq)
        d2raw[(k - 1) * P * P + pq] =
            factorial.of(detail::dot(g.alpha, D2X(k, pq / P, pq % P)));
      continue;
    }
    // Factorial moment k: apply T = I - M (k - 1) times to y_k = x_k.
    std::vector<double> z(x.begin() + k * n, x.begin() + (k + 1) * n);
    std::vector<double> dz(jac ? P * n : 0), d2z(hess ? P * P * n : 0);
    if (jac) std::copy(DX(k, 0), DX(k, 0) + P * n, dz.begin());
    if (hess) std::copy(D2X(k, 0, 0), D2X(k, 0, 0) + P * P * n, d2z.begin());
    for (int64_t step = 1; step < k; ++step) {
      if (hess) {  // d2z' = d2z - M d2z - dM_p dz_q - dM_q dz_p (before dz changes)
        for (int64_t p = 0; p < P; ++p)
          for (int64_t q = 0; q < P; ++q) {
            double* d2 = d2z.data() + (p * P + q) * n;
            detail::M_times(g, d2, tmp.data());
            std::fill(b.begin(), b.end(), 0.0);
            detail::add_dM_times(g, p, dz.data() + q * n, b.data());
            detail::add_dM_times(g, q, dz.data() + p * n, b.data());
            for (int64_t i = 0; i < n; ++i) d2[i] -= tmp[i] + b[i];
          }
      }
      if (jac) {
        for (int64_t p = 0; p < P; ++p) {
          double* dzp = dz.data() + p * n;
          detail::M_times(g, dzp, tmp.data());
          std::fill(b.begin(), b.end(), 0.0);
          detail::add_dM_times(g, p, z.data(), b.data());
          for (int64_t i = 0; i < n; ++i) dzp[i] -= tmp[i] + b[i];
        }
      }
      detail::M_times(g, z.data(), tmp.data());
      for (int64_t i = 0; i < n; ++i) z[i] -= tmp[i];
    }
    raw[k - 1] = factorial.of(detail::dot(g.alpha, z.data()));
    for (int64_t p = 0; p < P && jac; ++p)
      draw[(k - 1) * P + p] = factorial.of(detail::dot(g.alpha, dz.data() + p * n));
    for (int64_t pq = 0; pq < P * P && hess; ++pq)
      d2raw[(k - 1) * P * P + pq] = factorial.of(detail::dot(g.alpha, d2z.data() + pq * n));
  }
  if (!discrete) {
    std::copy(raw.begin(), raw.end(), moments);
    if (jac) std::copy(draw.begin(), draw.end(), dmoments);
    if (hess) std::copy(d2raw.begin(), d2raw.end(), d2moments);
    return MomentStatus::kFinite;
  }
  // E[N^k] = sum_j S2(k, j) E[N^(j)], S2 the Stirling numbers of the 2nd kind.
  std::vector<double> s2((K + 1) * (K + 1), 0.0);
  s2[0] = 1.0;
  for (int64_t k = 1; k <= K; ++k)
    for (int64_t j = 1; j <= k; ++j)
      s2[k * (K + 1) + j] = j * s2[(k - 1) * (K + 1) + j] + s2[(k - 1) * (K + 1) + j - 1];
  for (int64_t k = 1; k <= K; ++k) {
    double m = 0.0;
    for (int64_t j = 1; j <= k; ++j) m += s2[k * (K + 1) + j] * raw[j - 1];
    moments[k - 1] = m;
    for (int64_t p = 0; p < P && jac; ++p) {
      double dm = 0.0;
      for (int64_t j = 1; j <= k; ++j) dm += s2[k * (K + 1) + j] * draw[(j - 1) * P + p];
      dmoments[(k - 1) * P + p] = dm;
    }
    for (int64_t pq = 0; pq < P * P && hess; ++pq) {
      double dm = 0.0;
      for (int64_t j = 1; j <= k; ++j) dm += s2[k * (K + 1) + j] * d2raw[(j - 1) * P * P + pq];
      d2moments[(k - 1) * P * P + pq] = dm;
    }
  }
  return MomentStatus::kFinite;
}

}  // namespace ptdcore
