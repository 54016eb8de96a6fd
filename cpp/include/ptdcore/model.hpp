// ptdcore engine: the prepared model (one theta row at a time).
//
// PreparedModel is built once per structure (validation, components, edge
// lists) and is immutable afterwards, so any number of threads may evaluate
// it at once. Each evaluation works in its own Workspace.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "ptdcore/epochs.hpp"
#include "ptdcore/method.hpp"
#include "ptdcore/float_env.hpp"
#include "ptdcore/levels.hpp"
#include "ptdcore/linear_solver.hpp"
#include "ptdcore/moments.hpp"
#include "ptdcore/numeric_graph.hpp"
#include "ptdcore/reward_moments.hpp"
#include "ptdcore/reward_transform.hpp"
#include "ptdcore/structure.hpp"

namespace ptdcore {

// Output buffers of one batch, row-major; the Jacobian (Hessian) pointers are
// null when no Jacobian (Hessian) is wanted. Shapes: pmf (B, T), moments (B, K),
// dpmf (B, T, P), dmoments (B, K, P), d2pmf (B, T, P, P), d2moments (B, K, P, P);
// `what` is the functional the pmf buffers receive at the times.
struct Outputs {
  double* pmf = nullptr;
  double* moments = nullptr;
  double* dpmf = nullptr;
  double* dmoments = nullptr;
  double* d2pmf = nullptr;
  double* d2moments = nullptr;
  Output what = Output::kDensity;
  bool jacobian() const { return dpmf != nullptr && dmoments != nullptr; }
  bool hessian() const { return jacobian() && d2pmf != nullptr && d2moments != nullptr; }
  // The outputs of batch row b (the one place that knows the row offsets).
  Outputs row(int64_t b, int64_t T, int64_t K, int64_t P) const {
    const bool jac = jacobian(), hes = hessian();
    return Outputs{pmf + b * T,
                   moments + b * K,
                   jac ? dpmf + b * T * P : nullptr,
                   jac ? dmoments + b * K * P : nullptr,
                   hes ? d2pmf + b * T * P * P : nullptr,
                   hes ? d2moments + b * K * P * P : nullptr,
                   what};
  }
};

struct Workspace {
  NumericGraph graph;
  NumericGraph transformed;
  BlockSolver solver;
  SeriesBuffers series;
  SquaringBuffers squaring;
  RewardMomentBuffers reward_moments;
  EpochBuffers epochs;
  std::vector<double> datom, packed;
  std::vector<double> full, dfull, d2full;  // a reward matrix's full layout (means cut)
};

class PreparedModel {
 public:
  explicit PreparedModel(Structure s) : s_(std::move(s)) {
    validate(s_);
    std::vector<int64_t> src, dst;
    for (int64_t e = 0; e < s_.nr_edges(); ++e) {
      if (s_.dst[e] < 0 || s_.dst[e] == s_.src[e]) continue;
      src.push_back(s_.src[e]);
      dst.push_back(s_.dst[e]);
    }
    topo_ = build_topology(s_.nr_states, src, dst);
    levels_ = detect_levels(s_, topo_, dst);
    route_ = route_of(s_);
  }

  const Structure& structure() const { return s_; }
  int64_t nr_states() const { return s_.nr_states; }
  int64_t nr_params() const { return s_.nr_params; }
  bool acyclic() const { return topo_.acyclic(); }
  // True when the level shortcut (levels.hpp) computes the density.
  bool level_structured() const { return levels_.usable; }

  // One theta (P values); outputs for that row (`what` at the T times, moments
  // K, and the Jacobians, or Jacobians and Hessians, when requested). The one
  // dispatch: the route is the structure's (route_), the derivative order the
  // caller's.
  void evaluate_row(const double* theta, const double* times, int64_t T, int64_t K, Output what,
                    double* pmf, double* moments, double* dpmf, double* dmoments, Workspace& ws,
                    double* d2pmf = nullptr, double* d2moments = nullptr) const {
    const ScopedFlushSubnormals flush_subnormals;
    const bool jac = dpmf != nullptr && dmoments != nullptr;
    const bool hes = jac && d2pmf != nullptr && d2moments != nullptr;
    if (!jac) dpmf = dmoments = nullptr;
    if (!hes) d2pmf = d2moments = nullptr;
    const bool epochs = route_ != Route::kHomogeneous && route_ != Route::kRewardMatrix;
    if (epochs && hes) {  // epochs: first derivatives only
      fill_nan(T, pmf, dpmf, d2pmf);
      fill_nan(K, moments, dmoments, d2moments);
      return;
    }
    if (route_ == Route::kEpochRewardMatrix || route_ == Route::kEpochRewardPowers)
      fill_nan(T, pmf, dpmf, nullptr);  // (rewards over epochs: no times)
    switch (route_) {
      case Route::kEpochRewardMatrix:
        if (K == reward_matrix_size()) {
          evaluate_epoch_reward_moments(s_, topo_, theta, moments, dmoments, ws.epochs, ws.series,
                                        ws.squaring, ws.solver);
        } else if (K == s_.reward_columns()) {  // the means alone: no augmented chains
          evaluate_epoch_reward_means(s_, topo_, theta, moments, dmoments, ws.epochs, ws.series,
                                      ws.squaring, ws.solver);
        } else {
          fill_nan(K, moments, dmoments, nullptr);
        }
        return;
      case Route::kEpochRewardPowers:  // moments of Y only
        evaluate_epoch_reward_power_moments(s_, topo_, theta, K, moments, dmoments, ws.epochs,
                                            ws.series, ws.solver, s_.rewards.data(),
                                            std::numeric_limits<double>::quiet_NaN(), false);
        return;
      case Route::kEpochs:
        evaluate_epochs(s_, topo_, theta, times, T, K, what, pmf, moments, dpmf, dmoments,
                        ws.epochs, ws.series, ws.squaring, ws.solver);
        return;
      case Route::kRewardMatrix:
      case Route::kHomogeneous:
        break;
    }
    if (!build_numeric_graph(s_, theta, jac, ws.graph)) {  // invalid theta: the whole row
      fill_nan(T, pmf, dpmf, d2pmf);
      fill_nan(K, moments, dmoments, d2moments);
      return;
    }
    if (route_ == Route::kRewardMatrix) {
      evaluate_reward_moments(T, K, pmf, moments, dpmf, dmoments, d2pmf, d2moments, ws);
      return;
    }
    // Moments and the functional are independent: a failure of one leaves the other.
    const double* rewards = s_.has_rewards() ? s_.rewards.data() : nullptr;
    const MomentStatus status = compute_moments(topo_, ws.graph, rewards, s_.discrete, K, moments,
                                                dmoments, ws.solver, d2moments);
    if (status != MomentStatus::kFinite) fill_missing_moments(K, moments, dmoments, d2moments);
    if (T == 0) return;
    if (hes)
      evaluate_functional_hessian(times, T, what, pmf, dpmf, d2pmf, ws);
    else
      evaluate_functional(times, T, what, pmf, dpmf, ws);
  }

  // Rows [begin, end) of a batch.
  void evaluate_rows(const double* theta, int64_t begin, int64_t end, const double* times, int64_t T,
                     int64_t K, const Outputs& out, Workspace& ws) const {
    const int64_t P = s_.nr_params;
    for (int64_t b = begin; b < end; ++b) {
      const Outputs o = out.row(b, T, K, P);
      evaluate_row(theta + b * P, times, T, K, o.what, o.pmf, o.moments, o.dpmf, o.dmoments, ws,
                   o.d2pmf, o.d2moments);
    }
  }

 private:
  // What a row evaluates, from the structure alone (decided once).
  enum class Route {
    kHomogeneous,        // density/cdf/sf and moments of T (or of Y, one reward vector)
    kRewardMatrix,       // means and cross moments of the reward columns
    kEpochs,             // density/cdf/sf and moments of T over epochs
    kEpochRewardPowers,  // moments of Y over epochs
    kEpochRewardMatrix,  // means and cross moments of the reward columns over epochs
  };

  static Route route_of(const Structure& s) {
    if (s.epochs > 1)
      return s.reward_matrix   ? Route::kEpochRewardMatrix
             : s.has_rewards() ? Route::kEpochRewardPowers
                               : Route::kEpochs;
    return s.reward_matrix ? Route::kRewardMatrix : Route::kHomogeneous;
  }

  // K of a reward-matrix row: m means and m^2 cross moments.
  int64_t reward_matrix_size() const {
    const int64_t m = s_.reward_columns();
    return m + m * m;
  }

  // A reward matrix: no times (any given get NaN); moments holds the means and
  // cross moments of the m reward columns, K = m + m^2, or the means alone, K =
  // m (one transposed solve; with second derivatives, the full layout cut);
  // another K gets NaN: the caller asked for a different layout.
  void evaluate_reward_moments(int64_t T, int64_t K, double* pmf, double* moments, double* dpmf,
                               double* dmoments, double* d2pmf, double* d2moments,
                               Workspace& ws) const {
    fill_nan(T, pmf, dpmf, d2pmf);
    const int64_t m = s_.reward_columns();
    const double* rewards = s_.rewards.data();
    MomentStatus status = MomentStatus::kInfinite;
    if (K == reward_matrix_size()) {
      status = compute_reward_moments(topo_, ws.graph, rewards, m, moments, dmoments, ws.solver,
                                      ws.reward_moments, d2moments);
    } else if (K == m && d2moments == nullptr) {
      status = compute_reward_means(topo_, ws.graph, rewards, m, moments, dmoments, ws.solver,
                                    ws.reward_moments);
    } else if (K == m) {
      double* full = scratch(ws, true, true);
      status = compute_reward_moments(topo_, ws.graph, rewards, m, full, ws.dfull.data(),
                                      ws.solver, ws.reward_moments, ws.d2full.data());
      if (status == MomentStatus::kFinite) copy_means(ws, moments, dmoments, d2moments);
    }
    if (status != MomentStatus::kFinite)
      fill_nan(K, moments, dmoments, d2moments);  // (rewards: Y may stay finite)
  }

  // Workspace outputs of the full reward-matrix layout (m + m^2 values, and their
  // first and second derivatives when asked), for the means cut from it.
  double* scratch(Workspace& ws, bool first, bool second) const {
    const int64_t K = reward_matrix_size(), P = s_.nr_params;
    ws.full.assign(K, 0.0);
    ws.dfull.assign(first ? K * P : 0, 0.0);
    ws.d2full.assign(second ? K * P * P : 0, 0.0);
    return ws.full.data();
  }

  // The means (the first m values of the full layout) and their derivatives.
  void copy_means(const Workspace& ws, double* moments, double* dmoments,
                  double* d2moments) const {
    const int64_t m = s_.reward_columns(), P = s_.nr_params;
    std::copy(ws.full.begin(), ws.full.begin() + m, moments);
    if (dmoments) std::copy(ws.dfull.begin(), ws.dfull.begin() + m * P, dmoments);
    if (d2moments) std::copy(ws.d2full.begin(), ws.d2full.begin() + m * P * P, d2moments);
  }

  // The functional at the times on ws.graph (first derivatives with dpmf):
  // on the reward transformation with rewards, else on the level-lumped chain
  // where the level shortcut applies, else on the model itself.
  void evaluate_functional(const double* times, int64_t T, Output what, double* pmf, double* dpmf,
                           Workspace& ws) const {
    const NumericGraph* h = &ws.graph;
    if (s_.has_rewards()) {
      if (!reward_transform(ws.graph, s_.rewards.data(), ws.transformed)) {
        fill_nan(T, pmf, dpmf, nullptr);
        return;
      }
      h = &ws.transformed;
    } else if (levels_.usable && lump_levels(levels_, topo_, ws.graph, ws.transformed)) {
      h = &ws.transformed;
    }
    const double atom = atom_of(*h, false, ws.datom);
    functional(*h, s_.discrete, what, atom, dpmf ? ws.datom.data() : nullptr, times, T, pmf, dpmf,
               ws.series, ws.squaring);
  }

  // The functional with first and second derivatives (exact: second-order
  // forward mode): the uniformisation series on the model itself, or on its
  // reward transformation (whose rational weights carry their second
  // derivatives); the level shortcut and the squaring ladder are not used, so
  // times beyond the series limit give NaN.
  void evaluate_functional_hessian(const double* times, int64_t T, Output what, double* pmf,
                                   double* dpmf, double* d2pmf, Workspace& ws) const {
    const int64_t P = s_.nr_params, PP = P * P, cols = P + PP;
    const NumericGraph* h = &ws.graph;
    if (s_.has_rewards()) {
      if (!reward_transform(ws.graph, s_.rewards.data(), ws.transformed, true)) {
        fill_nan(T, pmf, dpmf, d2pmf);
        return;
      }
      h = &ws.transformed;
    }
    const double atom = atom_of(*h, true, ws.datom);  // derivatives packed like the outputs
    ws.packed.assign(T * cols, 0.0);
    const double* datom = ws.datom.data();
    if (s_.discrete)
      series_mass(*h, what, atom, datom, times, T, pmf, ws.packed.data(), ws.series, true);
    else
      series_functional(*h, what, atom, datom, times, T, pmf, ws.packed.data(), ws.series, true);
    for (int64_t q = 0; q < T; ++q) {
      const double* row = ws.packed.data() + q * cols;
      std::copy(row, row + P, dpmf + q * P);
      std::copy(row + P, row + cols, d2pmf + q * PP);
    }
  }

  // NaN in the n values and, where given, their n x P first and n x P x P
  // second derivatives.
  void fill_nan(int64_t n, double* value, double* d1, double* d2) const {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const int64_t P = s_.nr_params;
    std::fill(value, value + n, nan);
    if (d1) std::fill(d1, d1 + n * P, nan);
    if (d2) std::fill(d2, d2 + n * P * P, nan);
  }

  // Moments that do not exist at this theta (absorption impossible from a
  // reachable state): E[T^k] = inf (NaN with rewards: Y may stay finite);
  // their derivatives do not exist.
  void fill_missing_moments(int64_t K, double* moments, double* d1, double* d2) const {
    fill_nan(K, moments, d1, d2);
    if (!s_.has_rewards()) std::fill(moments, moments + K, std::numeric_limits<double>::infinity());
  }

  // The atom P(T = 0) = 1 - sum(alpha) of the chain whose times are measured
  // (after the reward transformation: mass absorbed before any reward), with its
  // first derivatives in datom[0, P) and, with `second`, its second derivatives in
  // datom[P, P + P^2); they are nonzero only after a reward transformation.
  static double atom_of(const NumericGraph& h, bool second, std::vector<double>& datom) {
    const int64_t P = h.P, PP = P * P;
    double sum = 0.0;
    for (double a : h.alpha) sum += a;
    datom.assign(P + (second ? PP : 0), 0.0);
    for (int64_t i = 0; i < h.n; ++i) {
      for (int64_t p = 0; p < P && !h.dalpha.empty(); ++p) datom[p] -= h.dalpha[i * P + p];
      for (int64_t pq = 0; pq < PP && second && !h.d2alpha.empty(); ++pq)
        datom[P + pq] -= h.d2alpha[i * PP + pq];
    }
    return std::max(0.0, 1.0 - sum);
  }

  Structure s_;
  SccTopology topo_;
  LevelStructure levels_;
  Route route_ = Route::kHomogeneous;
};

}  // namespace ptdcore
