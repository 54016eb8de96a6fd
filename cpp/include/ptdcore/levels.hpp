// ptdcore engine: an exact shortcut for level-structured acyclic graphs.
//
// Suppose the states reachable from the initial distribution split into
// levels 0, 1, ..., D-1 such that (a) alpha lives on level 0, (b) every edge
// goes from level m to level m + 1 (or to the exit), and (c) every state of
// level m has the same total out-rate lambda_m(theta), as a linear form (not
// just at one theta). Coalescent state spaces are like this: level = number
// of coalescences so far, lambda_m = C(n - m, 2) theta.
//
// Then the holding time in level m is Exp(lambda_m) whatever the state, and
// is independent of where the embedded jump chain goes. With pi_m the
// (sub-)distribution over the states of level m on entering it,
//     pi_{m+1}[j] = sum_{i in level m} pi_m[i] w_ij / lambda_m,
//     E_m = sum_{i in level m} pi_m[i] exit_i,
// the density is f(t) = sum_m E_m p_m(t), where p_m(t) is the probability
// that a pure-birth chain with rates lambda_0, lambda_1, ... is in phase m at
// time t. lump_levels turns this into a genuine chain of D phases (below),
// on which every algorithm (series, squaring ladder; density, cdf, sf) runs
// unchanged: the cost per series term drops from the number of edges to the
// number of levels, and the edges are visited once per theta (with the
// Jacobian carried through by forward mode).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ptdcore/linear_solver.hpp"
#include "ptdcore/numeric_graph.hpp"
#include "ptdcore/structure.hpp"
#include "ptdcore/tolerances.hpp"

namespace ptdcore {

struct LevelStructure {
  bool usable = false;
  int64_t nr_levels = 0;
  std::vector<int64_t> level_ptr;       // states of level m: level_states[level_ptr[m] ..]
  std::vector<int64_t> level_states;
  std::vector<int64_t> representative;  // a state of each level (its out-rate is lambda_m)
};

// Detects the level structure at prepare time (theta-independent). `topo`
// holds the internal edges (exits and self-loops excluded) in the order the
// numeric graph stores them.
inline LevelStructure detect_levels(const Structure& s, const SccTopology& topo,
                                    const std::vector<int64_t>& internal_dst) {
  LevelStructure L;
  const int64_t n = s.nr_states, P = s.nr_params;
  if (s.discrete || s.has_rewards() || !topo.acyclic()) return L;
  std::vector<int64_t> level(n, -1), queue;
  for (int64_t i = 0; i < n; ++i)
    if (s.alpha[i] > 0.0) level[i] = 0, queue.push_back(i);
  if (queue.empty()) return L;
  for (size_t head = 0; head < queue.size(); ++head) {
    const int64_t i = queue[head];
    for (int64_t k = topo.out_ptr[i]; k < topo.out_ptr[i + 1]; ++k) {
      const int64_t j = internal_dst[topo.out_edge[k]];
      if (level[j] < 0) {
        level[j] = level[i] + 1;
        queue.push_back(j);
      } else if (level[j] != level[i] + 1) {
        return L;  // an edge that skips or repeats a level
      }
    }
  }
  // Out-rate linear form of every reached state: constant and coefficients.
  std::vector<double> form(n * (P + 1), 0.0);
  for (int64_t e = 0; e < s.nr_edges(); ++e) {
    const int64_t i = s.src[e];
    if (level[i] < 0 || s.dst[e] == i) continue;
    form[i * (P + 1)] += s.constant[e];
    for (int64_t k = s.coef_ptr[e]; k < s.coef_ptr[e + 1]; ++k)
      form[i * (P + 1) + 1 + s.coef_index[k]] += s.coef_value[k];
  }
  int64_t D = 0;
  for (int64_t i : queue) D = std::max(D, level[i] + 1);
  L.nr_levels = D;
  L.level_ptr.assign(D + 1, 0);
  for (int64_t i : queue) ++L.level_ptr[level[i] + 1];
  for (int64_t m = 0; m < D; ++m) L.level_ptr[m + 1] += L.level_ptr[m];
  L.level_states.resize(queue.size());
  std::vector<int64_t> fill(L.level_ptr.begin(), L.level_ptr.end() - 1);
  for (int64_t i = 0; i < n; ++i)
    if (level[i] >= 0) L.level_states[fill[level[i]]++] = i;
  L.representative.resize(D);
  for (int64_t m = 0; m < D; ++m) {
    const int64_t r = L.level_states[L.level_ptr[m]];
    L.representative[m] = r;
    for (int64_t q = L.level_ptr[m] + 1; q < L.level_ptr[m + 1]; ++q) {
      const int64_t i = L.level_states[q];
      for (int64_t p = 0; p <= P; ++p) {
        const double a = form[r * (P + 1) + p], b = form[i * (P + 1) + p];
        if (std::fabs(a - b) > kLevelRateTolerance * std::max(std::fabs(a), std::fabs(b)))
          return LevelStructure{};  // rates differ within the level
      }
    }
  }
  L.usable = true;
  return L;
}

// The D-phase chain of the shortcut for one theta, a genuine sub-stochastic
// chain: with M_m the mass entering level m (M_0 = sum of alpha) and E_m its
// exit flow, phase m leaves at rate lambda_m, to phase m + 1 at rate
// lambda_m M_{m+1} / M_m and to absorption at rate E_m / M_m. Then
// P(phase m at t) = p_m(t) M_m is the mass of level m at t, so the density,
// the survival function and the distribution function are those of the
// original model. Gradients are carried along when g has them.
//
// Returns false (h is then not to be used) when gradients are asked for at a
// theta on the boundary of the parameter space where the lumped chain has no
// derivative to give: a level that no mass reaches at this theta (its exit
// share is 0/0), or a level that mass reaches but cannot leave while levels
// follow it (its onward share is 0/0). A zero weight is valid input and its
// derivative is the one-sided one into the valid domain: the caller then
// differentiates the full chain, where every state and edge is kept.
inline bool lump_levels(const LevelStructure& L, const SccTopology& topo, const NumericGraph& g,
                        NumericGraph& h) {
  const int64_t D = L.nr_levels, P = g.P, n = g.n;
  const bool jac = g.with_grad;
  h = NumericGraph{};
  h.n = D;
  h.P = P;
  h.with_grad = jac;
  h.alpha.assign(D, 0.0);
  h.out.assign(D, 0.0);
  h.exit.assign(D, 0.0);
  h.dout.assign(jac ? D * P : 0, 0.0);
  h.dexit.assign(jac ? D * P : 0, 0.0);
  std::vector<double> pi(g.alpha), dpi(jac ? n * P : 0, 0.0);
  // Level masses M (D + 1, M_D = 0), exit flows E and their gradients.
  std::vector<double> M(D + 1, 0.0), dM(jac ? (D + 1) * P : 0, 0.0);
  std::vector<double> E(D, 0.0), dE(jac ? D * P : 0, 0.0);
  for (int64_t m = 0; m < D; ++m) {
    const int64_t r = L.representative[m];
    const double lambda = g.out[r];
    for (int64_t q = L.level_ptr[m]; q < L.level_ptr[m + 1]; ++q) {
      const int64_t i = L.level_states[q];
      M[m] += pi[i];
      E[m] += pi[i] * g.exit[i];
      for (int64_t p = 0; p < P && jac; ++p) {
        dM[m * P + p] += dpi[i * P + p];
        dE[m * P + p] += dpi[i * P + p] * g.exit[i] + pi[i] * g.dexit[i * P + p];
      }
      if (!(lambda > 0.0)) continue;  // the chain stays here: nothing moves on
      for (int64_t k = topo.out_ptr[i]; k < topo.out_ptr[i + 1]; ++k) {
        const int64_t e = topo.out_edge[k], j = g.dst[e];
        const double share = g.w[e] / lambda;
        pi[j] += pi[i] * share;
        for (int64_t p = 0; p < P && jac; ++p) {
          const double dshare = (g.g[e * P + p] - share * g.dout[r * P + p]) / lambda;
          dpi[j * P + p] += dpi[i * P + p] * share + pi[i] * dshare;
        }
      }
    }
  }
  if (jac)
    for (int64_t m = 0; m < D; ++m)
      if (!(M[m] > 0.0) || (m + 1 < D && !(g.out[L.representative[m]] > 0.0))) return false;
  h.alpha[0] = M[0];
  if (jac && D > 0) {
    h.dalpha.assign(D * P, 0.0);
    for (int64_t p = 0; p < P; ++p) h.dalpha[p] = dM[p];
  }
  for (int64_t m = 0; m < D; ++m) {
    const int64_t r = L.representative[m];
    const double lambda = g.out[r];
    h.out[m] = lambda;
    for (int64_t p = 0; p < P && jac; ++p) h.dout[m * P + p] = g.dout[r * P + p];
    const double mass = M[m];
    // continue: lambda M_{m+1} / M_m ; exit: E_m / M_m (a level no mass reaches
    // keeps the whole rate onward, so the chain stays well formed)
    const double go_on = mass > 0.0 ? M[m + 1] / mass : 1.0;
    const double leave = mass > 0.0 ? E[m] / mass : 0.0;
    h.exit[m] = leave;
    for (int64_t p = 0; p < P && jac && mass > 0.0; ++p)
      h.dexit[m * P + p] = (dE[m * P + p] - leave * dM[m * P + p]) / mass;
    if (m + 1 < D) {
      h.src.push_back(m);
      h.dst.push_back(m + 1);
      h.w.push_back(lambda * go_on);
      for (int64_t p = 0; p < P && jac; ++p) {
        const double dgo =
            mass > 0.0 ? (dM[(m + 1) * P + p] - go_on * dM[m * P + p]) / mass : 0.0;
        h.g.push_back(g.dout[r * P + p] * go_on + lambda * dgo);
      }
    }
  }
  return true;
}

}  // namespace ptdcore
