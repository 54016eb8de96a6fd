// ptdcore engine: dense kernels of the squaring ladder (squaring.hpp): matrix
// products and the vector-matrix product with its forward-mode tangents.
//
// Each kernel gets an AVX2 clone next to the baseline one where the compiler
// supports it; every output element is accumulated in the same order in both,
// so they give bit-identical results.
#pragma once

#include <algorithm>
#include <cstdint>


// The dense kernels get an AVX2 clone next to the baseline one where the
// compiler supports it (x86-64, GCC or Clang): each output element is still
// accumulated in the same order and nothing is contracted into FMAs, so both
// clones give bit-identical results.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__INTEL_COMPILER)
#define PTDCORE_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PTDCORE_VECTOR_CLONES
#endif
// The vector helpers below are inlined into each clone, so that they are
// compiled for the clone's instruction set.
#define PTDCORE_ALWAYS_INLINE inline __attribute__((always_inline))

namespace ptdcore {

namespace detail {

// Four doubles in one vector register (GCC/Clang vector extension; the
// baseline clone splits it into two SSE2 halves). Element-wise + and * only:
// no reassociation, no contraction.
typedef double v4d __attribute__((vector_size(32)));
typedef double v1d __attribute__((vector_size(8)));
template <class V>
PTDCORE_ALWAYS_INLINE void load(V& x, const double* p) {
  __builtin_memcpy(&x, p, sizeof x);
}
template <class V>
PTDCORE_ALWAYS_INLINE void store(double* p, const V& x) {
  __builtin_memcpy(p, &x, sizeof x);
}

// C += A B (n x n, row-major); C must not alias A or B. Each element of C is
// accumulated over k in increasing order (zero entries of A skipped), four
// columns at a time in registers.
PTDCORE_VECTOR_CLONES inline void matmul_add(const double* __restrict A,
                                             const double* __restrict B, double* __restrict C,
                                             int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double* a_row = A + i * n;
    double* c = C + i * n;
    int64_t j0 = 0;
    for (; j0 + 4 <= n; j0 += 4) {
      v4d acc, b;
      load(acc, c + j0);
      for (int64_t k = 0; k < n; ++k) {
        const double a = a_row[k];
        if (a == 0.0) continue;
        load(b, B + k * n + j0);
        acc += a * b;
      }
      store(c + j0, acc);
    }
    for (; j0 < n; ++j0) {
      double acc = c[j0];
      for (int64_t k = 0; k < n; ++k) {
        const double a = a_row[k];
        if (a == 0.0) continue;
        acc += a * B[k * n + j0];
      }
      c[j0] = acc;
    }
  }
}

// C = A B.
inline void matmul(const double* A, const double* B, double* C, int64_t n) {
  std::fill(C, C + n * n, 0.0);
  matmul_add(A, B, C, n);
}

// y += A x (matrix times column vector).
inline void matvec_add(const double* A, const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    double acc = 0.0;
    const double* row = A + i * n;
    for (int64_t j = 0; j < n; ++j) acc += row[j] * x[j];
    y[i] += acc;
  }
}

}  // namespace detail

namespace detail {

// Columns j0 .. j0 + width(V) of v2 = v E (when `value`) and of
// dv2_p = dv_p E + v dE_p for the kQ parameters p0 .. p0 + kQ, each element
// accumulated in a register over the rows i in increasing order. The
// accumulators of one call are independent chains, so they overlap.
template <class V, int kQ, bool kValue>
PTDCORE_ALWAYS_INLINE void vecmat_jvp_columns(const double* v, const double* dv, const double* E,
                                              const double* dE, double* v2, double* dv2, int64_t n,
                                              int64_t j0, int64_t p0) {
  const int64_t nn = n * n;
  V acc = {}, d[kQ > 0 ? kQ : 1] = {}, x, y;
  for (int64_t i = 0; i < n; ++i) {
    load(x, E + i * n + j0);
    if (kValue) acc += v[i] * x;
    for (int q = 0; q < kQ; ++q) {
      load(y, dE + (p0 + q) * nn + i * n + j0);
      d[q] += dv[(p0 + q) * n + i] * x + v[i] * y;
    }
  }
  if (kValue) store(v2 + j0, acc);
  for (int q = 0; q < kQ; ++q) store(dv2 + (p0 + q) * n + j0, d[q]);
}

// All columns, for the value (kValue) and the kQ parameters p0 .. p0 + kQ.
template <int kQ, bool kValue>
PTDCORE_ALWAYS_INLINE void vecmat_jvp_pass(const double* v, const double* dv, const double* E,
                                           const double* dE, double* v2, double* dv2, int64_t n,
                                           int64_t p0) {
  int64_t j0 = 0;
  for (; j0 + 4 <= n; j0 += 4)
    vecmat_jvp_columns<v4d, kQ, kValue>(v, dv, E, dE, v2, dv2, n, j0, p0);
  for (; j0 < n; ++j0) vecmat_jvp_columns<v1d, kQ, kValue>(v, dv, E, dE, v2, dv2, n, j0, p0);
}

}  // namespace detail

// v2 = v E and dv2_p = dv_p E + v dE_p (P = 0: the value only): the value
// with the first four parameters in one pass over E, then four more per pass.
PTDCORE_VECTOR_CLONES inline void vecmat_jvp(const double* __restrict v,
                                             const double* __restrict dv,
                                             const double* __restrict E,
                                             const double* __restrict dE, double* __restrict v2,
                                             double* __restrict dv2, int64_t n, int64_t P) {
  using detail::vecmat_jvp_pass;
  switch (std::min<int64_t>(P, 4)) {
    case 0: vecmat_jvp_pass<0, true>(v, dv, E, dE, v2, dv2, n, 0); break;
    case 1: vecmat_jvp_pass<1, true>(v, dv, E, dE, v2, dv2, n, 0); break;
    case 2: vecmat_jvp_pass<2, true>(v, dv, E, dE, v2, dv2, n, 0); break;
    case 3: vecmat_jvp_pass<3, true>(v, dv, E, dE, v2, dv2, n, 0); break;
    default: vecmat_jvp_pass<4, true>(v, dv, E, dE, v2, dv2, n, 0);
  }
  for (int64_t p0 = 4; p0 < P; p0 += 4) switch (std::min<int64_t>(P - p0, 4)) {
      case 1: vecmat_jvp_pass<1, false>(v, dv, E, dE, v2, dv2, n, p0); break;
      case 2: vecmat_jvp_pass<2, false>(v, dv, E, dE, v2, dv2, n, p0); break;
      case 3: vecmat_jvp_pass<3, false>(v, dv, E, dE, v2, dv2, n, p0); break;
      default: vecmat_jvp_pass<4, false>(v, dv, E, dE, v2, dv2, n, p0);
    }
}

}  // namespace ptdcore
