// A DB lane: one thread with its own PostgreSQL connection that runs jobs in the order they were
// posted and hands each result back to an event loop. The worker keeps several lanes (claims,
// writes, control) so that its event loop never waits for PostgreSQL and a claim can be in
// flight while a completion batch commits.
//
// Ownership and threads: the lane owns its thread and its db::Connection; the connection is used
// only on that thread. Call() may be called from any thread. `done` always runs on the executor
// given at construction, never inline. Stop() (or the destructor) runs every job already posted,
// then joins; results that arrive after the executor stopped running are dropped with it.
//
// Failure: when no connection can be had (PostgreSQL down), a job's `work` does not run and its
// `done` receives kUnavailable at once. Reconnection is tried on the next job, no more often than
// a backoff that doubles from 100 ms to 2 s, so a down database costs each job microseconds, not
// a connect timeout. Every statement has a deadline (db::ConnectOptions): a connection that dies
// or freezes fails the statement in flight (kUnavailable or kDeadlineExceeded) and is dropped,
// and the next job runs on a new one. A job that ends inside a transaction (it threw, or forgot
// to commit) also drops its connection, which rolls the transaction back.
//
// Exceptions: a `work` that throws is a bug, but it must not end the process nor the lane. The
// lane catches it, logs it with the lane's name and the job's context, and hands `done` a
// kInternal error; the lane goes on with the next job.
//
// Watchdog: busy_ms() says how long the running job has been running, last_reached_ms() when a
// job last reached PostgreSQL. The worker's probes read both (liveness, readiness).
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "db/connection.h"

namespace synaps::worker {

class DbLane {
 public:
  // `name` appears in logs ("claims", "writes", ...). Starts the thread; connects lazily with
  // `options` (connect timeout, keepalives, statement timeout and client deadline).
  DbLane(std::string name, std::string conninfo, boost::asio::any_io_executor results,
         db::ConnectOptions options = {});
  ~DbLane();
  DbLane(const DbLane&) = delete;
  DbLane& operator=(const DbLane&) = delete;

  // Runs `work(conn)` on the lane's thread (Work: Result<T>(db::Connection&)), then posts
  // `done(Result<T>)` to the results executor. `context` names the job in logs ("claim",
  // "write batch", ...).
  template <class Work, class Done>
  void Call(Work work, Done done, std::string context = "job") {
    using R = std::invoke_result_t<Work&, db::Connection&>;
    Enqueue([this, work = std::move(work), done = std::move(done),
             context = std::move(context)]() mutable {
      Error unavailable;
      db::Connection* conn = Acquire(&unavailable);
      R result = conn ? Guarded<R>(work, *conn, context) : R(std::unexpected(unavailable));
      AfterJob(conn != nullptr, result ? nullptr : &result.error());
      boost::asio::post(results_, [done = std::move(done), result = std::move(result)]() mutable {
        done(std::move(result));
      });
    });
  }

  // Jobs posted and not yet finished, including the one running.
  int backlog() const { return backlog_.load(std::memory_order_relaxed); }
  const std::string& name() const { return name_; }
  // How long the running job has been running (0 when idle). Any thread.
  int64_t busy_ms() const;
  // When a job last found PostgreSQL answering (steady clock, ms; 0 = never). Any thread.
  int64_t last_reached_ms() const { return last_reached_ms_.load(std::memory_order_relaxed); }
  // The steady clock in ms, as the two above use it.
  static int64_t NowMs();

  // Runs what is queued, then joins the thread. Idempotent.
  void Stop();

 private:
  // The exception barrier: runs `work`, turning what it throws into a kInternal error.
  template <class R, class Work>
  R Guarded(Work& work, db::Connection& conn, const std::string& context) {
    try {
      return work(conn);
    } catch (const std::exception& e) {
      return R(std::unexpected(Threw(context, e.what())));
    } catch (...) {
      return R(std::unexpected(Threw(context, "an exception not derived from std::exception")));
    }
  }
  Error Threw(const std::string& context, const char* what);  // logs it; lane thread only

  void Enqueue(std::move_only_function<void()> job);
  void Loop();
  db::Connection* Acquire(Error* unavailable);  // lane thread only
  // Drops a connection that broke, froze or was left inside a transaction; notes whether
  // PostgreSQL was reached. Lane thread only.
  void AfterJob(bool had_connection, const Error* error);

  const std::string name_;
  const std::string conninfo_;
  boost::asio::any_io_executor results_;
  const db::ConnectOptions options_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::move_only_function<void()>> jobs_;  // guarded by mu_
  bool stopping_ = false;                             // guarded by mu_
  std::atomic<int> backlog_{0};
  std::atomic<int64_t> job_started_ms_{0};   // 0 while idle
  std::atomic<int64_t> last_reached_ms_{0};

  // Lane thread only.
  db::Connection conn_;
  std::chrono::steady_clock::time_point next_connect_{};
  std::chrono::milliseconds backoff_{0};
  Error last_connect_error_;
  bool down_logged_ = false;

  std::thread thread_;  // last: starts after everything above is constructed
};

}  // namespace synaps::worker
