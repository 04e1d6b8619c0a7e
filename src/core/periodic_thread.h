// A thread that runs one step at start and then once every period until stopped: the shape of
// every background pass of the API (the usage rollup, the schedules tick). One owner per
// thread; the step runs behind the thread's barrier (core/barrier.h), so a step that throws is
// logged and the next period runs it again.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace synaps {

class PeriodicThread {
 public:
  // `step` runs on the thread only; it may call stopping() to end a long pass early.
  PeriodicThread(std::string name, std::chrono::milliseconds period, std::function<void()> step);
  ~PeriodicThread();  // Stop()
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  // Starts the thread; does nothing when it runs already or the period is not positive.
  void Start();
  // Wakes the wait, lets a step in progress finish and joins. Start() may follow.
  void Stop();
  // True once Stop() was called (thread-safe).
  bool stopping() const;

 private:
  void Loop();

  const std::string name_;
  const std::chrono::milliseconds period_;
  const std::function<void()> step_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace synaps
