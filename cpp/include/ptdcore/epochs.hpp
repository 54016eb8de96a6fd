// ptdcore engine: time-inhomogeneous models, piecewise constant in time (epochs).
//
// A structure with E epochs takes the row theta_0 .. theta_{E-1} (P values
// each) followed by the breaks b_0 < ... < b_{E-2}. Epoch e covers
// [b_{e-1}, b_e) (b_{-1} = 0, b_{E-1} = inf; discrete: the steps from b_{e-1}
// on) and uses theta_e. With pi_e the state vector at the start of epoch e:
//     f(t) = pi_e exp(S_e (t - b_{e-1})) s_e,   pi_{e+1} = pi_e exp(S_e D_e),
// D_e = b_e - b_{e-1}: each epoch is the homogeneous functional (series or
// ladder, method.hpp) started from pi_e, and pi_{e+1} its state vector at D_e.
//
// Derivatives are carried in forward mode over all E P + E - 1 entries of
// the row, in the local time of each epoch. Moving b = b_{e-1} moves the
// state at the break (d pi_e / db = pi_e S_{e-1}) and shifts epoch e's local
// times (d tau / db = -1, worth -pi_e S_e since S_e commutes with its
// exponential), so column b of epoch e's starting tangent is
// pi_e (S_{e-1} - S_e); propagated over the fixed local durations this gives
// every later derivative exactly. (Discrete breaks are whole steps: their
// columns are NaN.)
//
// Moments (continuous): E[T^k] = sum_e int_0^{D_e} (a_e + tau)^k pi_e
// exp(S_e tau) s_e dtau (a_e = b_{e-1}; the last D is infinite). With
// U = (-S_e)^{-1} and pi' = pi_{e+1}, integrating by parts,
//     J_j = int_0^D tau^j pi e^{S tau} s dtau:  J_0 = |pi| - |pi'|,
//     J_j = -D^j |pi'| + j q_{j-1} 1,  q_0 = (pi - pi') U,
//     q_j = (-D^j pi' + j q_{j-1}) U   (transposed solves),
// and for the last epoch J_j = j! pi U^j 1. The local-time tangents differ
// from the true derivative in b_{e-1} by the shift of the whole epoch, whose
// effect is -a^k pi_e . s_e (the integrand at the start); b_e adds
// b_e^k pi' . s_e (at the end). Discrete models: discrete_epoch_sums.
//
// The code is cut by concern: epoch_state.hpp (graphs, breaks, state at a
// break), epoch_moments.hpp (E[T^k]), epoch_density.hpp (density, cdf, sf),
// epoch_reward_moments.hpp (reward matrices and E[Y^k]).
#pragma once

#include "ptdcore/epoch_density.hpp"
#include "ptdcore/epoch_moments.hpp"
#include "ptdcore/epoch_reward_moments.hpp"
#include "ptdcore/epoch_state.hpp"
