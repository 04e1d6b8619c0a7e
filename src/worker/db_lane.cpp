#include "worker/db_lane.h"

#include <spdlog/spdlog.h>

namespace synaps::worker {

namespace {
constexpr std::chrono::milliseconds kFirstBackoff(100);
constexpr std::chrono::milliseconds kMaxBackoff(2000);
}  // namespace

DbLane::DbLane(std::string name, std::string conninfo, boost::asio::any_io_executor results,
               db::ConnectOptions options)
    : name_(std::move(name)),
      conninfo_(std::move(conninfo)),
      results_(std::move(results)),
      options_(options),
      thread_([this] { Loop(); }) {}

int64_t DbLane::NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t DbLane::busy_ms() const {
  int64_t started = job_started_ms_.load(std::memory_order_relaxed);
  return started == 0 ? 0 : std::max<int64_t>(0, NowMs() - started);
}

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
    job_started_ms_.store(NowMs(), std::memory_order_relaxed);
    try {
      job();
    } catch (const std::exception& e) {
      // Past the barrier in Call: posting the answer failed (out of memory). The job's `done`
      // is lost, but the lane and the process go on.
      spdlog::error("DB lane {}: a job's answer could not be handed back: {}", name_, e.what());
    }
    job_started_ms_.store(0, std::memory_order_relaxed);
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
  auto c = db::Connection::Connect(conninfo_, options_);
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

Error DbLane::Threw(const std::string& context, const char* what) {
  spdlog::error("DB lane {}: {} threw: {}; it fails with an internal error and the lane goes on",
                name_, context, what);
  return Error{ErrorCode::kInternal, context + " failed: " + what, {}};
}

void DbLane::AfterJob(bool had_connection, const Error* error) {
  if (!had_connection) return;
  // A broken or abandoned (deadline) socket is dropped so the next job reconnects; SQL errors
  // keep the connection. A job that left a transaction open would leak it into the next job:
  // closing the connection rolls it back.
  if (conn_.raw() != nullptr && !conn_.healthy()) {
    conn_ = db::Connection();
  } else if (conn_.raw() != nullptr && PQtransactionStatus(conn_.raw()) != PQTRANS_IDLE) {
    spdlog::warn("DB lane {}: a job left a transaction open{}; dropping its connection", name_,
                 error ? " (" + error->message + ")" : std::string());
    conn_ = db::Connection();
    return;
  }
  if (conn_.healthy()) last_reached_ms_.store(NowMs(), std::memory_order_relaxed);
}

}  // namespace synaps::worker
