// ptdcore engine: Poisson weights for uniformisation.
//
// The weights exp(-m) m^k / k! are built outward from the mode by the
// recurrences w_{k+1} = w_k m / (k+1) and w_{k-1} = w_k k / m, starting
// from 1 at the mode, and normalised by their sum (the idea of Fox and
// Glynn, 1988). Nothing under- or overflows for any m. Kept are the terms
// down to kPoissonTailCutoff of the mode weight on the left, and on the
// right down to kPoissonCutoff (kPoissonTailCutoff when m < 100). The
// neglected mass on the right is then below ~1e-40; the long left tail
// keeps far-tail densities (which come from the first few terms of the
// series) relatively accurate down to ~1e-300, at the cost of summing,
// not computing, more terms.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace ptdcore {

struct PoissonWindow {
  int64_t left = 0;             // first k kept
  std::vector<double> weights;  // weights for k = left, left + 1, ...
  int64_t right() const { return left + static_cast<int64_t>(weights.size()) - 1; }
};

inline constexpr double kPoissonCutoff = 1e-40;
inline constexpr double kPoissonTailCutoff = 1e-300;
inline constexpr double kPoissonShortWindow = 100.0;

// Window of Poisson(m) weights, m >= 0 and finite.
inline PoissonWindow poisson_window(double m) {
  PoissonWindow win;
  if (m <= 0.0) {
    win.weights.assign(1, 1.0);
    return win;
  }
  const int64_t mode = static_cast<int64_t>(std::floor(m));
  std::vector<double> left_part;  // mode-1, mode-2, ... (reversed later)
  for (int64_t k = mode; k > 0;) {
    const double prev = left_part.empty() ? 1.0 : left_part.back();
    const double w = prev * static_cast<double>(k) / m;
    if (w < kPoissonTailCutoff) break;
    left_part.push_back(w);
    --k;
  }
  std::vector<double> right_part{1.0};  // mode, mode+1, ...
  const double right_cutoff = m < kPoissonShortWindow ? kPoissonTailCutoff : kPoissonCutoff;
  for (int64_t k = mode;; ++k) {
    const double w = right_part.back() * m / static_cast<double>(k + 1);
    if (w < right_cutoff) break;
    right_part.push_back(w);
  }
  win.left = mode - static_cast<int64_t>(left_part.size());
  win.weights.reserve(left_part.size() + right_part.size());
  win.weights.assign(left_part.rbegin(), left_part.rend());
  win.weights.insert(win.weights.end(), right_part.begin(), right_part.end());
  // Sum smallest first for an accurate normaliser.
  double total = 0.0;
  const int64_t nw = static_cast<int64_t>(win.weights.size());
  int64_t lo = 0, hi = nw - 1;
  while (lo <= hi) {
    if (win.weights[lo] <= win.weights[hi]) total += win.weights[lo++];
    else total += win.weights[hi--];
  }
  for (double& w : win.weights) w /= total;
  return win;
}

}  // namespace ptdcore
