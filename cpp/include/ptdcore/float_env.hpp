// ptdcore engine: the floating-point environment of an evaluation.
//
// Subnormal numbers (below 2.2e-308) are flushed to zero while the engine
// runs, on every backend alike (XLA's threads already run this way).
// Probability vectors that drain away would otherwise spend most of their
// time in slow subnormal arithmetic; no result above ~1e-300 changes.
// The previous mode is restored on exit, so callers are not affected.
#pragma once

#if defined(__SSE2__) || defined(_M_X64)
#include <xmmintrin.h>
#define PTDCORE_HAS_MXCSR 1
#endif

namespace ptdcore {

class ScopedFlushSubnormals {
 public:
#ifdef PTDCORE_HAS_MXCSR
  ScopedFlushSubnormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero); }
  ~ScopedFlushSubnormals() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned kFlushToZero = 0x8000;
  static constexpr unsigned kDenormalsAreZero = 0x0040;
  unsigned saved_;
#else
  ScopedFlushSubnormals() = default;
#endif
  ScopedFlushSubnormals(const ScopedFlushSubnormals&) = delete;
  ScopedFlushSubnormals& operator=(const ScopedFlushSubnormals&) = delete;
};

}  // namespace ptdcore
