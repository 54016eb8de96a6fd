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
// Jacobians by forward mode: M dx_k = r o dx_{k-1} - dM x_k, where
// (dM_p x)_i = dout_{i,p} x_i - sum_{e: i->j} g_{e,p} x_j.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "ptdcore/linear_solver.hpp"
#include "ptdcore/numeric_graph.hpp"

namespace ptdcore {

namespace detail {

// y += dM_p x for parameter p.
inline void add_dM_times(const NumericGraph& g, int64_t p, const double* x, double* y) {
  const int64_t n = g.n, P = g.P;
  for (int64_t i = 0; i < n; ++i) y[i] += g.dout[i * P + p] * x[i];
  for (int64_t e = 0; e < g.nr_edges(); ++e) y[g.src[e]] -= g.g[e * P + p] * x[g.dst[e]];
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
  for (int64_t k = 1; k <= K; ++k) {
    scaled(x.data() + (k - 1) * n);
    solver.solve(b.data(), x.data() + k * n);
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
