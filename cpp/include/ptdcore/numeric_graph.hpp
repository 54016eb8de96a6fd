// ptdcore engine: the model evaluated at one theta.
//
// A NumericGraph holds edge weights (and, optionally, their gradients in
// theta, dense over the P parameters) for one parameter vector. Internal
// edges carry the off-diagonal rates/probabilities; exits and the total
// out-weight of every state are kept per state. Self-loops of discrete
// models are not stored: the remainder 1 - out_i stays in state i.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ptdcore/structure.hpp"
#include "ptdcore/tolerances.hpp"

namespace ptdcore {

struct NumericGraph {
  int64_t n = 0;
  int64_t P = 0;
  bool with_grad = false;
  std::vector<int64_t> src, dst;  // internal edges only (no exits, no self-loops)
  std::vector<double> w, g;       // weights (E) and gradients (E x P)
  std::vector<double> alpha, dalpha;  // (n), (n x P); dalpha empty means zero
  std::vector<double> out, dout;      // total out-weight per state (n), (n x P)
  std::vector<double> exit, dexit;    // exit weight per state (n), (n x P)
  // Second derivatives (E x P x P, n x P x P), empty meaning zero: only the
  // reward transformation's rational weights have them (Hessian path).
  std::vector<double> g2, d2alpha, d2out, d2exit;

  int64_t nr_edges() const { return static_cast<int64_t>(src.size()); }
};

// The uniformisation rate: the largest total out-weight (0 when no state leaves).
// The edges grouped by source (CSR): the edges out of state i are
// out_edge[out_ptr[i] .. out_ptr[i + 1]), in their original order.
inline void edges_by_source(int64_t n, const std::vector<int64_t>& src,
                            std::vector<int64_t>& out_ptr, std::vector<int64_t>& out_edge) {
  const int64_t E = static_cast<int64_t>(src.size());
  out_ptr.assign(n + 1, 0);
  for (int64_t e = 0; e < E; ++e) ++out_ptr[src[e] + 1];
  for (int64_t i = 0; i < n; ++i) out_ptr[i + 1] += out_ptr[i];
  out_edge.assign(E, 0);
  std::vector<int64_t> fill(out_ptr.begin(), out_ptr.end() - 1);
  for (int64_t e = 0; e < E; ++e) out_edge[fill[src[e]]++] = e;
}

// Closes `reached` (states already marked; `stack` holds them on entry) under the
// edges `follow(edge)` accepts (CSR by source: edges_by_source).
template <class Follow>
void close_reached(const std::vector<int64_t>& out_ptr, const std::vector<int64_t>& out_edge,
                   const std::vector<int64_t>& dst, Follow follow, std::vector<char>& reached,
                   std::vector<int64_t>& stack) {
  while (!stack.empty()) {
    const int64_t i = stack.back();
    stack.pop_back();
    for (int64_t k = out_ptr[i]; k < out_ptr[i + 1]; ++k) {
      const int64_t edge = out_edge[k], j = dst[edge];
      if (!reached[j] && follow(edge)) reached[j] = 1, stack.push_back(j);
    }
  }
}

inline double max_out_rate(const NumericGraph& g) {
  double lambda = 0.0;
  for (int64_t i = 0; i < g.n; ++i) lambda = std::max(lambda, g.out[i]);
  return lambda;
}

// Fills `graph` with the model at theta. Returns false when theta is not
// finite, makes a weight negative or non-finite, or (discrete) makes the
// out-probabilities of a state sum above 1: the caller then reports NaN.
// With `offset`, the weights read theta[offset + index] and their gradients
// fill those columns of the P = nr_params (one epoch of an epoch structure).
inline bool build_numeric_graph(const Structure& s, const double* theta, bool with_grad,
                                NumericGraph& graph, int64_t offset = 0) {
  const int64_t n = s.nr_states, P = s.nr_params, E = s.nr_edges();
  for (int64_t p = 0; p < P; ++p)
    if (!std::isfinite(theta[p])) return false;
  graph.n = n;
  graph.P = P;
  graph.with_grad = with_grad;
  graph.src.clear();
  graph.dst.clear();
  graph.w.clear();
  graph.g.clear();
  graph.alpha.assign(s.alpha.begin(), s.alpha.end());
  graph.dalpha.clear();
  graph.out.assign(n, 0.0);
  graph.exit.assign(n, 0.0);
  graph.dout.assign(with_grad ? n * P : 0, 0.0);
  graph.dexit.assign(with_grad ? n * P : 0, 0.0);
  std::vector<double> self_loop(s.discrete ? n : 0, 0.0);
  std::vector<double> grad(P, 0.0);
  for (int64_t e = 0; e < E; ++e) {
    double w = s.constant[e];
    if (with_grad) std::fill(grad.begin(), grad.end(), 0.0);
    for (int64_t k = s.coef_ptr[e]; k < s.coef_ptr[e + 1]; ++k) {
      w += s.coef_value[k] * theta[offset + s.coef_index[k]];
      if (with_grad) grad[offset + s.coef_index[k]] += s.coef_value[k];
    }
    if (!std::isfinite(w) || w < 0.0) return false;
    const int64_t i = s.src[e], j = s.dst[e];
    if (j == i) {  // discrete self-loop: implied by the remainder
      self_loop[i] += w;
      continue;
    }
    graph.out[i] += w;
    if (with_grad)
      for (int64_t p = 0; p < P; ++p) graph.dout[i * P + p] += grad[p];
    if (j < 0) {
      graph.exit[i] += w;
      if (with_grad)
        for (int64_t p = 0; p < P; ++p) graph.dexit[i * P + p] += grad[p];
      continue;
    }
    graph.src.push_back(i);
    graph.dst.push_back(j);
    graph.w.push_back(w);
    if (with_grad) graph.g.insert(graph.g.end(), grad.begin(), grad.end());
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(graph.out[i])) return false;
    if (s.discrete && graph.out[i] + self_loop[i] > 1.0 + kDiscreteSumTolerance) return false;
  }
  return true;
}

}  // namespace ptdcore
