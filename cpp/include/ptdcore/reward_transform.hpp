// ptdcore engine: the reward transformation for the density of
// Y = int_0^tau r(X_t) dt (continuous models).
//
// States with zero reward are passed through instantaneously: each one is
// eliminated in turn, its in-edges u -> z (weight a) replaced by edges
// u -> v of weight a * w(z -> v) / out(z), and its initial mass spread the
// same way (mass sent to the exit is the atom P(Y = 0), not part of the
// density). A resulting self-loop u -> u is dropped: the jump it stands for
// is invisible. The remaining states then have their out-weights divided
// by their reward. The new weights are rational in theta; their gradients
// are carried along by the product and quotient rules.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "ptdcore/numeric_graph.hpp"

namespace ptdcore {

namespace detail {

// Edge weights with gradients, editable. Slot values live in `val` and
// `grad` (P per slot); key n stands for the exit.
class EditableGraph {
 public:
  EditableGraph(const NumericGraph& g) : n_(g.n), P_(g.P), jac_(g.with_grad), out_(g.n), in_(g.n) {
    for (int64_t e = 0; e < g.nr_edges(); ++e)
      add(g.src[e], g.dst[e], g.w[e], jac_ ? g.g.data() + e * P_ : nullptr);
    for (int64_t i = 0; i < n_; ++i)
      if (g.exit[i] != 0.0 || has_grad(g.dexit, i))
        add(i, n_, g.exit[i], jac_ ? g.dexit.data() + i * P_ : nullptr);
  }

  // Removes state z (0 <= z < n). alpha/dalpha are updated in place.
  // Returns false if z has no way out at this theta while mass can reach it
  // (a state nothing can reach is dropped).
  bool eliminate(int64_t z, std::vector<double>& alpha, std::vector<double>& dalpha) {
    double d = 0.0;
    std::vector<double> gd(P_, 0.0);
    for (const auto& [v, slot] : out_[z]) {
      d += val_[slot];
      for (int64_t p = 0; p < P_ && jac_; ++p) gd[p] += grad_[slot * P_ + p];
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
    // Branch probabilities q_v = w_zv / d and their gradients.
    std::vector<std::pair<int64_t, double>> branch;
    std::vector<double> dq;
    for (const auto& [v, slot] : out_[z]) {
      const double q = val_[slot] / d;
      branch.emplace_back(v, q);
      for (int64_t p = 0; p < P_ && jac_; ++p)
        dq.push_back((grad_[slot * P_ + p] - q * gd[p]) / d);
    }
    // Initial mass of z.
    for (size_t b = 0; b < branch.size(); ++b) {
      const int64_t v = branch[b].first;
      if (v == n_) continue;
      const double q = branch[b].second;
      alpha[v] += alpha[z] * q;
      for (int64_t p = 0; p < P_ && jac_; ++p)
        dalpha[v * P_ + p] += dalpha[z * P_ + p] * q + alpha[z] * dq[b * P_ + p];
    }
    alpha[z] = 0.0;
    // Reroute every in-edge u -> z.
    std::vector<double> ga(P_), gnew(P_);
    for (int64_t u : in_[z]) {
      const int64_t slot_uz = out_[u].at(z);
      const double a = val_[slot_uz];
      for (int64_t p = 0; p < P_ && jac_; ++p) ga[p] = grad_[slot_uz * P_ + p];
      out_[u].erase(z);
      for (size_t b = 0; b < branch.size(); ++b) {
        const int64_t v = branch[b].first;
        if (v == u) continue;
        const double q = branch[b].second;
        for (int64_t p = 0; p < P_ && jac_; ++p) gnew[p] = ga[p] * q + a * dq[b * P_ + p];
        add(u, v, a * q, jac_ ? gnew.data() : nullptr);
      }
    }
    for (const auto& [v, slot] : out_[z])
      if (v != n_) in_[v].erase(z);
    out_[z].clear();
    in_[z].clear();
    return true;
  }

  // The graph on the states with keep[i] = true, rates divided by scale[i].
  void extract(const std::vector<char>& keep, const std::vector<double>& scale,
               const std::vector<double>& alpha, const std::vector<double>& dalpha,
               NumericGraph& h) const {
    std::vector<int64_t> new_index(n_, -1);
    int64_t m = 0;
    for (int64_t i = 0; i < n_; ++i)
      if (keep[i]) new_index[i] = m++;
    h = NumericGraph{};
    h.n = m;
    h.P = P_;
    h.with_grad = jac_;
    h.alpha.assign(m, 0.0);
    h.out.assign(m, 0.0);
    h.exit.assign(m, 0.0);
    h.dalpha.assign(jac_ ? m * P_ : 0, 0.0);
    h.dout.assign(jac_ ? m * P_ : 0, 0.0);
    h.dexit.assign(jac_ ? m * P_ : 0, 0.0);
    for (int64_t i = 0; i < n_; ++i) {
      const int64_t a = new_index[i];
      if (a < 0) continue;
      h.alpha[a] = alpha[i];
      for (int64_t p = 0; p < P_ && jac_; ++p) h.dalpha[a * P_ + p] = dalpha[i * P_ + p];
      const double inv = 1.0 / scale[i];
      for (const auto& [v, slot] : out_[i]) {
        const double w = val_[slot] * inv;
        h.out[a] += w;
        for (int64_t p = 0; p < P_ && jac_; ++p) h.dout[a * P_ + p] += grad_[slot * P_ + p] * inv;
        if (v == n_) {
          h.exit[a] += w;
          for (int64_t p = 0; p < P_ && jac_; ++p) h.dexit[a * P_ + p] += grad_[slot * P_ + p] * inv;
          continue;
        }
        h.src.push_back(a);
        h.dst.push_back(new_index[v]);
        h.w.push_back(w);
        for (int64_t p = 0; p < P_ && jac_; ++p) h.g.push_back(grad_[slot * P_ + p] * inv);
      }
    }
  }

 private:
  bool has_grad(const std::vector<double>& d, int64_t i) const {
    for (int64_t p = 0; p < P_ && jac_; ++p)
      if (d[i * P_ + p] != 0.0) return true;
    return false;
  }

  void add(int64_t u, int64_t v, double w, const double* gw) {
    auto it = out_[u].find(v);
    int64_t slot;
    if (it == out_[u].end()) {
      slot = static_cast<int64_t>(val_.size());
      val_.push_back(0.0);
      grad_.resize(grad_.size() + (jac_ ? P_ : 0), 0.0);
      out_[u].emplace(v, slot);
      if (v != n_) in_[v].insert(u);
    } else {
      slot = it->second;
    }
    val_[slot] += w;
    for (int64_t p = 0; p < P_ && jac_; ++p) grad_[slot * P_ + p] += gw[p];
  }

  int64_t n_, P_;
  bool jac_;
  std::vector<std::map<int64_t, int64_t>> out_;
  std::vector<std::set<int64_t>> in_;
  std::vector<double> val_, grad_;
};

}  // namespace detail

// h = the reward-transformed graph over the states with positive reward.
// Returns false if a zero-reward state cannot be left at this theta.
inline bool reward_transform(const NumericGraph& g, const double* rewards, NumericGraph& h) {
  const int64_t n = g.n, P = g.P;
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
  detail::EditableGraph edit(g);
  if (any_zero)
    for (int64_t z = 0; z < n; ++z)
      if (!keep[z] && !edit.eliminate(z, alpha, dalpha)) return false;
  edit.extract(keep, scale, alpha, dalpha, h);
  return true;
}

}  // namespace ptdcore
