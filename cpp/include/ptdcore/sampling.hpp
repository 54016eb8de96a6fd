// ptdcore engine: exact draws of T (or of Y = int r(X_t) dt with rewards) by
// simulating the embedded jump chain: no time grid, no approximation.
//
// Continuous: in state i wait Exp(out_i) (adding r_i times the wait to Y with
// rewards), then jump along an out-edge or to absorption with probability
// weight / out_i. Discrete: stay in i for a Geometric(out_i) number of steps
// (the self-loop), then jump likewise. A draw starts in state i with
// probability alpha_i and is 0 with probability 1 - sum(alpha). A draw that
// reaches a state from which absorption is impossible at this theta is +inf.
//
// Reproducible and thread-safe: draws are generated in blocks of kSampleBlock,
// block b from its own xoshiro256++ stream seeded by splitmix64 of (seed, b),
// so the result depends on the seed only, never on the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ptdcore/batch.hpp"
#include "ptdcore/numeric_graph.hpp"
#include "ptdcore/structure.hpp"

namespace ptdcore {

inline constexpr int64_t kSampleBlock = 8192;

// splitmix64: seeds the per-block generators.
inline uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// xoshiro256++ (Blackman & Vigna), with uniforms in (0, 1].
class Xoshiro256 {
 public:
  Xoshiro256(uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL);
    for (auto& word : s_) word = splitmix64(x);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[0] + s_[3], 23) + s_[0];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform on (0, 1]: never 0, so -log(u) is finite.
  double uniform() { return (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// The jump chain at one theta: per state, cumulative jump probabilities over its
// targets (-1: absorption), the total out-weight, and whether absorption can be
// reached from it.
struct JumpChain {
  bool discrete = false;
  std::vector<int64_t> ptr, target;
  std::vector<double> cum, out, reward;
  std::vector<double> alpha_cum;  // cumulative alpha
  std::vector<char> absorbable;
};

// False when theta is invalid (a weight negative or not finite).
inline bool build_jump_chain(const Structure& s, const double* theta, JumpChain& c,
                             int64_t offset = 0) {
  NumericGraph g;
  if (!build_numeric_graph(s, theta, false, g, offset)) return false;
  const int64_t n = g.n;
  c.discrete = s.discrete;
  c.out = g.out;
  c.reward = s.has_rewards() ? s.rewards : std::vector<double>(n, 1.0);
  c.ptr.assign(n + 1, 0);
  for (int64_t e = 0; e < g.nr_edges(); ++e) ++c.ptr[g.src[e] + 1];
  for (int64_t i = 0; i < n; ++i) c.ptr[i + 1] += c.ptr[i] + (g.exit[i] > 0.0 ? 1 : 0);
  c.target.assign(c.ptr[n], 0);
  c.cum.assign(c.ptr[n], 0.0);
  std::vector<int64_t> fill(c.ptr.begin(), c.ptr.end() - 1);
  std::vector<double> weight(c.ptr[n], 0.0);
  for (int64_t e = 0; e < g.nr_edges(); ++e) {
    const int64_t q = fill[g.src[e]]++;
    c.target[q] = g.dst[e];
    weight[q] = g.w[e];
  }
  for (int64_t i = 0; i < n; ++i) {
    if (g.exit[i] > 0.0) {
      const int64_t q = fill[i]++;
      c.target[q] = -1;
      weight[q] = g.exit[i];
    }
    double acc = 0.0;
    for (int64_t q = c.ptr[i]; q < c.ptr[i + 1]; ++q) {
      acc += weight[q];
      c.cum[q] = acc / g.out[i];
    }
    if (c.ptr[i + 1] > c.ptr[i]) c.cum[c.ptr[i + 1] - 1] = 1.0;  // no rounding gap at the end
  }
  // Absorbable: reverse reachability from the exit through positive weights.
  c.absorbable.assign(n, 0);
  std::vector<std::vector<int64_t>> preds(n);
  std::vector<int64_t> stack;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t q = c.ptr[i]; q < c.ptr[i + 1]; ++q) {
      if (weight[q] <= 0.0) continue;
      if (c.target[q] < 0) {
        if (!c.absorbable[i]) c.absorbable[i] = 1, stack.push_back(i);
      } else {
        preds[c.target[q]].push_back(i);
      }
    }
  while (!stack.empty()) {
    const int64_t j = stack.back();
    stack.pop_back();
    for (int64_t i : preds[j])
      if (!c.absorbable[i]) c.absorbable[i] = 1, stack.push_back(i);
  }
  c.alpha_cum.assign(n, 0.0);
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) c.alpha_cum[i] = (acc += g.alpha[i]);
  return true;
}

// The state the chain jumps to from i (-1: absorption).
inline int64_t jump(const JumpChain& c, int64_t i, Xoshiro256& rng) {
  const double u = rng.uniform();
  int64_t q = c.ptr[i];
  while (q + 1 < c.ptr[i + 1] && c.cum[q] < u) ++q;
  return c.target[q];
}

// One draw.
inline double draw_one(const JumpChain& c, Xoshiro256& rng) {
  const int64_t n = static_cast<int64_t>(c.out.size());
  // initial state (or the atom at 0)
  const double u0 = rng.uniform();
  int64_t i = std::lower_bound(c.alpha_cum.begin(), c.alpha_cum.end(), u0) - c.alpha_cum.begin();
  if (i == n) return 0.0;
  double total = 0.0;
  while (true) {
    if (!c.absorbable[i]) return std::numeric_limits<double>::infinity();
    const double rate = c.out[i];
    if (c.discrete) {  // steps in i: Geometric(rate) on {1, 2, ...}
      const double stay = 1.0 - rate;
      total += stay > 0.0 ? std::floor(std::log(rng.uniform()) / std::log(stay)) + 1.0 : 1.0;
    } else {
      total += c.reward[i] * (-std::log(rng.uniform()) / rate);
    }
    i = jump(c, i, rng);
    if (i < 0) return total;
  }
}

// One draw of T with epochs (chains[e] for epoch e, breaks b_0 < ... ): the
// holding hazard is memoryless, so a sojourn that outlasts its epoch continues
// at the break with what is left of it (continuous: the unit-rate hazard;
// discrete: a fresh geometric count, the steps being independent).
inline double draw_one_epochs(const std::vector<JumpChain>& chains, const double* breaks,
                              Xoshiro256& rng) {
  const JumpChain& c0 = chains[0];
  const int64_t n = static_cast<int64_t>(c0.out.size()), E = static_cast<int64_t>(chains.size());
  const double u0 = rng.uniform();
  int64_t i = std::lower_bound(c0.alpha_cum.begin(), c0.alpha_cum.end(), u0) - c0.alpha_cum.begin();
  if (i == n) return 0.0;
  double t = 0.0, hazard = -std::log(rng.uniform());
  int64_t e = 0;
  while (true) {
    const JumpChain& c = chains[e];
    const bool last = e + 1 == E;
    if (last && !c.absorbable[i]) return std::numeric_limits<double>::infinity();
    const double rate = c.out[i];
    double leave;  // the time of the next jump in this epoch, if it comes before the break
    if (c0.discrete) {
      const double stay = 1.0 - rate;
      leave = t + (stay > 0.0 ? std::floor(std::log(rng.uniform()) / std::log(stay)) + 1.0 : 1.0);
      if (!last && leave > breaks[e]) {  // no jump from the steps before the break
        t = breaks[e];
        ++e;
        continue;
      }
    } else {
      leave = rate > 0.0 ? t + hazard / rate : std::numeric_limits<double>::infinity();
      if (!last && !(leave < breaks[e])) {
        hazard -= (breaks[e] - t) * rate;
        t = breaks[e];
        ++e;
        continue;
      }
      hazard = -std::log(rng.uniform());
    }
    t = leave;
    i = jump(c, i, rng);
    if (i < 0) return t;
  }
}

// count draws at one theta (one row: with epochs, theta_0 .. theta_{E-1} and
// the breaks) into out; NaN everywhere for an invalid row.
inline void sample_draws(const Structure& s, const double* theta, int64_t count, uint64_t seed,
                         double* out, int threads = 0) {
  const int64_t E = s.epochs, Pb = s.base_params();
  std::vector<JumpChain> chains(E);
  bool valid = true;
  for (int64_t e = 0; e < E && valid; ++e) valid = build_jump_chain(s, theta, chains[e], e * Pb);
  const double* breaks = theta + E * Pb;
  valid = valid && valid_breaks(s, breaks);
  if (!valid) {
    for (int64_t k = 0; k < count; ++k) out[k] = std::numeric_limits<double>::quiet_NaN();
    return;
  }
  const int64_t blocks = (count + kSampleBlock - 1) / kSampleBlock;
  parallel_rows(blocks, threads, [&](int64_t b, Workspace&) {
    Xoshiro256 rng(seed, static_cast<uint64_t>(b));
    const int64_t end = std::min(count, (b + 1) * kSampleBlock);
    for (int64_t k = b * kSampleBlock; k < end; ++k)
      out[k] = E > 1 ? draw_one_epochs(chains, breaks, rng) : draw_one(chains[0], rng);
  });
}

}  // namespace ptdcore
