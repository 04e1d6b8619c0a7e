#include "worker/db_lane.h"

#include <spdlog/spdlog.h>

namespace synaps::worker {

namespace {
constexpr std::chrono::milliseconds kFirstBackoff(100);
constexpr std::chrono::milliseconds kMaxBackoff(2000);
constexpr std::chrono::seconds kConnectTimeout(3);
}  // namespace

DbLane::DbLane(std::string name, std::string conninfo, boost::asio::any_io_executor results)
    : name_(std::move(name)),
      conninfo_(std::move(conninfo)),
      results_(std::move(results)),
      thread_([this] { Loop(); }) {}

DbLane::~DbLane() { Stop(); }

void DbLane::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DbLane::Enqueue(std::move_only_function<void()> job) {
  backlog_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void DbLane::Loop() {
  while (true) {
    std::move_only_function<void()> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and everything posted has run
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
    backlog_.fetch_sub(1, std::memory_order_relaxed);
  }
}

db::Connection* DbLane::Acquire(Error* unavailable) {
  if (conn_.healthy()) return &conn_;
  auto now = std::chrono::steady_clock::now();
  if (now < next_connect_) {
    *unavailable = last_connect_error_;
    return nullptr;
  }
  auto c = db::Connection::Connect(conninfo_, kConnectTimeout);
  if (!c) {
    backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
    next_connect_ = std::chrono::steady_clock::now() + backoff_;
    last_connect_error_ = c.error();
    if (!down_logged_) spdlog::warn("PostgreSQL unavailable ({} lane): {}", name_, c.error().message);
    down_logged_ = true;
    *unavailable = c.error();
    return nullptr;
  }
  if (down_logged_) spdlog::info("PostgreSQL connection restored ({} lane)", name_);
  down_logged_ = false;
  backoff_ = std::chrono::milliseconds(0);
  conn_ = std::move(*c);
  return &conn_;
}

void DbLane::NoteError(const Error& e) {
  // A broken socket is dropped so the next job reconnects; SQL errors keep the connection.
  if (e.code == ErrorCode::kUnavailable && conn_.raw() != nullptr && !conn_.healthy()) {
    conn_ = db::Connection();
  }
}

}  // namespace synaps::worker
