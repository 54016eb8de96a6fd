// ptdcore engine: error-free transformations for sums and products carried to
// about twice double precision (Dekker 1971, Knuth TAOCP vol. 2): a value is the
// unevaluated sum hi + lo. Plain double operations only (no FMA: the engine is
// built without floating-point contraction, and Dekker's split needs none), so
// results are the same on every instruction set.
#pragma once

namespace ptdcore {

// s + e == a + b exactly, s = fl(a + b).
inline void two_sum(double a, double b, double& s, double& e) {
  s = a + b;
  const double bb = s - a;
  e = (a - (s - bb)) + (b - bb);
}

// p + e == a * b exactly (|a|, |b| below ~1e300), p = fl(a * b).
inline void two_product(double a, double b, double& p, double& e) {
  constexpr double kSplitter = 134217729.0;  // 2^27 + 1
  p = a * b;
  const double ca = kSplitter * a, cb = kSplitter * b;
  const double ah = ca - (ca - a), al = a - ah;
  const double bh = cb - (cb - b), bl = b - bh;
  e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

// A running sum hi + lo of terms added exactly (each product's error kept).
struct CompensatedSum {
  double hi = 0.0, lo = 0.0;

  void add(double x) {
    double e;
    two_sum(hi, x, hi, e);
    lo += e;
  }
  // += a * (bh + bl), the product of a double and a double-double.
  void add_product(double a, double bh, double bl) {
    double p, e;
    two_product(a, bh, p, e);
    add(p);
    lo += e + a * bl;
  }
  double value() const { return hi + lo; }
};

}  // namespace ptdcore
