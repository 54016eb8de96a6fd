// ptdcore engine: the reward transformation for the density of
// Y = int_0^tau r(X_t) dt (continuous models).
//
// States with zero reward are passed through instantaneously: each one is
// eliminated in turn, its in-edges u -> z (weight a) replaced by edges
// u -> v of weight a * w(z -> v) / out(z), and its initial mass spread the
// same way (mass sent to the exit is the atom P(Y = 0), not part of the
// density). A resulting self-loop u -> u is dropped: the jump it stands for
// is invisible. The remaining states then have their out-weights divided
// by their reward. The new weights are rational in theta; their first (and,
// on request, second) derivatives are carried along by the product and
// quotient rules: with q = w / d,
//   dq = (dw - q dd) / d,   d2q = (d2w - dq_p dd_q - dq_q dd_p - q d2d) / d.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "ptdcore/numeric_graph.hpp"

namespace ptdcore {

namespace detail {

// Edge weights with derivatives, editable. Slot values live in `val`, `grad`
// (P per slot) and, with second order, `hess` (P x P per slot); key n stands
// for the exit.
class EditableGraph {
 public:
  EditableGraph(const NumericGraph& g, bool second_order = false)
      : n_(g.n), P_(g.P), jac_(g.with_grad), hes_(g.with_grad && second_order), out_(g.n),
        in_(g.n) {
    const int64_t PP = P_ * P_;
    for (int64_t e = 0; e < g.nr_edges(); ++e)
      add(g.src[e], g.dst[e], g.w[e], jac_ ? g.g.data() + e * P_ : nullptr,
          hes_ && !g.g2.empty() ? g.g2.data() + e * PP : nullptr);
    for (int64_t i = 0; i < n_; ++i)
      if (g.exit[i] != 0.0 || has_grad(g.dexit, i))
        add(i, n_, g.exit[i], jac_ ? g.dexit.data() + i * P_ : nullptr,
            hes_ && !g.d2exit.empty() ? g.d2exit.data() + i * PP : nullptr);
  }

  // Removes state z (0 <= z < n). alpha and its derivatives (dalpha n x P,
  // d2alpha n x P x P with second order) are updated in place. Returns false
  // if z has no way out at this theta while mass can reach it (a state nothing
  // can reach is dropped).
  bool eliminate(int64_t z, std::vector<double>& alpha, std::vector<double>& dalpha,
                 std::vector<double>& d2alpha) {
    const int64_t P = P_, PP = P_ * P_;
    double d = 0.0;
    std::vector<double> gd(P, 0.0), hd(hes_ ? PP : 0, 0.0);
    for (const auto& [v, slot] : out_[z]) {
      d += val_[slot];
      for (int64_t p = 0; p < P && jac_; ++p) gd[p] += grad_[slot * P + p];
      for (int64_t pq = 0; pq < PP && hes_; ++pq) hd[pq] += hess_[slot * PP + pq];
    }
    if (!(d > 0.0)) {
      // A state that cannot be left matters only if mass can arrive there.
      if (alpha[z] != 0.0) return false;
      for (int64_t u : in_[z])
        if (val_[out_[u].at(z)] != 0.0) return false;
      for (int64_t u : in_[z]) out_[u].erase(z);
      for (const auto& [v, slot] : out_[z])
        if (v != n_) in_[v].erase(z);
      out_[z].clear();
      in_[z].clear();
      return true;
    }
    // Branch probabilities q_v = w_zv / d and their derivatives.
    std::vector<std::pair<int64_t, double>> branch;
    std::vector<double> dq, d2q;
    for (const auto& [v, slot] : out_[z]) {
      const double q = val_[slot] / d;
      branch.emplace_back(v, q);
      const size_t b0 = dq.size();
      for (int64_t p = 0; p < P && jac_; ++p) dq.push_back((grad_[slot * P + p] - q * gd[p]) / d);
      for (int64_t p = 0; p < P && hes_; ++p)
        for (int64_t r = 0; r < P; ++r)
          d2q.push_back((hess_[slot * PP + p * P + r] - dq[b0 + p] * gd[r] - dq[b0 + r] * gd[p] -
                         q * hd[p * P + r]) /
                        d);
    }
    // Initial mass of z: alpha_v += alpha_z q_v (and derivatives).
    for (size_t b = 0; b < branch.size(); ++b) {
      const int64_t v = branch[b].first;
      if (v == n_) continue;
      const double q = branch[b].second;
      const double* dqb = jac_ ? dq.data() + b * P : nullptr;
      for (int64_t p = 0; p < P && hes_; ++p)
        for (int64_t r = 0; r < P; ++r)
          d2alpha[(v * P + p) * P + r] += d2alpha[(z * P + p) * P + r] * q +
                                          dalpha[z * P + p] * dqb[r] +
                                          dalpha[z * P + r] * dqb[p] +
                                          alpha[z] * d2q[(b * P + p) * P + r];
      for (int64_t p = 0; p < P && jac_; ++p)
        dalpha[v * P + p] += dalpha[z * P + p] * q + alpha[z] * dqb[p];
      alpha[v] += alpha[z] * q;
    }
    alpha[z] = 0.0;
    // Reroute every in-edge u -> z: a q_v on u -> v.
    std::vector<double> ga(P), ha(hes_ ? PP : 0), gnew(P), hnew(hes_ ? PP : 0);
    for (int64_t u : in_[z]) {
      const int64_t slot_uz = out_[u].at(z);
      const double a = val_[slot_uz];
      for (int64_t p = 0; p < P && jac_; ++p) ga[p] = grad_[slot_uz * P + p];
      for (int64_t pq = 0; pq < PP && hes_; ++pq) ha[pq] = hess_[slot_uz * PP + pq];
      out_[u].erase(z);
      for (size_t b = 0; b < branch.size(); ++b) {
        const int64_t v = branch[b].first;
        if (v == u) continue;
        const double q = branch[b].second;
        const double* dqb = jac_ ? dq.data() + b * P : nullptr;
        for (int64_t p = 0; p < P && jac_; ++p) gnew[p] = ga[p] * q + a * dqb[p];
        for (int64_t p = 0; p < P && hes_; ++p)
          for (int64_t r = 0; r < P; ++r)
            hnew[p * P + r] = ha[p * P + r] * q + ga[p] * dqb[r] + ga[r] * dqb[p] +
                              a * d2q[(b * P + p) * P + r];
        add(u, v, a * q, jac_ ? gnew.data() : nullptr, hes_ ? hnew.data() : nullptr);
      }
    }
    for (const auto& [v, slot] : out_[z])
      if (v != n_) in_[v].erase(z);
    out_[z].clear();
    in_[z].clear();
    return true;
  }

  // The graph on the states with keep[i] = true, rates divided by scale[i]
  // (second derivatives too, with second order).
  void extract(const std::vector<char>& keep, const std::vector<double>& scale,
               const std::vector<double>& alpha, const std::vector<double>& dalpha,
               const std::vector<double>& d2alpha, NumericGraph& h) const {
    const int64_t P = P_, PP = P_ * P_;
    std::vector<int64_t> new_index(n_, -1);
    int64_t m = 0;
    for (int64_t i = 0; i < n_; ++i)
      if (keep[i]) new_index[i] = m++;
    h = NumericGraph{};
    h.n = m;
    h.P = P;
    h.with_grad = jac_;
    h.alpha.assign(m, 0.0);
    h.out.assign(m, 0.0);
    h.exit.assign(m, 0.0);
    h.dalpha.assign(jac_ ? m * P : 0, 0.0);
    h.dout.assign(jac_ ? m * P : 0, 0.0);
    h.dexit.assign(jac_ ? m * P : 0, 0.0);
    h.d2alpha.assign(hes_ ? m * PP : 0, 0.0);
    h.d2out.assign(hes_ ? m * PP : 0, 0.0);
    h.d2exit.assign(hes_ ? m * PP : 0, 0.0);
    for (int64_t i = 0; i < n_; ++i) {
      const int64_t a = new_index[i];
      if (a < 0) continue;
      h.alpha[a] = alpha[i];
      for (int64_t p = 0; p < P && jac_; ++p) h.dalpha[a * P + p] = dalpha[i * P + p];
      for (int64_t pq = 0; pq < PP && hes_; ++pq) h.d2alpha[a * PP + pq] = d2alpha[i * PP + pq];
      const double inv = 1.0 / scale[i];
      for (const auto& [v, slot] : out_[i]) {
        const double w = val_[slot] * inv;
        h.out[a] += w;
        for (int64_t p = 0; p < P && jac_; ++p) h.dout[a * P + p] += grad_[slot * P + p] * inv;
        for (int64_t pq = 0; pq < PP && hes_; ++pq)
          h.d2out[a * PP + pq] += hess_[slot * PP + pq] * inv;
        if (v == n_) {
          h.exit[a] += w;
          for (int64_t p = 0; p < P && jac_; ++p) h.dexit[a * P + p] += grad_[slot * P + p] * inv;
          for (int64_t pq = 0; pq < PP && hes_; ++pq)
            h.d2exit[a * PP + pq] += hess_[slot * PP + pq] * inv;
          continue;
        }
        h.src.push_back(a);
        h.dst.push_back(new_index[v]);
        h.w.push_back(w);
        for (int64_t p = 0; p < P && jac_; ++p) h.g.push_back(grad_[slot * P + p] * inv);
        for (int64_t pq = 0; pq < PP && hes_; ++pq) h.g2.push_back(hess_[slot * PP + pq] * inv);
      }
    }
  }

 private:
  bool has_grad(const std::vector<double>& d, int64_t i) const {
    for (int64_t p = 0; p < P_ && jac_; ++p)
      if (d[i * P_ + p] != 0.0) return true;
    return false;
  }

  void add(int64_t u, int64_t v, double w, const double* gw, const double* hw) {
    auto it = out_[u].find(v);
    int64_t slot;
    if (it == out_[u].end()) {
      slot = static_cast<int64_t>(val_.size());
      val_.push_back(0.0);
      grad_.resize(grad_.size() + (jac_ ? P_ : 0), 0.0);
      hess_.resize(hess_.size() + (hes_ ? P_ * P_ : 0), 0.0);
      out_[u].emplace(v, slot);
      if (v != n_) in_[v].insert(u);
    } else {
      slot = it->second;
    }
    val_[slot] += w;
    for (int64_t p = 0; p < P_ && jac_; ++p) grad_[slot * P_ + p] += gw[p];
    for (int64_t pq = 0; pq < P_ * P_ && hes_ && hw; ++pq) hess_[slot * P_ * P_ + pq] += hw[pq];
  }

  int64_t n_, P_;
  bool jac_, hes_;
  std::vector<std::map<int64_t, int64_t>> out_;
  std::vector<std::set<int64_t>> in_;
  std::vector<double> val_, grad_, hess_;
};

}  // namespace detail

// h = the reward-transformed graph over the states with positive reward (with
// second derivatives of its weights when `second_order`). Returns false if a
// zero-reward state cannot be left at this theta while mass can reach it.
inline bool reward_transform(const NumericGraph& g, const double* rewards, NumericGraph& h,
                             bool second_order = false) {
  const int64_t n = g.n, P = g.P;
  const bool hes = g.with_grad && second_order;
  std::vector<char> keep(n, 0);
  std::vector<double> scale(n);
  bool any_zero = false;
  for (int64_t i = 0; i < n; ++i) {
    keep[i] = rewards[i] > 0.0;
    scale[i] = keep[i] ? rewards[i] : 1.0;
    any_zero |= !keep[i];
  }
  std::vector<double> alpha(g.alpha);
  std::vector<double> dalpha(g.with_grad ? n * P : 0, 0.0);
  if (g.with_grad && !g.dalpha.empty()) dalpha = g.dalpha;
  std::vector<double> d2alpha(hes ? n * P * P : 0, 0.0);
  if (hes && !g.d2alpha.empty()) d2alpha = g.d2alpha;
  detail::EditableGraph edit(g, second_order);
  if (any_zero)
    for (int64_t z = 0; z < n; ++z)
      if (!keep[z] && !edit.eliminate(z, alpha, dalpha, d2alpha)) return false;
  edit.extract(keep, scale, alpha, dalpha, d2alpha, h);
  return true;
}

}  // namespace ptdcore
