// ptdcore engine: batch evaluation, rows spread over std::threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "ptdcore/model.hpp"

namespace ptdcore {

// body(row, workspace) for row in [0, rows), spread over up to `threads`
// std::threads (0 = hardware concurrency), the calling thread included. Each
// thread works in its own Workspace.
template <typename Body>
void parallel_rows(int64_t rows, int threads, const Body& body) {
  if (rows <= 0) return;
  int64_t nt = threads > 0 ? threads : static_cast<int64_t>(std::thread::hardware_concurrency());
  nt = std::max<int64_t>(1, std::min<int64_t>(nt, rows));
  std::atomic<int64_t> next{0};
  auto worker = [&]() {
    Workspace ws;
    for (int64_t r; (r = next.fetch_add(1)) < rows;) body(r, ws);
  };
  std::vector<std::thread> pool;
  for (int64_t i = 1; i < nt; ++i) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
}

// A whole batch (times shared by every row), rows in parallel threads.
inline void evaluate_batch(const PreparedModel& model, const double* theta, int64_t B,
                           const double* times, int64_t T, int64_t K, const Outputs& out,
                           int threads = 0) {
  parallel_rows(B, threads, [&](int64_t b, Workspace& ws) {
    model.evaluate_rows(theta, b, b + 1, times, T, K, out, ws);
  });
}

}  // namespace ptdcore
