// Engine self-test without Python, for sanitizer builds (nox -s asan).
// Checks against closed forms; exits non-zero on the first failure.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

#include "ptdcore/c_api.h"
#include "ptdcore/engine.hpp"
#include "ptdcore/sampling.hpp"

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

bool close(double a, double b, double rtol) { return std::fabs(a - b) <= rtol * std::fabs(b); }

ptdcore::Structure chain(int k, bool discrete) {  // Erlang(k) or negative binomial(k)
  ptdcore::Structure s;
  s.nr_states = k;
  s.nr_params = 1;
  s.discrete = discrete;
  s.alpha.assign(k, 0.0);
  s.alpha[0] = 1.0;
  for (int i = 0; i < k; ++i) {
    s.src.push_back(i);
    s.dst.push_back(i + 1 < k ? i + 1 : -1);
    s.constant.push_back(0.0);
    s.coef_index.push_back(0);
    s.coef_value.push_back(1.0);
  }
  s.coef_ptr.resize(k + 1);
  for (int i = 0; i <= k; ++i) s.coef_ptr[i] = i;
  return s;
}

}  // namespace

int main() {
  using ptdcore::Outputs;
  {  // Erlang(3, rate 2): pdf, moments, Jacobians, a NaN row
    ptdcore::PreparedModel m(chain(3, false));
    const double theta[2] = {2.0, -1.0};
    const double times[3] = {0.1, 1.0, 4.0};
    std::vector<double> pmf(6), mom(4), dpmf(6), dmom(4);
    ptdcore::evaluate_batch(m, theta, 2, times, 3, 2, Outputs{pmf.data(), mom.data(), dpmf.data(), dmom.data()}, 2);
    for (int q = 0; q < 3; ++q) {
      const double t = times[q], f = 4.0 * t * t * std::exp(-2.0 * t);  // 2^3 t^2 e^{-2t} / 2
      check(close(pmf[q], f, 1e-13), "Erlang pdf");
      check(close(dpmf[q], f * (3.0 / 2.0 - t), 1e-12), "Erlang dpdf");
    }
    check(close(mom[0], 1.5, 1e-15) && close(mom[1], 3.0, 1e-15), "Erlang moments");
    check(close(dmom[0], -0.75, 1e-15), "Erlang dmoments");
    check(std::isnan(pmf[3]) && std::isnan(mom[2]) && std::isnan(dmom[3]), "negative theta -> NaN row");
  }
  {  // negative binomial: P(N = n) = C(n-1, 2) p^3 (1-p)^(n-3)
    ptdcore::PreparedModel m(chain(3, true));
    const double theta[1] = {0.4};
    const double times[4] = {0, 3, 4, 10};
    std::vector<double> pmf(4), mom(1);
    ptdcore::evaluate_batch(m, theta, 1, times, 4, 1, Outputs{pmf.data(), mom.data(), nullptr, nullptr}, 1);
    check(pmf[0] == 0.0, "P(N=0)");
    check(close(pmf[1], 0.064, 1e-14), "P(N=3)");
    check(close(pmf[3], 36.0 * 0.064 * std::pow(0.6, 7), 1e-13), "P(N=10)");
    check(close(mom[0], 7.5, 1e-14), "E[N]");
  }
  {  // a cycle with rewards, one of them zero: E[Y] by hand
    ptdcore::Structure s;
    s.nr_states = 2;
    s.nr_params = 0;
    s.alpha = {1.0, 0.0};
    s.src = {0, 1, 1};
    s.dst = {1, 0, -1};
    s.constant = {1.0, 1.0, 1.0};
    s.coef_ptr = {0, 0, 0, 0};
    s.rewards = {2.0, 0.0};
    ptdcore::PreparedModel m(s);
    const double times[2] = {0.5, 3.0};
    std::vector<double> pmf(2), mom(1);
    ptdcore::evaluate_batch(m, nullptr, 1, times, 2, 1, Outputs{pmf.data(), mom.data(), nullptr, nullptr}, 1);
    // Visits to state 0 ~ Geometric(1/2) (mean 2), each Exp(1) long with reward 2: E[Y] = 4,
    // and Y ~ Exp(1/4): the density is exp(-t/4)/4.
    check(close(mom[0], 4.0, 1e-14), "reward moment");
    check(close(pmf[0], std::exp(-0.125) / 4.0, 1e-13) && close(pmf[1], std::exp(-0.75) / 4.0, 1e-13),
          "reward density with a zero reward");
  }
  {  // stiff and long-time: the squaring ladder (Erlang(2, 1e6) at t = 5 and 20; a
     // geometric PMF at ten million steps; a closed cycle at theta = 0)
    ptdcore::PreparedModel m(chain(2, false));
    const double theta[1] = {1e6};
    const double times[2] = {5e-6, 2e-5};
    double pmf[2], mom[1], dpmf[2], dmom[1];
    ptdcore::Workspace ws;
    m.evaluate_rows(theta, 0, 1, times, 2, 1, Outputs{pmf, mom, dpmf, dmom}, ws);
    for (int q = 0; q < 2; ++q) {
      const double x = 1e6 * times[q];
      check(close(pmf[q], 1e6 * x * std::exp(-x), 1e-12), "stiff Erlang pdf");
      check(close(dpmf[q], x * std::exp(-x) * (2.0 - x), 1e-10), "stiff Erlang dpdf");
    }
    ptdcore::PreparedModel geo(chain(1, true));
    const double p[1] = {1e-6};
    const double steps[1] = {1e7};
    geo.evaluate_rows(p, 0, 1, steps, 1, 1, Outputs{pmf, mom, dpmf, dmom}, ws);
    check(close(pmf[0], std::exp((1e7 - 1.0) * std::log1p(-1e-6)) * 1e-6, 1e-11), "long geometric");
    ptdcore::Structure cyc;  // 0 <-> 1 at rate 1, 1 -> exit at theta
    cyc.nr_states = 2;
    cyc.nr_params = 1;
    cyc.alpha = {1.0, 0.0};
    cyc.src = {0, 1, 1};
    cyc.dst = {1, 0, -1};
    cyc.constant = {1.0, 1.0, 0.0};
    cyc.coef_ptr = {0, 0, 0, 1};
    cyc.coef_index = {0};
    cyc.coef_value = {1.0};
    ptdcore::PreparedModel closed(cyc);
    const double zero[1] = {0.0};
    closed.evaluate_rows(zero, 0, 1, times, 1, 1, Outputs{pmf, mom, dpmf, dmom}, ws);
    check(std::isinf(mom[0]) && pmf[0] == 0.0, "closed class: inf moments, zero density");
  }
  {  // one prepared model gives the density, cdf and sf: the output is per call
    ptdcore::PreparedModel m(chain(1, false));
    const double theta[1] = {1.5};
    const double times[2] = {0.2, 3.0};
    double values[3][2], mom[1];
    for (int what = 0; what < 3; ++what) {
      Outputs out{values[what], mom, nullptr, nullptr};
      out.what = static_cast<ptdcore::Output>(what);
      ptdcore::evaluate_batch(m, theta, 1, times, 2, 1, out, 1);
    }
    for (int q = 0; q < 2; ++q) {
      const double sf = std::exp(-1.5 * times[q]);
      check(close(values[0][q], 1.5 * sf, 1e-14), "exponential pdf");
      check(close(values[1][q], -std::expm1(-1.5 * times[q]), 1e-14), "exponential cdf");
      check(close(values[2][q], sf, 1e-14), "exponential sf");
    }
  }
  {  // stiff derivatives, refined in double-double (refined_solves.hpp): a fast state
     // before a slow one, and a fast 2-cycle's reward means (full layout and means alone)
    ptdcore::Structure s = chain(2, false);
    s.nr_params = 2;
    s.coef_index = {0, 1};
    ptdcore::PreparedModel m(s);
    const double theta[2] = {1e7, 1.0}, a = 1e7;
    double mom[2], dmom[4], d2mom[8], none[1];
    ptdcore::Workspace ws;
    m.evaluate_rows(theta, 0, 1, nullptr, 0, 2, Outputs{none, mom, none, dmom, none, d2mom}, ws);
    check(close(dmom[0], -1.0 / (a * a), 1e-14) && close(dmom[1], -1.0, 1e-15) &&
              close(d2mom[0], 2.0 / (a * a * a), 1e-14),
          "refined moment derivatives");
    ptdcore::Structure c;  // 0 <-> 1 at rate theta, exits 1 and 2, rewards the identity
    c.nr_states = 2;
    c.nr_params = 1;
    c.alpha = {1.0, 0.0};
    c.src = {0, 1, 0, 1};
    c.dst = {1, 0, -1, -1};
    c.constant = {0.0, 0.0, 1.0, 2.0};
    c.coef_index = {0, 0};
    c.coef_value = {1.0, 1.0};
    c.coef_ptr = {0, 1, 2, 2, 2};
    c.rewards = {1.0, 0.0, 0.0, 1.0};
    c.reward_matrix = true;
    ptdcore::PreparedModel cm(c);
    const double rate[1] = {1e6}, det = 3.0 * 1e6 + 2.0;
    double full[6], dfull[6], means[2], dmeans[2];
    cm.evaluate_rows(rate, 0, 1, nullptr, 0, 6, Outputs{none, full, none, dfull}, ws);
    cm.evaluate_rows(rate, 0, 1, nullptr, 0, 2, Outputs{none, means, none, dmeans}, ws);
    check(close(dfull[0], -4.0 / (det * det), 1e-13) && close(dfull[1], 2.0 / (det * det), 1e-13) &&
              close(dmeans[0], -4.0 / (det * det), 1e-13) &&
              close(dmeans[1], 2.0 / (det * det), 1e-13),
          "refined reward mean derivatives");
    ptdcore::Structure ce = c;  // the same chain over two equal epochs (break 0.5): the two
    ce.rewards.clear();         // epochs' columns of dE[T]/dtheta add up to -2 / det^2
    ce.reward_matrix = false;
    ce.epochs = 2;
    ce.nr_params = 3;  // theta_0, theta_1, b
    ptdcore::PreparedModel em(ce);
    const double row[3] = {1e6, 1e6, 0.5};
    double emom[1], demom[3];
    em.evaluate_rows(row, 0, 1, nullptr, 0, 1, Outputs{none, emom, none, demom}, ws);
    check(close(emom[0], (2.0 * 1e6 + 2.0) / det, 1e-14) &&
              close(demom[0] + demom[1], -2.0 / (det * det), 1e-11),
          "refined epoch moment derivatives");
  }
  {  // Hessians: Erlang(3, theta) against the closed form, and a zero-reward model
    ptdcore::PreparedModel m(chain(3, false));
    const double theta[1] = {2.0};
    const double times[2] = {0.4, 1.5};
    double pmf[2], mom[1], dpmf[2], dmom[1], d2pmf[2], d2mom[1];
    ptdcore::Workspace ws;
    m.evaluate_rows(theta, 0, 1, times, 2, 1, Outputs{pmf, mom, dpmf, dmom, d2pmf, d2mom}, ws);
    for (int q = 0; q < 2; ++q) {
      const double t = times[q], th = 2.0;
      const double expected = t * t / 2.0 * (6 * th - 6 * th * th * t + th * th * th * t * t) *
                              std::exp(-th * t);
      check(close(d2pmf[q], expected, 1e-11), "Erlang d2pdf");
    }
    check(close(d2mom[0], 6.0 / 8.0, 1e-13), "Erlang d2 E[T]");
    ptdcore::Structure r = chain(3, false);
    r.rewards = {1.0, 0.0, 2.0};
    ptdcore::PreparedModel rm(r);
    rm.evaluate_rows(theta, 0, 1, times, 2, 1, Outputs{pmf, mom, dpmf, dmom, d2pmf, d2mom}, ws);
    check(std::isfinite(d2pmf[0]) && std::isfinite(d2pmf[1]) && std::isfinite(d2mom[0]),
          "zero-reward Hessians are finite");
  }
  {  // epochs: an exponential whose rate changes at b (density, cdf, moments, Jacobians)
    ptdcore::Structure s = chain(1, false);
    s.epochs = 2;
    s.nr_params = 3;  // theta_0, theta_1, b
    ptdcore::PreparedModel m(s);
    const double row[3] = {1.3, 0.4, 0.7};
    const double times[2] = {0.5, 2.0};
    double pmf[2], mom[2], dpmf[6], dmom[6];
    ptdcore::evaluate_batch(m, row, 1, times, 2, 2, Outputs{pmf, mom, dpmf, dmom}, 1);
    const double s_b = std::exp(-1.3 * 0.7);
    check(close(pmf[0], 1.3 * std::exp(-0.65), 1e-14), "epoch density, first epoch");
    check(close(pmf[1], 0.4 * s_b * std::exp(-0.4 * 1.3), 1e-14), "epoch density, second epoch");
    check(close(mom[0], (1.0 - s_b) / 1.3 + s_b / 0.4, 1e-13), "epoch E[T]");
    // d f(2) / d b = f(2) (0.4 - 1.3)
    check(close(dpmf[3 + 2], pmf[1] * (0.4 - 1.3), 1e-12), "epoch d density / d break");
    check(std::isfinite(dmom[0]) && std::isfinite(dmom[5]), "epoch moment Jacobian");
    // reward moments over the two epochs (one column, reward 2): E[Y] = 2 E[T]
    ptdcore::Structure r = s;
    r.rewards = {2.0};
    r.reward_matrix = true;
    ptdcore::PreparedModel rm(r);
    double rmom[2], drmom[6], none[1];
    ptdcore::evaluate_batch(rm, row, 1, times, 0, 2, Outputs{none, rmom, none, drmom}, 1);
    check(close(rmom[0], 2.0 * mom[0], 1e-13) && close(rmom[1], 4.0 * mom[1], 1e-13),
          "reward moments over epochs");
    ptdcore::Structure y = s;  // E[Y^k] of that reward (powers of Y over epochs)
    y.rewards = {2.0};
    ptdcore::PreparedModel ym(y);
    double ymom[2], dymom[6];
    ptdcore::evaluate_batch(ym, row, 1, times, 0, 2, Outputs{none, ymom, none, dymom}, 1);
    check(close(ymom[0], 2.0 * mom[0], 1e-13) && close(ymom[1], 4.0 * mom[1], 1e-13),
          "moments of Y over epochs");
    // discrete: geometric 0.3 then 0.6 from step 4; sampling across the break
    ptdcore::Structure d = chain(1, true);
    d.epochs = 2;
    d.nr_params = 3;
    ptdcore::PreparedModel dm(d);
    const double drow[3] = {0.3, 0.6, 4.0};
    const double steps[2] = {2.0, 6.0};
    double dpmf_v[2], dmom_v[1];
    ptdcore::evaluate_batch(dm, drow, 1, steps, 2, 1, Outputs{dpmf_v, dmom_v, nullptr, nullptr}, 1);
    check(close(dpmf_v[0], 0.7 * 0.3, 1e-14) && close(dpmf_v[1], std::pow(0.7, 4) * 0.4 * 0.6, 1e-14),
          "discrete epoch pmf");
    std::vector<double> draws(20000);
    ptdcore::sample_draws(d, drow, 20000, 7, draws.data(), 2);
    double mean = 0.0;
    for (double x : draws) mean += x / 20000.0;
    check(std::fabs(mean - dmom_v[0]) < 0.05, "discrete epoch sampler mean");
  }
  {  // adaptive uniformisation against the plain series: Kingman's lineage count
     // from 12 (rates C(k, 2) theta_0), without and with a 2-cycle at the top
     // (rate theta_1 back from 11 to 12: the rate never falls, one series), tangents on
    for (int cycle = 0; cycle < 2; ++cycle) {
      const int n = 12;
      ptdcore::Structure s;
      s.nr_states = n;  // state i holds n - i lineages
      s.nr_params = 2;
      s.alpha.assign(n, 0.0);
      s.alpha[0] = 1.0;
      auto edge = [&](int from, int to, int p, double c) {
        s.src.push_back(from);
        s.dst.push_back(to);
        s.constant.push_back(0.0);
        s.coef_index.push_back(p);
        s.coef_value.push_back(c);
        s.coef_ptr.push_back(static_cast<int64_t>(s.coef_index.size()));
      };
      s.coef_ptr.assign(1, 0);
      for (int i = 0; i + 1 < n; ++i) edge(i, i + 1, 0, 0.5 * (n - i) * (n - i - 1));
      if (cycle) edge(1, 0, 1, 1.0);
      const double theta[2] = {0.7, 3.0};
      ptdcore::NumericGraph g;
      ptdcore::build_numeric_graph(s, theta, true, g);
      const double t = 12.0;  // lambda t = 46.2 x 12 = 554: adaptive
      std::vector<double> v(n), dv(2 * n), w(n), dw(2 * n);
      ptdcore::SeriesBuffers series;
      ptdcore::NumericGraph work;
      ptdcore::adaptive_series_state(g, t, v.data(), dv.data(), series, work);
      ptdcore::series_state(g, false, t, w.data(), dw.data(), series);
      double vmax = 0.0, dmax = 0.0, verr = 0.0, derr = 0.0;
      for (int i = 0; i < n; ++i) vmax = std::max(vmax, std::fabs(w[i]));
      for (int i = 0; i < 2 * n; ++i) dmax = std::max(dmax, std::fabs(dw[i]));
      for (int i = 0; i < n; ++i)
        verr = std::max(verr, std::fabs(v[i] - w[i]) / std::max(std::fabs(w[i]), 1e-20 * vmax));
      for (int i = 0; i < 2 * n; ++i) derr = std::max(derr, std::fabs(dv[i] - dw[i]));
      check(verr < 1e-12 && derr < 1e-12 * dmax && dmax > 0.0,
            cycle ? "adaptive series with a recurrent top" : "adaptive series on a pure death");
    }
  }
  {  // the C ABI rejects arrays that would be read out of bounds, with a message
    const double alpha[1] = {1.0};
    const int64_t src[1] = {0}, dst[1] = {5}, ptr[2] = {0, 0};
    const double c[1] = {1.0};
    char err[256] = {0};
    ptd_model* bad = ptd_model_new(1, 0, 0, alpha, 1, src, dst, c, ptr, nullptr, nullptr, nullptr, 0, 0, 1, err,
                                   256);
    check(bad == nullptr && err[0] != '\0', "C ABI validation");
  }
  if (failures == 0) std::printf("engine self-test: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
