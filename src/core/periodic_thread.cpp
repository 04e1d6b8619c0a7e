#include "core/periodic_thread.h"

#include "core/barrier.h"

namespace synaps {

PeriodicThread::PeriodicThread(std::string name, std::chrono::milliseconds period,
                               std::function<void()> step)
    : name_(std::move(name)), period_(period), step_(std::move(step)) {}

PeriodicThread::~PeriodicThread() { Stop(); }

void PeriodicThread::Start() {
  if (period_.count() <= 0 || thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void PeriodicThread::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool PeriodicThread::stopping() const {
  std::lock_guard lock(mu_);
  return stop_;
}

void PeriodicThread::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    (void)Guarded(name_, step_);  // logged by the barrier; the next period runs again
    lock.lock();
    cv_.wait_for(lock, period_, [this] { return stop_; });
  }
}

}  // namespace synaps
