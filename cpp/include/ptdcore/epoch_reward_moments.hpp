// ptdcore engine: moments of rewards over epochs: the means and cross
// moments of a reward matrix, and E[Y^k] of one reward (also the block-chain
// route of E[T^k] where solves would lose digits). The maths: epochs.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ptdcore/epoch_moments.hpp"
#include "ptdcore/epoch_state.hpp"
#include "ptdcore/linear_solver.hpp"
#include "ptdcore/moments.hpp"

namespace ptdcore {

// The chain of `blocks` copies of g in which copy l moves to copy l + 1 at rate
// r(k) from state k (r = rewards[k * stride]): the generator with S on the
// diagonal blocks and diag(r) above them, along which [v, u_1, ...] evolve
// (u_l(t) = E[Y(t)^l / l!; X_t]). Not a sub-generator: only the series runs it.
// The caller sets alpha and dalpha.
inline void reward_chain(const NumericGraph& g, const double* rewards, int64_t stride,
                         int64_t blocks, NumericGraph& aug) {
  const int64_t n = g.n, P = g.P;
  aug.n = blocks * n;
  aug.P = P;
  aug.with_grad = g.with_grad;
  aug.src.clear();
  aug.dst.clear();
  aug.w.clear();
  aug.g.clear();
  aug.out.clear();
  aug.exit.clear();
  aug.dout.clear();
  aug.dexit.clear();
  for (int64_t copy = 0; copy < blocks; ++copy) {
    for (int64_t e = 0; e < g.nr_edges(); ++e) {
      aug.src.push_back(g.src[e] + copy * n);
      aug.dst.push_back(g.dst[e] + copy * n);
      aug.w.push_back(g.w[e]);
      if (g.with_grad) aug.g.insert(aug.g.end(), g.g.begin() + e * P, g.g.begin() + (e + 1) * P);
    }
    if (copy + 1 < blocks)
      for (int64_t k = 0; k < n; ++k)
        if (rewards[k * stride] > 0.0) {
          aug.src.push_back(k + copy * n);
          aug.dst.push_back(k + (copy + 1) * n);
          aug.w.push_back(rewards[k * stride]);
          if (g.with_grad) aug.g.insert(aug.g.end(), P, 0.0);
        }
    aug.out.insert(aug.out.end(), g.out.begin(), g.out.end());
    aug.exit.insert(aug.exit.end(), g.exit.begin(), g.exit.end());
    aug.dout.insert(aug.dout.end(), g.dout.begin(), g.dout.end());
    aug.dexit.insert(aug.dexit.end(), g.dexit.begin(), g.dexit.end());
  }
}

namespace detail {

// The series with accumulators: `aug` (a chain of N states, already built) gains
// N accumulators fed from its states and is carried over D from z (N) with
// tangents dz (N x P, state-major; null: no tangents). Out: zend = z(D) and dzend
// (N x P, state-major), W = int_0^D z dt (N) and dW in blocks of n states,
// parameter-major within each block: dW[(l P + p) n + i] for state l n + i.
// full and dfull are scratch.
inline void series_with_integral(NumericGraph& aug, int64_t n, const double* z, const double* dz,
                                 double D, SeriesBuffers& series, std::vector<double>& full,
                                 std::vector<double>& dfull, double* zend, double* dzend,
                                 double* W, double* dW) {
  const int64_t N = aug.n, P = aug.P, Pj = dz ? P : 0;
  add_accumulators(aug, N);
  aug.alpha.assign(2 * N, 0.0);
  std::copy(z, z + N, aug.alpha.begin());
  aug.dalpha.assign(2 * N * Pj, 0.0);
  std::copy(dz, dz + N * Pj, aug.dalpha.begin());
  full.resize(2 * N);
  dfull.resize(2 * N * Pj);
  series_state(aug, false, D, full.data(), dz ? dfull.data() : nullptr, series);
  std::copy(full.begin(), full.begin() + N, zend);
  std::copy(full.begin() + N, full.end(), W);
  if (!dz) return;
  std::copy(dfull.begin(), dfull.begin() + N * P, dzend);
  for (int64_t l = 0; l < N / n; ++l)  // (state, parameter) rows to parameter-major
    for (int64_t p = 0; p < P; ++p)
      for (int64_t i = 0; i < n; ++i)
        dW[(l * P + p) * n + i] = dfull[(N + l * n + i) * P + p];
}

// Starts g at buf.pi (with its tangents) and, unless the epoch is the open last
// one, puts the state at its end (after D) in buf.next.
inline void cross_epoch(NumericGraph& g, bool last, double D, bool jac, EpochBuffers& buf,
                        SeriesBuffers& series, SquaringBuffers& squaring, NumericGraph& compact) {
  const int64_t n = g.n, Pj = jac ? g.P : 0;
  g.alpha = buf.pi;
  g.dalpha = buf.dpi;
  if (last) return;
  buf.next.resize(n);
  buf.dnext.assign(n * Pj, 0.0);
  state_at_active(g, D, buf.next.data(), jac ? buf.dnext.data() : nullptr, series, squaring,
                  compact);
}

// The epoch's occupancy q = (v(a) - v(b)) U (v(b) = 0 for the open last epoch) and
// its tangents dq (P x n), g factorised in `solver`; diff, ddiff and c are scratch.
inline void epoch_occupancy(const NumericGraph& g, BlockSolver& solver, const EpochBuffers& buf,
                            bool last, int64_t Pj, double* q, double* dq, double* diff,
                            double* ddiff, std::vector<double>& c) {
  const int64_t n = g.n, P = g.P;
  for (int64_t k = 0; k < n; ++k) diff[k] = buf.pi[k] - (last ? 0.0 : buf.next[k]);
  solver.solve_transposed(diff, q);
  for (int64_t p = 0; p < Pj; ++p)
    for (int64_t k = 0; k < n; ++k)
      ddiff[p * n + k] = buf.dpi[k * P + p] - (last ? 0.0 : buf.dnext[k * P + p]);
  solve_transposed_tangents(g, solver, q, ddiff, dq, Pj, c);
}

// Crosses a finite epoch whose generator cannot be factorised (a class closed in
// this epoch only) without solves: the series on g with accumulators gives the
// state at its end (buf.next, buf.dnext) and the occupancy q = int v dt with its
// tangents dq (P x n) at once. An epoch in which no state moves keeps v = pi.
inline void integrate_occupancy(const NumericGraph& g, double D, bool jac, EpochBuffers& buf,
                                SeriesBuffers& series, NumericGraph& aug, double* q,
                                double* dq) {
  const int64_t n = g.n, P = g.P, Pj = jac ? P : 0;
  buf.next.resize(n);
  buf.dnext.assign(n * Pj, 0.0);
  if (!(max_out_rate(g) * D > 0.0)) {
    std::copy(buf.pi.begin(), buf.pi.end(), buf.next.begin());
    if (jac) std::copy(buf.dpi.begin(), buf.dpi.end(), buf.dnext.begin());
    for (int64_t k = 0; k < n; ++k) q[k] = buf.pi[k] * D;
    for (int64_t p = 0; p < Pj; ++p)
      for (int64_t k = 0; k < n; ++k) dq[p * n + k] = buf.dpi[k * P + p] * D;
    return;
  }
  reward_chain(g, nullptr, 0, 1, aug);
  std::vector<double> full, dfull;
  series_with_integral(aug, n, buf.pi.data(), jac ? buf.dpi.data() : nullptr, D, series, full,
                       dfull, buf.next.data(), buf.dnext.data(), q, dq);
}

// The epoch's occupancy q = int v dt (P x n tangents dq) and, unless it is the open
// last epoch, the state at its end (buf.next): by solves where g factorises (then
// *solved = true), else, a class being closed in this finite epoch only, by the
// series with accumulators, unless `series_by_caller` (the cross moments: their
// reward columns' series carry v, integrate_rewards). False where the open last
// epoch cannot be factorised (mass trapped for ever). diff, ddiff and c are scratch.
inline bool occupancy(NumericGraph& g, const SccTopology& topo, BlockSolver& solver, bool last,
                      double D, bool jac, EpochBuffers& buf, SeriesBuffers& series,
                      SquaringBuffers& squaring, NumericGraph& aug, double* q, double* dq,
                      double* diff, double* ddiff, std::vector<double>& c, bool* solved,
                      bool series_by_caller = false) {
  *solved = solver.factorise(topo, g) == MomentStatus::kFinite;
  if (!*solved && last) return false;
  if (*solved) {
    cross_epoch(g, last, D, jac, buf, series, squaring, aug);
    epoch_occupancy(g, solver, buf, last, jac ? g.P : 0, q, dq, diff, ddiff, c);
  } else if (!series_by_caller) {
    integrate_occupancy(g, D, jac, buf, series, aug, q, dq);
  }
  return true;
}

// The same for reward column r (stride apart) of the cross moments in a finite
// epoch that cannot be factorised: the series on [v, u] (reward_chain) with
// accumulators gives u at the epoch's end and y = int u dt, with tangents (y: P x n),
// and, where q is given, v's: the state at the end (buf.next) and q = int v dt (dq:
// P x n), so that no series runs for v alone. With no state moving, u grows as
// u(a) + t v o r, so y = D u(a) + D^2 / 2 v o r.
inline void integrate_rewards(const NumericGraph& g, const double* r, int64_t stride, double D,
                              bool jac, EpochBuffers& buf, const std::vector<double>& u,
                              const std::vector<double>& du, SeriesBuffers& series,
                              NumericGraph& aug, std::vector<double>& full,
                              std::vector<double>& dfull, std::vector<double>& u_end,
                              std::vector<double>& du_end, double* y, double* dy, double* q,
                              double* dq) {
  const int64_t n = g.n, P = g.P, Pj = jac ? P : 0;
  if (!(max_out_rate(g) * D > 0.0)) {
    for (int64_t k = 0; k < n; ++k) {
      u_end[k] = u[k] + D * buf.pi[k] * r[k * stride];
      y[k] = D * u[k] + 0.5 * D * D * buf.pi[k] * r[k * stride];
      for (int64_t p = 0; p < Pj; ++p) {
        du_end[k * P + p] = du[k * P + p] + D * buf.dpi[k * P + p] * r[k * stride];
        dy[p * n + k] = D * du[k * P + p] + 0.5 * D * D * buf.dpi[k * P + p] * r[k * stride];
      }
    }
    if (q) integrate_occupancy(g, D, jac, buf, series, aug, q, dq);  // (v = pi: no series)
    return;
  }
  reward_chain(g, r, stride, 2, aug);
  std::vector<double> z(buf.pi), dz(buf.dpi), zend(2 * n), dzend(2 * n * Pj), W(2 * n),
      dW(2 * n * Pj);
  z.insert(z.end(), u.begin(), u.end());
  dz.insert(dz.end(), du.begin(), du.end());
  series_with_integral(aug, n, z.data(), jac ? dz.data() : nullptr, D, series, full, dfull,
                       zend.data(), dzend.data(), W.data(), dW.data());
  std::copy(zend.begin() + n, zend.end(), u_end.begin());
  std::copy(W.begin() + n, W.end(), y);
  if (jac) {
    std::copy(dzend.begin() + n * P, dzend.end(), du_end.begin());
    std::copy(dW.begin() + n * P, dW.end(), dy);  // block 1: int u dt
  }
  if (!q) return;
  buf.next.assign(zend.begin(), zend.begin() + n);
  std::copy(W.begin(), W.begin() + n, q);
  buf.dnext.assign(dzend.begin(), dzend.begin() + n * Pj);
  std::copy(dW.begin(), dW.begin() + n * Pj, dq);  // block 0: int v dt
}

// Adds the epoch's means q . r_j (R: n x m) and their derivatives to out (m) and
// dout (m x P): dq . r_j, and in the break columns the integrand at the start (-)
// and the end (+) of the epoch (b < 0: no such break).
inline void add_epoch_means(const double* R, int64_t m, int64_t n, int64_t P, int64_t Pj,
                            const EpochBuffers& buf, bool last, const double* q,
                            const double* dq, int64_t b_start, int64_t b_end, double* out,
                            double* dout) {
  for (int64_t j = 0; j < m; ++j) {
    for (int64_t k = 0; k < n; ++k) out[j] += q[k] * R[k * m + j];
    for (int64_t p = 0; p < Pj; ++p)
      for (int64_t k = 0; k < n; ++k) dout[j * P + p] += dq[p * n + k] * R[k * m + j];
    if (Pj) {
      double at_start = 0.0, at_end = 0.0;
      for (int64_t k = 0; k < n; ++k) {
        at_start += buf.pi[k] * R[k * m + j];
        if (!last) at_end += buf.next[k] * R[k * m + j];
      }
      if (b_start >= 0) dout[j * P + b_start] -= at_start;
      if (b_end >= 0) dout[j * P + b_end] += at_end;
    }
  }
}

}  // namespace detail

// Reward moments over epochs (a reward matrix, rewards n x m). With
// v(t) the state vector and u_i(t) = E[Y_i(t); X_t = .] the reward accumulated
// so far, [v, u_i] evolves by A_i = [[S, D_i], [0, S]] (D_i = diag(r_i)), and
//     E[Y_j] = int v . r_j dt,   E[Y_i Y_j] = C_ij + C_ji,  C_ij = int u_i . r_j dt.
// Over an epoch, with q = int v dt = (v(a) - v(b)) U and
// y_i = int u_i dt = (q o r_i + u_i(a) - u_i(b)) U (transposed solves),
//     int v . r_j = q . r_j,   C_ij = y_i . r_j
// (the open last epoch: v(b) = u_i(b) = 0). [v, u_i] crosses an epoch by the
// series on the 2n-state augmented graph (not the ladder: A_i is not a
// sub-generator). A finite epoch that cannot be factorised (a class closed in
// it only) gets q and y_i from the series with accumulators instead; only a
// closed class in the open last epoch gives NaN. Break columns as for the
// density: starting tangents [v, u_i] (S_before - S_after), and each
// integral's shift (-integrand at the start) and end (+integrand at the end).
// out: mean (m), cross (m x m); dout: (m + m^2) x P.
inline void evaluate_epoch_reward_moments(const Structure& s, const SccTopology& topo,
                                          const double* row, double* out, double* dout,
                                          EpochBuffers& buf, SeriesBuffers& series,
                                          SquaringBuffers& squaring, BlockSolver& solver) {
  const int64_t E = s.epochs, Pb = s.base_params(), P = s.nr_params, n = s.nr_states;
  const int64_t m = s.reward_columns(), K = m + m * m;
  const bool jac = dout != nullptr;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double* R = s.rewards.data();
  auto fail = [&]() {
    std::fill(out, out + K, nan);
    if (jac) std::fill(dout, dout + K * P, nan);
  };
  if (m == 0) return;
  const double* breaks = row + E * Pb;
  if (!epoch_graphs(s, row, jac, buf)) return fail();
  const int64_t Pj = jac ? P : 0;
  std::fill(out, out + K, 0.0);
  if (jac) std::fill(dout, dout + K * P, 0.0);
  // z[i] = [v, u_i] with tangents (2n x P, row-major as dalpha); v kept apart too.
  std::vector<std::vector<double>> u(m, std::vector<double>(n, 0.0)), du(m),
      u_end(m, std::vector<double>(n)), du_end(m);
  for (int64_t i = 0; i < m; ++i) du[i].assign(n * Pj, 0.0), du_end[i].assign(n * Pj, 0.0);
  buf.pi.assign(s.alpha.begin(), s.alpha.end());
  buf.dpi.assign(n * Pj, 0.0);
  std::vector<double> q(n), dq(Pj * n), diff(n), ddiff(Pj * n), c(n), a(n), da(Pj * n);
  std::vector<double> Y(m * n), dY(m * Pj * n);  // y_i = int u_i dt over the epoch (P x n)
  NumericGraph aug;
  std::vector<double> zend(2 * n), dzend(2 * n * Pj), full(4 * n), dfull(4 * n * Pj);
  for (int64_t e = 0; e < E; ++e) {
    NumericGraph& g = buf.graphs[e];
    const bool last = e + 1 == E;
    const double D = last ? 0.0 : breaks[e] - (e ? breaks[e - 1] : 0.0);
    bool solvable = false;
    if (!detail::occupancy(g, topo, solver, last, D, jac, buf, series, squaring, aug, q.data(),
                           dq.data(), diff.data(), ddiff.data(), c, &solvable,
                           /*series_by_caller=*/true))
      return fail();
    if (solvable) {
      // the ends of every u_i, then y_i = (q o r_i + u_i(a) - u_i(b)) U, as
      // u_i' = u_i S + v o r_i
      for (int64_t i = 0; i < m && !last; ++i) {
        reward_chain(g, R + i, m, 2, aug);
        aug.alpha = buf.pi;
        aug.alpha.insert(aug.alpha.end(), u[i].begin(), u[i].end());
        aug.dalpha = buf.dpi;
        aug.dalpha.insert(aug.dalpha.end(), du[i].begin(), du[i].end());
        series_state(aug, false, D, zend.data(), jac ? dzend.data() : nullptr, series);
        std::copy(zend.begin() + n, zend.end(), u_end[i].begin());
        if (jac) std::copy(dzend.begin() + n * P, dzend.end(), du_end[i].begin());
      }
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t k = 0; k < n; ++k)
          a[k] = q[k] * R[k * m + i] + u[i][k] - (last ? 0.0 : u_end[i][k]);
        for (int64_t p = 0; p < Pj; ++p)
          for (int64_t k = 0; k < n; ++k)
            da[p * n + k] = dq[p * n + k] * R[k * m + i] + du[i][k * P + p] -
                            (last ? 0.0 : du_end[i][k * P + p]);
        solver.solve_transposed(a.data(), Y.data() + i * n);
        detail::solve_transposed_tangents(g, solver, Y.data() + i * n, da.data(),
                                          dY.data() + i * Pj * n, Pj, c);
      }
    } else {  // a class closed in this epoch only: the series with accumulators
      for (int64_t i = 0; i < m; ++i)  // (column 0 also carries v: q and the end state)
        detail::integrate_rewards(g, R + i, m, D, jac, buf, u[i], du[i], series, aug, full,
                                  dfull, u_end[i], du_end[i], Y.data() + i * n,
                                  dY.data() + i * Pj * n, i ? nullptr : q.data(),
                                  i ? nullptr : dq.data());
    }
    // this epoch's integrals: the means q . r_j, then C_ij = y_i . r_j
    const int64_t b_start = e > 0 ? E * Pb + e - 1 : -1, b_end = last ? -1 : E * Pb + e;
    detail::add_epoch_means(R, m, n, P, Pj, buf, last, q.data(), dq.data(), b_start, b_end, out,
                            dout);
    for (int64_t i = 0; i < m; ++i) {
      const double* yi = Y.data() + i * n;
      const double* dyi = dY.data() + i * Pj * n;
      for (int64_t j = 0; j < m; ++j) {
        double Cij = 0.0;
        for (int64_t k = 0; k < n; ++k) Cij += yi[k] * R[k * m + j];
        out[m + i * m + j] += Cij;
        out[m + j * m + i] += Cij;
        for (int64_t p = 0; p < Pj; ++p) {
          double d = 0.0;
          for (int64_t k = 0; k < n; ++k) d += dyi[p * n + k] * R[k * m + j];
          dout[(m + i * m + j) * P + p] += d;
          dout[(m + j * m + i) * P + p] += d;
        }
        if (jac) {  // C_ij's integrand u_i . r_j at the start and the end
          double at_start = 0.0, at_end = 0.0;
          for (int64_t k = 0; k < n; ++k) {
            at_start += u[i][k] * R[k * m + j];
            if (!last) at_end += u_end[i][k] * R[k * m + j];
          }
          for (double* d : {dout + (m + i * m + j) * P, dout + (m + j * m + i) * P}) {
            if (b_start >= 0) d[b_start] -= at_start;
            if (b_end >= 0) d[b_end] += at_end;
          }
        }
      }
    }
    if (last) break;
    // the break: starting tangents [v, u_i] (S_e - S_{e+1}) in column b_e
    if (jac) {
      const NumericGraph& h = buf.graphs[e + 1];
      detail::add_generator_difference(g, h, buf.next.data(), buf.dnext.data() + b_end, P);
      for (int64_t i = 0; i < m; ++i)
        detail::add_generator_difference(g, h, u_end[i].data(), du_end[i].data() + b_end, P);
    }
    buf.pi.swap(buf.next);
    buf.dpi.swap(buf.dnext);
    for (int64_t i = 0; i < m; ++i) u[i].swap(u_end[i]), du[i].swap(du_end[i]);
  }
}

// The means alone of a reward matrix over epochs (rewards n x m): E[Y_j] is the
// sum over epochs of int v . r_j dt = q . r_j, q = (v(a) - v(b)) U (one transposed
// solve per epoch; the open last epoch has v(b) = 0), without the augmented chains
// of the cross moments. v crosses an epoch by state_at (the ladder or the series).
// Break columns as for the full layout: the integrand at the start (-) and the end
// (+), and the starting tangents v (S_before - S_after). out: m; dout: m x P. A
// finite epoch that cannot be factorised is integrated by the series (as the full
// layout); NaN only where the open last epoch cannot be.
inline void evaluate_epoch_reward_means(const Structure& s, const SccTopology& topo,
                                        const double* row, double* out, double* dout,
                                        EpochBuffers& buf, SeriesBuffers& series,
                                        SquaringBuffers& squaring, BlockSolver& solver) {
  const int64_t E = s.epochs, Pb = s.base_params(), P = s.nr_params, n = s.nr_states;
  const int64_t m = s.reward_columns();
  const bool jac = dout != nullptr;
  const int64_t Pj = jac ? P : 0;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double* R = s.rewards.data();
  auto fail = [&]() {
    std::fill(out, out + m, nan);
    if (jac) std::fill(dout, dout + m * P, nan);
  };
  const double* breaks = row + E * Pb;
  if (!epoch_graphs(s, row, jac, buf)) return fail();
  std::fill(out, out + m, 0.0);
  if (jac) std::fill(dout, dout + m * P, 0.0);
  buf.pi.assign(s.alpha.begin(), s.alpha.end());
  buf.dpi.assign(n * Pj, 0.0);
  std::vector<double> q(n), dq(Pj * n), diff(n), ddiff(Pj * n), c(n);
  NumericGraph aug;
  for (int64_t e = 0; e < E; ++e) {
    NumericGraph& g = buf.graphs[e];
    const bool last = e + 1 == E;
    const double D = last ? 0.0 : breaks[e] - (e ? breaks[e - 1] : 0.0);
    bool solvable = false;
    if (!detail::occupancy(g, topo, solver, last, D, jac, buf, series, squaring, aug, q.data(),
                           dq.data(), diff.data(), ddiff.data(), c, &solvable))
      return fail();
    const int64_t b_start = e > 0 ? E * Pb + e - 1 : -1, b_end = last ? -1 : E * Pb + e;
    detail::add_epoch_means(R, m, n, P, Pj, buf, last, q.data(), dq.data(), b_start, b_end, out,
                            dout);
    if (last) break;
    if (jac)  // the break: starting tangents v (S_e - S_{e+1}) in column b_e
      detail::add_generator_difference(g, buf.graphs[e + 1], buf.next.data(),
                                       buf.dnext.data() + b_end, P);
    buf.pi.swap(buf.next);
    buf.dpi.swap(buf.dnext);
  }
}

// E[Y^k], k = 1..K, of one reward vector over epochs: z = [v, u_1 .. u_{K-1}]
// crosses each epoch along reward_chain(K blocks), and over an epoch
//     int z dt = (z(a) - z(b)) (-A)^{-1}:  w_0 = dz_0 U,  w_l = (dz_l + w_{l-1} o r) U,
// so E[Y^k] = k! sum_epochs w_{k-1} . r (transposed solves; the last epoch has
// z(b) = 0). Break columns as in evaluate_epoch_reward_moments. Time-valued
// outputs (the density of Y) are not computed here (NaN).
//
// A finite epoch whose generator cannot be factorised (a class that is closed
// in that epoch only) is integrated without a solve: accumulator blocks W_l,
// fed at rate 1 from the blocks z_l and never left, ride along in the series,
// so that W(D) = int z dt. Only a closed class in the open-ended last epoch
// makes the moments infinite (then `infinite_value`: inf for T, NaN for a
// reward that may stay finite). `rewards`: one value per state. With
// `integrate_short_epochs` (the route evaluate_epochs takes when its solves
// would lose digits) every finite epoch with lambda D <= kEpochSeriesMaxRateTime
// is integrated this way too.
inline void evaluate_epoch_reward_power_moments(const Structure& s, const SccTopology& topo,
                                                const double* row, int64_t K, double* out,
                                                double* dout, EpochBuffers& buf,
                                                SeriesBuffers& series, BlockSolver& solver,
                                                const double* rewards, double infinite_value,
                                                bool integrate_short_epochs) {
  const int64_t E = s.epochs, Pb = s.base_params(), P = s.nr_params, n = s.nr_states;
  const bool jac = dout != nullptr;
  const int64_t Pj = jac ? P : 0;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double* r = rewards;
  auto fail = [&]() {
    std::fill(out, out + K, nan);
    if (jac) std::fill(dout, dout + K * P, nan);
  };
  if (K <= 0) return;
  const double* breaks = row + E * Pb;
  if (!epoch_graphs(s, row, jac, buf)) return fail();
  std::fill(out, out + K, 0.0);
  if (jac) std::fill(dout, dout + K * P, 0.0);
  const int64_t N = K * n;
  std::vector<double> z(N, 0.0), dz(N * Pj, 0.0), zend(N, 0.0), dzend(N * Pj, 0.0);
  std::copy(s.alpha.begin(), s.alpha.end(), z.begin());
  std::vector<double> w(N), dw(N * Pj), rhs(n), drhs(Pj * n), c(n);  // w: K x n; dw: (K x P) x n
  NumericGraph aug;
  double factorial = 1.0;
  std::vector<double> fact(K + 1, 1.0);
  for (int64_t k = 1; k <= K; ++k) fact[k] = factorial *= static_cast<double>(k);
  std::vector<double> full, dfull;  // [z, W] of the accumulator fallback
  for (int64_t e = 0; e < E; ++e) {
    NumericGraph& g = buf.graphs[e];
    const bool last = e + 1 == E;
    const bool solvable = solver.factorise(topo, g) == MomentStatus::kFinite;
    if (!solvable && last) {  // mass trapped for ever: infinite (T) or not computed (Y)
      fail();
      std::fill(out, out + K, infinite_value);
      return;
    }
    const double D = last ? 0.0 : breaks[e] - (e ? breaks[e - 1] : 0.0);
    // The solves' integral (z(a) - z(b)) (-A)^{-1} is a difference of nearly
    // equal terms when little happens in the epoch (E[T^4] lost 9 digits on a
    // short, slow epoch); the series' accumulators add non-negative terms only.
    // Asked for, short epochs take them; the solves stay where the series would
    // be long.
    const bool integrate =
        !last && (!solvable || (integrate_short_epochs &&
                                max_out_rate(g) * D <= kEpochSeriesMaxRateTime));
    if (!last) {
      reward_chain(g, r, 1, K, aug);
      if (!integrate) {
        aug.alpha = z;
        aug.dalpha = dz;
        series_state(aug, false, D, zend.data(), jac ? dzend.data() : nullptr, series);
      } else {
        detail::series_with_integral(aug, n, z.data(), jac ? dz.data() : nullptr, D, series,
                                     full, dfull, zend.data(), dzend.data(), w.data(),
                                     dw.data());  // W_l = int z_l dt
      }
    } else {
      std::fill(zend.begin(), zend.end(), 0.0);
      std::fill(dzend.begin(), dzend.end(), 0.0);
    }
    for (int64_t l = 0; l < K && !integrate; ++l) {
      for (int64_t i = 0; i < n; ++i)
        rhs[i] = z[l * n + i] - zend[l * n + i] + (l ? w[(l - 1) * n + i] * r[i] : 0.0);
      solver.solve_transposed(rhs.data(), w.data() + l * n);
      for (int64_t p = 0; p < Pj; ++p)
        for (int64_t i = 0; i < n; ++i)
          drhs[p * n + i] = dz[(l * n + i) * P + p] - dzend[(l * n + i) * P + p] +
                            (l ? dw[((l - 1) * Pj + p) * n + i] * r[i] : 0.0);
      detail::solve_transposed_tangents(g, solver, w.data() + l * n, drhs.data(),
                                        dw.data() + l * Pj * n, Pj, c);
    }
    const int64_t b_start = e > 0 ? E * Pb + e - 1 : -1, b_end = last ? -1 : E * Pb + e;
    for (int64_t k = 1; k <= K; ++k) {
      const int64_t l = k - 1;
      double value = 0.0, at_start = 0.0, at_end = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        value += w[l * n + i] * r[i];
        at_start += z[l * n + i] * r[i];
        at_end += zend[l * n + i] * r[i];
      }
      out[k - 1] += fact[k] * value;
      for (int64_t p = 0; p < Pj; ++p) {
        double d = 0.0;
        for (int64_t i = 0; i < n; ++i) d += dw[(l * Pj + p) * n + i] * r[i];
        dout[(k - 1) * P + p] += fact[k] * d;
      }
      if (jac && b_start >= 0) dout[(k - 1) * P + b_start] -= fact[k] * at_start;
      if (jac && b_end >= 0) dout[(k - 1) * P + b_end] += fact[k] * at_end;
    }
    if (last) break;
    if (jac) {  // the break: starting tangents z_l (S_e - S_{e+1}) for every block
      const NumericGraph& h = buf.graphs[e + 1];
      for (int64_t l = 0; l < K; ++l)
        detail::add_generator_difference(g, h, zend.data() + l * n,
                                         dzend.data() + l * n * P + b_end, P);
    }
    z.swap(zend);
    dz.swap(dzend);
  }
}

}  // namespace ptdcore
