// ptdcore engine: the immutable model structure and its validation.
//
// A structure is a phase-type model given as a graph of transient states.
// Every edge weight is linear in theta:
//     w_e(theta) = constant_e + sum_p coef_{e,p} * theta_p
// with the coefficients stored sparsely (CSR over edges). dst == -1 is the
// exit (absorption). The engine never keeps mutable global state.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ptdcore {

// What the engine evaluates at the requested times, besides the moments: an
// argument of each evaluation (one prepared model serves them all), not part
// of the structure.
enum class Output : int {
  kDensity = 0,   // density (continuous) or probability mass (discrete)
  kCdf = 1,       // P(T <= t)
  kSurvival = 2,  // P(T > t)
};

// An Output from its code (the bindings' integer); std::invalid_argument otherwise.
inline Output output_from_code(int64_t code) {
  if (code < 0 || code > 2)
    throw std::invalid_argument("output must be 0 (density), 1 (cdf) or 2 (sf), got " +
                                std::to_string(code));
  return static_cast<Output>(code);
}

struct Structure {
  int64_t nr_states = 0;
  int64_t nr_params = 0;
  bool discrete = false;
  std::vector<double> alpha;        // (nr_states)
  std::vector<int64_t> src;         // (E)
  std::vector<int64_t> dst;         // (E), -1 = exit
  std::vector<double> constant;     // (E)
  std::vector<int64_t> coef_ptr;    // (E + 1)
  std::vector<int64_t> coef_index;  // (nnz)
  std::vector<double> coef_value;   // (nnz)
  std::vector<double> rewards;      // (nr_states) or empty (no rewards)
  // A reward matrix (rewards is n x m row-major; continuous only): no times,
  // the moments output holds E[Y_j] (m) and E[Y_i Y_j] (m x m) of its columns.
  bool reward_matrix = false;
  // Epochs (epochs.hpp): a row is theta_0 .. theta_{E-1} (base_params() each)
  // and then the E - 1 breaks, so nr_params = E base_params() + E - 1.
  int64_t epochs = 1;

  int64_t base_params() const { return epochs > 0 ? (nr_params - epochs + 1) / epochs : 0; }

  // Reward columns m of a reward-matrix structure (rewards is n x m).
  int64_t reward_columns() const {
    return nr_states > 0 ? static_cast<int64_t>(rewards.size()) / nr_states : 0;
  }

  int64_t nr_edges() const { return static_cast<int64_t>(src.size()); }
  bool has_rewards() const { return !rewards.empty(); }
};

// A Structure from flat arrays (the layout of ptdcore.Structure): alpha
// (nr_states), src, dst, constant (nr_edges), coef_ptr (nr_edges + 1),
// coef_index and coef_value (coef_ptr[nr_edges]), rewards (nr_rewards, or
// null; n x m with reward_matrix). Every binding builds its Structure here; throws std::invalid_argument
// on sizes that cannot describe a model (validate() checks the rest).
inline Structure structure_from_arrays(int64_t nr_states, int64_t nr_params, bool discrete,
                                       const double* alpha, int64_t nr_edges, const int64_t* src,
                                       const int64_t* dst, const double* constant,
                                       const int64_t* coef_ptr, const int64_t* coef_index,
                                       const double* coef_value, const double* rewards,
                                       int64_t nr_rewards, bool reward_matrix,
                                       int64_t epochs) {
  if (nr_states < 1 || nr_edges < 0 || nr_params < 0)
    throw std::invalid_argument("negative or zero sizes");
  if (nr_rewards < 0) throw std::invalid_argument("nr_rewards must be >= 0");
  Structure s;
  s.nr_states = nr_states;
  s.nr_params = nr_params;
  s.discrete = discrete;
  s.alpha.assign(alpha, alpha + nr_states);
  s.src.assign(src, src + nr_edges);
  s.dst.assign(dst, dst + nr_edges);
  s.constant.assign(constant, constant + nr_edges);
  s.coef_ptr.assign(coef_ptr, coef_ptr + nr_edges + 1);
  const int64_t nnz = coef_ptr[nr_edges];
  if (nnz < 0) throw std::invalid_argument("coef_ptr must end at a non-negative count");
  s.coef_index.assign(coef_index, coef_index + nnz);
  s.coef_value.assign(coef_value, coef_value + nnz);
  if (rewards != nullptr) s.rewards.assign(rewards, rewards + nr_rewards);
  s.reward_matrix = reward_matrix;
  s.epochs = epochs;
  return s;
}

// Memory-safety guard, not model validation: throws std::invalid_argument
// when the arrays could make the engine read out of bounds (lengths, index
// ranges). Model validation (finite values, alpha in [0, 1], rewards,
// reachability of absorption, ...) is done once, in Python, by
// ptdcore.validation when a Structure is made; values it would reject that
// reach the engine by another road (the C ABI) give NaN outputs, never a
// crash.
inline void validate(const Structure& s) {
  auto fail = [](const std::string& msg) { throw std::invalid_argument(msg); };
  const int64_t n = s.nr_states;
  const int64_t E = s.nr_edges();
  if (n < 1) fail("structure has no states (nr_states must be >= 1)");
  if (s.nr_params < 0) fail("nr_params must be >= 0");
  if (s.epochs < 1) fail("epochs must be >= 1");
  if (s.nr_params < s.epochs - 1 || (s.nr_params - s.epochs + 1) % s.epochs != 0)
    fail("nr_params must be epochs x (parameters per epoch) + epochs - 1");
  if (static_cast<int64_t>(s.alpha.size()) != n)
    fail("alpha has length " + std::to_string(s.alpha.size()) + ", expected nr_states = " +
         std::to_string(n));
  if (static_cast<int64_t>(s.dst.size()) != E || static_cast<int64_t>(s.constant.size()) != E)
    fail("edge arrays src, dst and constant must have the same length");
  if (static_cast<int64_t>(s.coef_ptr.size()) != E + 1)
    fail("coef_ptr must have length nr_edges + 1");
  if (s.coef_index.size() != s.coef_value.size())
    fail("coef_index and coef_value must have the same length");
  if (s.coef_ptr[0] != 0 || s.coef_ptr[E] != static_cast<int64_t>(s.coef_index.size()))
    fail("coef_ptr must start at 0 and end at the number of coefficients");
  for (int64_t e = 0; e < E; ++e) {
    const std::string where = "edge " + std::to_string(e);
    if (s.src[e] < 0 || s.src[e] >= n) fail(where + ": source state out of range");
    if (s.dst[e] < -1 || s.dst[e] >= n) fail(where + ": destination state out of range");
    if (!s.discrete && s.dst[e] == s.src[e])
      fail(where + ": self-loop on state " + std::to_string(s.src[e]) +
           " in a continuous model (the diagonal is implied)");
    if (s.coef_ptr[e + 1] < s.coef_ptr[e]) fail("coef_ptr must be non-decreasing");
    for (int64_t k = s.coef_ptr[e]; k < s.coef_ptr[e + 1]; ++k)
      if (s.coef_index[k] < 0 || s.coef_index[k] >= s.base_params())
        fail(where + ": coefficient parameter index out of range");
  }
  if (s.reward_matrix) {
    if (s.discrete) fail("reward moments are not supported for discrete models");
    if (s.rewards.empty() || static_cast<int64_t>(s.rewards.size()) % n != 0)
      fail("reward moments need rewards of shape (nr_states, m), m >= 1");
  } else if (s.has_rewards()) {
    if (s.discrete) fail("rewards are not supported for discrete models");
    if (static_cast<int64_t>(s.rewards.size()) != n)
      fail("rewards has length " + std::to_string(s.rewards.size()) + ", expected nr_states = " +
           std::to_string(n));
  }
}

}  // namespace ptdcore
