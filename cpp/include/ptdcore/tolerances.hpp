// ptdcore engine: numerical tolerances, the engine's copy of
// ptdcore/tolerances.py (a test reads this header and checks that both agree).
#pragma once

namespace ptdcore {

// alpha may sum to at most 1 + kAlphaSumTolerance.
inline constexpr double kAlphaSumTolerance = 1e-12;
// A discrete state's out-probabilities may sum to at most 1 + this, at any theta.
inline constexpr double kDiscreteSumTolerance = 1e-12;
// Relative tolerance when comparing the out-rate forms of one level.
inline constexpr double kLevelRateTolerance = 1e-12;

}  // namespace ptdcore
