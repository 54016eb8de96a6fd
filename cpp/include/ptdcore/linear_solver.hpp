// ptdcore engine: solving M x = b for M = diag(out) - A, the negated
// sub-intensity matrix (continuous) or I - T (discrete).
//
// The state graph is split once into strongly connected components
// (Tarjan). Components are solved sinks first; a component of one state is
// a division, a larger one a dense LU factorisation with partial pivoting
// of its own block. On an acyclic graph every component is a single state
// and a solve is one pass over the edges (linear time).
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
  const int64_t E = static_cast<int64_t>(src.size());
  t.out_ptr.assign(n + 1, 0);
  for (int64_t e = 0; e < E; ++e) ++t.out_ptr[src[e] + 1];
  for (int64_t i = 0; i < n; ++i) t.out_ptr[i + 1] += t.out_ptr[i];
  t.out_edge.assign(E, 0);
  {
    std::vector<int64_t> fill(t.out_ptr.begin(), t.out_ptr.end() - 1);
    for (int64_t e = 0; e < E; ++e) t.out_edge[fill[src[e]]++] = e;
  }
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

// M = diag(out) - A factorised for one theta.
class BlockSolver {
 public:
  // Returns false when M is singular (a state that cannot leave, or a
  // closed class at this theta).
  bool factorise(const SccTopology& t, const NumericGraph& g) {
    topo_ = &t;
    graph_ = &g;
    const int64_t C = t.nr_components();
    lu_off_.assign(C + 1, 0);
    for (int64_t c = 0; c < C; ++c) {
      const int64_t s = t.scc_ptr[c + 1] - t.scc_ptr[c];
      lu_off_[c + 1] = lu_off_[c] + (s > 1 ? s * s : 0);
    }
    lu_.assign(lu_off_[C], 0.0);
    piv_.assign(t.n, 0);
    for (int64_t c = 0; c < C; ++c) {
      const int64_t s = t.scc_ptr[c + 1] - t.scc_ptr[c];
      if (s == 1) {
        const double d = g.out[t.order[t.scc_ptr[c]]];
        if (!(d > 0.0)) return false;
        continue;
      }
      double* a = lu_.data() + lu_off_[c];
      for (int64_t q = 0; q < s; ++q) {
        const int64_t i = t.order[t.scc_ptr[c] + q];
        a[q * s + q] += g.out[i];
        for (int64_t k = t.out_ptr[i]; k < t.out_ptr[i + 1]; ++k) {
          const int64_t e = t.out_edge[k];
          const int64_t j = g.dst[e];
          if (t.scc_of[j] == c) a[q * s + t.local[j]] -= g.w[e];
        }
      }
      if (!lu_factor(a, s, piv_.data() + t.scc_ptr[c])) return false;
    }
    return true;
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
        double r = b[i];
        for (int64_t k = t.out_ptr[i]; k < t.out_ptr[i + 1]; ++k) {
          const int64_t e = t.out_edge[k];
          const int64_t j = g.dst[e];
          if (t.scc_of[j] != c) r += g.w[e] * x[j];
        }
        rhs_[q] = r;
      }
      lu_solve(lu_.data() + lu_off_[c], s, piv_.data() + begin, rhs_.data());
      for (int64_t q = 0; q < s; ++q) x[t.order[begin + q]] = rhs_[q];
    }
  }

 private:
  static bool lu_factor(double* a, int64_t s, int64_t* piv) {
    for (int64_t k = 0; k < s; ++k) {
      int64_t p = k;
      double best = std::fabs(a[k * s + k]);
      for (int64_t r = k + 1; r < s; ++r)
        if (std::fabs(a[r * s + k]) > best) best = std::fabs(a[r * s + k]), p = r;
      if (!(best > 0.0)) return false;
      piv[k] = p;
      if (p != k)
        for (int64_t col = 0; col < s; ++col) std::swap(a[k * s + col], a[p * s + col]);
      const double inv = 1.0 / a[k * s + k];
      for (int64_t r = k + 1; r < s; ++r) {
        const double f = a[r * s + k] * inv;
        a[r * s + k] = f;
        if (f != 0.0)
          for (int64_t col = k + 1; col < s; ++col) a[r * s + col] -= f * a[k * s + col];
      }
    }
    return true;
  }

  static void lu_solve(const double* a, int64_t s, const int64_t* piv, double* x) {
    for (int64_t k = 0; k < s; ++k)
      if (piv[k] != k) std::swap(x[k], x[piv[k]]);
    for (int64_t r = 1; r < s; ++r)
      for (int64_t col = 0; col < r; ++col) x[r] -= a[r * s + col] * x[col];
    for (int64_t r = s - 1; r >= 0; --r) {
      for (int64_t col = r + 1; col < s; ++col) x[r] -= a[r * s + col] * x[col];
      x[r] /= a[r * s + r];
    }
  }

  const SccTopology* topo_ = nullptr;
  const NumericGraph* graph_ = nullptr;
  std::vector<double> lu_;
  std::vector<int64_t> lu_off_;
  std::vector<int64_t> piv_;
  mutable std::vector<double> rhs_;
};

}  // namespace ptdcore
