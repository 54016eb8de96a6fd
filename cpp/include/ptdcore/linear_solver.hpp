// ptdcore engine: solving M x = b for M = diag(out) - A, the negated
// sub-intensity matrix (continuous) or I - T (discrete).
//
// The state graph is split once into strongly connected components
// (Tarjan). Components are solved sinks first; a component of one state is
// a division, a larger one a dense elimination of its own block. On an
// acyclic graph every component is a single state and a solve is one pass
// over the edges (linear time).
//
// M is an M-matrix whose row sums are the exit flows. The block elimination
// is the GTH variant of Gaussian elimination (Grassmann, Taksar & Heyman,
// 1985; O'Cinneide's entrywise analysis): no pivoting, and each pivot is
// recomputed as the row's remaining exit flow plus its remaining off-diagonal
// flows, a sum of non-negative terms, instead of by subtraction. So no step
// cancels, the solution of M x = b for b >= 0 is entrywise relatively
// accurate, and a pivot is zero exactly when the states not yet eliminated in
// that row's block form a closed class at this theta: the singularity
// criterion is structural at the numeric rates, not a threshold on rounding
// noise. States that alpha cannot reach at this theta (through edges of
// positive weight) do not affect alpha x; their rows are set aside (x = 0),
// so a closed class out of reach does not spoil finite moments.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "ptdcore/numeric_graph.hpp"

namespace ptdcore {

// Theta-independent: components, solve order and the out-edge lists.
struct SccTopology {
  int64_t n = 0;
  std::vector<int64_t> order;    // states grouped by component, sinks first
  std::vector<int64_t> scc_ptr;  // component c is order[scc_ptr[c] .. scc_ptr[c+1])
  std::vector<int64_t> scc_of;   // state -> component
  std::vector<int64_t> local;    // state -> index within its component
  std::vector<int64_t> out_ptr;  // CSR of internal edges by source
  std::vector<int64_t> out_edge;

  int64_t nr_components() const { return static_cast<int64_t>(scc_ptr.size()) - 1; }
  bool acyclic() const { return nr_components() == n; }
};

inline SccTopology build_topology(int64_t n, const std::vector<int64_t>& src,
                                  const std::vector<int64_t>& dst) {
  SccTopology t;
  t.n = n;
  edges_by_source(n, src, t.out_ptr, t.out_edge);
  // Iterative Tarjan; components are emitted sinks first.
  std::vector<int64_t> index(n, -1), low(n, 0), stack, call_state, call_pos;
  std::vector<char> on_stack(n, 0);
  int64_t counter = 0;
  t.scc_of.assign(n, -1);
  t.local.assign(n, 0);
  t.scc_ptr.push_back(0);
  for (int64_t root = 0; root < n; ++root) {
    if (index[root] >= 0) continue;
    call_state.push_back(root);
    call_pos.push_back(t.out_ptr[root]);
    index[root] = low[root] = counter++;
    stack.push_back(root);
    on_stack[root] = 1;
    while (!call_state.empty()) {
      const int64_t v = call_state.back();
      int64_t& pos = call_pos.back();
      if (pos < t.out_ptr[v + 1]) {
        const int64_t w = dst[t.out_edge[pos++]];
        if (index[w] < 0) {
          index[w] = low[w] = counter++;
          stack.push_back(w);
          on_stack[w] = 1;
          call_state.push_back(w);
          call_pos.push_back(t.out_ptr[w]);
        } else if (on_stack[w]) {
          low[v] = std::min(low[v], index[w]);
        }
        continue;
      }
      if (low[v] == index[v]) {
        const int64_t c = t.nr_components();
        int64_t k = 0;
        const size_t first = t.order.size();
        while (true) {
          const int64_t w = stack.back();
          stack.pop_back();
          on_stack[w] = 0;
          t.scc_of[w] = c;
          t.order.push_back(w);
          if (w == v) break;
        }
        std::sort(t.order.begin() + static_cast<std::ptrdiff_t>(first), t.order.end());
        for (size_t q = first; q < t.order.size(); ++q) t.local[t.order[q]] = k++;
        t.scc_ptr.push_back(static_cast<int64_t>(t.order.size()));
      }
      call_state.pop_back();
      call_pos.pop_back();
      if (!call_state.empty()) {
        const int64_t parent = call_state.back();
        low[parent] = std::min(low[parent], low[v]);
      }
    }
  }
  return t;
}

// How a factorisation ended.
enum class MomentStatus {
  kFinite,    // M restricted to the states reachable from alpha is invertible
  kInfinite,  // a state reachable from alpha cannot reach absorption at this theta
};

// M = diag(out) - A factorised for one theta.
class BlockSolver {
 public:
  // Factorises M over the states reachable from alpha (at this theta).
  MomentStatus factorise(const SccTopology& t, const NumericGraph& g) {
    // First with every state; only if a pivot vanishes is reachability from
    // alpha worked out (a pass over the edges) and the factorisation redone.
    reached_.assign(t.n, 1);
    all_reached_ = true;
    if (factorise_reached(t, g) == MomentStatus::kFinite) return MomentStatus::kFinite;
    mark_reachable(t, g);
    all_reached_ = false;
    return factorise_reached(t, g);
  }

  // x = M^{-1} b (x and b may not alias).
  void solve(const double* b, double* x) const {
    const SccTopology& t = *topo_;
    const NumericGraph& g = *graph_;
    const int64_t C = t.nr_components();
    for (int64_t c = 0; c < C; ++c) {
      const int64_t begin = t.scc_ptr[c], s = t.scc_ptr[c + 1] - begin;
      if (s == 1) {
        const int64_t i = t.order[begin];
        if (!all_reached_ && !reached_[i]) {
          x[i] = 0.0;
          continue;
        }
        double r = b[i];
        for (int64_t k = t.out_ptr[i]; k < t.out_ptr[i + 1]; ++k) {
          const int64_t e = t.out_edge[k];
          r += g.w[e] * x[g.dst[e]];
        }
        x[i] = r / g.out[i];
        continue;
      }
      rhs_.assign(s, 0.0);
      for (int64_t q = 0; q < s; ++q) {
        const int64_t i = t.order[begin + q];
        if (!all_reached_ && !reached_[i]) {
          rhs_[q] = 0.0;
          continue;
        }
        double r = b[i];
        for (int64_t k = t.out_ptr[i]; k < t.out_ptr[i + 1]; ++k) {
          const int64_t e = t.out_edge[k];
          const int64_t j = g.dst[e];
          if (t.scc_of[j] != c) r += g.w[e] * x[j];
        }
        rhs_[q] = r;
      }
      lu_solve(lu_.data() + lu_off_[c], s, rhs_.data());
      for (int64_t q = 0; q < s; ++q) x[t.order[begin + q]] = rhs_[q];
    }
  }

  // y = M^{-T} b, i.e. the row vector y^T = b^T M^{-1} (y and b may not alias).
  // Components are visited sources first; within a block U^T z = rhs is solved
  // forward and L^T y = z backward. The off-diagonal factors are <= 0, so for
  // b >= 0 every step adds non-negative terms (entrywise accurate, as solve).
  void solve_transposed(const double* b, double* y) const {
    const SccTopology& t = *topo_;
    const NumericGraph& g = *graph_;
    const int64_t C = t.nr_components();
    inflow_.assign(t.n, 0.0);  // sum of w_e y_src over the edges into each state
    for (int64_t c = C - 1; c >= 0; --c) {
      const int64_t begin = t.scc_ptr[c], s = t.scc_ptr[c + 1] - begin;
      if (s == 1) {
        const int64_t i = t.order[begin];
        y[i] = (!all_reached_ && !reached_[i]) ? 0.0 : (b[i] + inflow_[i]) / g.out[i];
      } else {
        rhs_.assign(s, 0.0);
        for (int64_t q = 0; q < s; ++q) {
          const int64_t i = t.order[begin + q];
          if (all_reached_ || reached_[i]) rhs_[q] = b[i] + inflow_[i];
        }
        lu_solve_transposed(lu_.data() + lu_off_[c], s, rhs_.data());
        for (int64_t q = 0; q < s; ++q) y[t.order[begin + q]] = rhs_[q];
      }
      for (int64_t q = 0; q < s; ++q) {
        const int64_t i = t.order[begin + q];
        for (int64_t k = t.out_ptr[i]; k < t.out_ptr[i + 1]; ++k) {
          const int64_t e = t.out_edge[k];
          const int64_t j = g.dst[e];
          if (t.scc_of[j] != c) inflow_[j] += g.w[e] * y[i];
        }
      }
    }
  }

 private:
  // Factorises over the states with reached_[i] set; the others are set aside.
  MomentStatus factorise_reached(const SccTopology& t, const NumericGraph& g) {
    topo_ = &t;
    graph_ = &g;
    const int64_t C = t.nr_components();
    lu_off_.assign(C + 1, 0);
    for (int64_t c = 0; c < C; ++c) {
      const int64_t s = t.scc_ptr[c + 1] - t.scc_ptr[c];
      lu_off_[c + 1] = lu_off_[c] + (s > 1 ? s * s : 0);
    }
    lu_.assign(lu_off_[C], 0.0);
    excess_.resize(t.n);
    for (int64_t c = 0; c < C; ++c) {
      const int64_t s = t.scc_ptr[c + 1] - t.scc_ptr[c];
      if (s == 1) {
        const int64_t i = t.order[t.scc_ptr[c]];
        if (reached_[i] && !(g.out[i] > 0.0)) return MomentStatus::kInfinite;
        continue;
      }
      double* a = lu_.data() + lu_off_[c];
      double* e = excess_.data() + t.scc_ptr[c];
      for (int64_t q = 0; q < s; ++q) {
        const int64_t i = t.order[t.scc_ptr[c] + q];
        if (!reached_[i]) {  // set aside: x_i = 0
          a[q * s + q] = 1.0;
          e[q] = 1.0;
          continue;
        }
        e[q] = g.exit[i];
        for (int64_t k = t.out_ptr[i]; k < t.out_ptr[i + 1]; ++k) {
          const int64_t edge = t.out_edge[k];
          const int64_t j = g.dst[edge];
          if (t.scc_of[j] == c)
            a[q * s + t.local[j]] -= g.w[edge];
          else
            e[q] += g.w[edge];
        }
      }
      if (!gth_factor(a, e, s, last_)) return MomentStatus::kInfinite;
    }
    return MomentStatus::kFinite;
  }

  // reached_[i]: state i is reachable from alpha through positive weights.
  void mark_reachable(const SccTopology& t, const NumericGraph& g) {
    reached_.assign(t.n, 0);
    stack_.clear();
    for (int64_t i = 0; i < t.n; ++i)
      if (g.alpha[i] > 0.0) reached_[i] = 1, stack_.push_back(i);
    close_reached(t.out_ptr, t.out_edge, g.dst, [&](int64_t e) { return g.w[e] > 0.0; },
                  reached_, stack_);
  }

  // GTH elimination of one block in place: a holds the off-diagonal entries
  // (<= 0) on entry, e the row sums (exit flows, >= 0). On return a holds the
  // unit lower factor (multipliers) and the upper factor with its pivots.
  // False when a pivot is zero (a closed class). Each row's last non-zero
  // column (`last`, scratch) bounds its updates: the entries beyond are zero and
  // stay zero (a banded block is eliminated within its band), and skipping them
  // changes no rounding.
  static bool gth_factor(double* a, double* e, int64_t s, std::vector<int64_t>& last) {
    last.assign(s, 0);
    for (int64_t r = 0; r < s; ++r)
      for (int64_t col = s - 1; col > r; --col)
        if (a[r * s + col] != 0.0) {
          last[r] = col;
          break;
        }
    for (int64_t k = 0; k < s; ++k) {
      const double* pivot_row = a + k * s;
      const int64_t end = std::max(last[k], k) + 1;
      double pivot = e[k];
      for (int64_t j = k + 1; j < end; ++j) pivot -= pivot_row[j];  // adds |a_kj|
      if (!(pivot > 0.0)) return false;
      a[k * s + k] = pivot;
      const double inv = 1.0 / pivot;
      for (int64_t r = k + 1; r < s; ++r) {
        const double f = a[r * s + k] * inv;  // <= 0
        a[r * s + k] = f;
        if (f == 0.0) continue;
        // (col = r too: the diagonal is not read before row r's pivot overwrites it,
        // and a loop without a branch vectorises)
        double* row = a + r * s;
        for (int64_t col = k + 1; col < end; ++col) row[col] -= f * pivot_row[col];  // <= 0
        last[r] = std::max(last[r], end - 1);
        e[r] -= f * e[k];  // both terms >= 0
      }
    }
    return true;
  }

  // x = (LU)^{-1} x for the factors of gth_factor.
  static void lu_solve(const double* a, int64_t s, double* x) {
    for (int64_t r = 1; r < s; ++r)
      for (int64_t col = 0; col < r; ++col) x[r] -= a[r * s + col] * x[col];
    for (int64_t r = s - 1; r >= 0; --r) {
      for (int64_t col = r + 1; col < s; ++col) x[r] -= a[r * s + col] * x[col];
      x[r] /= a[r * s + r];
    }
  }

  // x = (LU)^{-T} x = L^{-T} U^{-T} x for the factors of gth_factor.
  static void lu_solve_transposed(const double* a, int64_t s, double* x) {
    for (int64_t r = 0; r < s; ++r) {
      for (int64_t k = 0; k < r; ++k) x[r] -= a[k * s + r] * x[k];
      x[r] /= a[r * s + r];
    }
    for (int64_t r = s - 1; r >= 0; --r)
      for (int64_t k = r + 1; k < s; ++k) x[r] -= a[k * s + r] * x[k];
  }

  const SccTopology* topo_ = nullptr;
  const NumericGraph* graph_ = nullptr;
  std::vector<double> lu_, excess_;
  std::vector<int64_t> lu_off_, stack_, last_;
  std::vector<char> reached_;
  bool all_reached_ = true;
  mutable std::vector<double> rhs_, inflow_;
};

}  // namespace ptdcore
