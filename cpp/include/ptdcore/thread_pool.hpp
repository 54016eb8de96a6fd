// ptdcore engine: the one row loop, and the process's persistent thread pool.
//
// parallel_rows runs body(row) for every row of a batch on any pool with
// num_threads() and Schedule(task) -- ptdcore's own (below) or XLA's intra-op
// pool (the ffi handlers). The calling thread takes rows too and waits only for
// rows that were taken, never for a helper to start: helpers that start late
// find no rows left and touch only the shared counters, so a call completes
// even when every pool thread is busy (nested or concurrent calls).
//
// ThreadPool::process() is the engine's only process-wide object: started on
// first use, its threads sleep between calls and are reused by every call
// from every thread (no std::thread per call). It holds no results, so
// concurrent calls give the same results as sequential ones. After fork() the
// child starts a pool of its own on first use.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace ptdcore {

class ThreadPool {
 public:
  explicit ThreadPool(int64_t threads) {
    for (int64_t i = 0; i < threads; ++i)
      threads_.emplace_back([this]() { serve(); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

  int64_t num_threads() const { return static_cast<int64_t>(threads_.size()); }

  void Schedule(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      tasks_.push_back(std::move(task));
    }
    wake_.notify_one();
  }

  // The process's pool: hardware concurrency minus one helpers (the caller
  // works too). Never destroyed: threads blocked at exit end with the process.
  static ThreadPool& process() {
    static std::mutex create;
    static ThreadPool* pool = nullptr;
    static pid_t owner = 0;
    std::lock_guard<std::mutex> lock(create);
    if (pool == nullptr || owner != getpid()) {  // first use, or first use after fork()
      const int64_t hw = static_cast<int64_t>(std::thread::hardware_concurrency());
      pool = new ThreadPool(std::max<int64_t>(hw, 1) - 1);  // the parent's pool is left behind
      owner = getpid();
    }
    return *pool;
  }

 private:
  void serve() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;  // stopping
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// body(row) for row in [0, rows) on `pool` plus the calling thread, with at
// most max_threads threads in all (0: no limit beyond the pool's size).
template <typename Pool, typename Body>
void parallel_rows(Pool& pool, int64_t rows, int64_t max_threads, const Body& body) {
  if (rows <= 0) return;
  int64_t helpers = std::min<int64_t>(static_cast<int64_t>(pool.num_threads()), rows - 1);
  if (max_threads > 0) helpers = std::min<int64_t>(helpers, max_threads - 1);
  if (helpers <= 0) {
    for (int64_t r = 0; r < rows; ++r) body(r);
    return;
  }
  struct Shared {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> finished{0};
    std::mutex mutex;
    std::condition_variable done;
  };
  auto shared = std::make_shared<Shared>();
  const Body* body_ptr = &body;
  auto work = [shared, rows, body_ptr]() {
    for (int64_t r; (r = shared->next.fetch_add(1)) < rows;) {
      (*body_ptr)(r);  // only reached while the caller is still waiting
      if (shared->finished.fetch_add(1) + 1 == rows) {
        std::lock_guard<std::mutex> lock(shared->mutex);
        shared->done.notify_all();
      }
    }
  };
  for (int64_t h = 0; h < helpers; ++h) pool.Schedule([work]() { work(); });
  work();
  std::unique_lock<std::mutex> lock(shared->mutex);
  shared->done.wait(lock, [&] { return shared->finished.load() == rows; });
}

}  // namespace ptdcore
