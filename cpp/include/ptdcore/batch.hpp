// ptdcore engine: batch evaluation, rows spread over the process's thread pool.
#pragma once

#include <cstdint>

#include "ptdcore/model.hpp"
#include "ptdcore/thread_pool.hpp"

namespace ptdcore {

// The calling thread's workspace, reused across calls: a thread runs one row
// at a time, and reusing the buffers matters for small models in long scans.
inline Workspace& thread_workspace() {
  thread_local Workspace ws;
  return ws;
}

// body(row, workspace) for row in [0, rows) on the process's pool and the
// calling thread, at most `threads` threads (0 = hardware concurrency).
template <typename Body>
void parallel_rows(int64_t rows, int threads, const Body& body) {
  parallel_rows(ThreadPool::process(), rows, threads,
                [&](int64_t r) { body(r, thread_workspace()); });
}

// A whole batch (times shared by every row), rows in parallel.
inline void evaluate_batch(const PreparedModel& model, const double* theta, int64_t B,
                           const double* times, int64_t T, int64_t K, const Outputs& out,
                           int threads = 0) {
  parallel_rows(B, threads, [&](int64_t b, Workspace& ws) {
    model.evaluate_rows(theta, b, b + 1, times, T, K, out, ws);
  });
}

}  // namespace ptdcore
