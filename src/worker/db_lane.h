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
// a connect timeout. A job that fails with kUnavailable on a broken socket drops the connection.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "db/connection.h"

namespace synaps::worker {

class DbLane {
 public:
  // `name` appears in logs ("claims", "writes", ...). Starts the thread; connects lazily.
  DbLane(std::string name, std::string conninfo, boost::asio::any_io_executor results);
  ~DbLane();
  DbLane(const DbLane&) = delete;
  DbLane& operator=(const DbLane&) = delete;

  // Runs `work(conn)` on the lane's thread (Work: Result<T>(db::Connection&)), then posts
  // `done(Result<T>)` to the results executor.
  template <class Work, class Done>
  void Call(Work work, Done done) {
    using R = std::invoke_result_t<Work&, db::Connection&>;
    Enqueue([this, work = std::move(work), done = std::move(done)]() mutable {
      Error unavailable;
      db::Connection* conn = Acquire(&unavailable);
      R result = conn ? work(*conn) : R(std::unexpected(unavailable));
      if (!result) NoteError(result.error());
      boost::asio::post(results_, [done = std::move(done), result = std::move(result)]() mutable {
        done(std::move(result));
      });
    });
  }

  // Jobs posted and not yet finished, including the one running.
  int backlog() const { return backlog_.load(std::memory_order_relaxed); }
  const std::string& name() const { return name_; }

  // Runs what is queued, then joins the thread. Idempotent.
  void Stop();

 private:
  void Enqueue(std::move_only_function<void()> job);
  void Loop();
  db::Connection* Acquire(Error* unavailable);  // lane thread only
  void NoteError(const Error& e);               // lane thread only

  const std::string name_;
  const std::string conninfo_;
  boost::asio::any_io_executor results_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::move_only_function<void()>> jobs_;  // guarded by mu_
  bool stopping_ = false;                             // guarded by mu_
  std::atomic<int> backlog_{0};

  // Lane thread only.
  db::Connection conn_;
  std::chrono::steady_clock::time_point next_connect_{};
  std::chrono::milliseconds backoff_{0};
  Error last_connect_error_;
  bool down_logged_ = false;

  std::thread thread_;  // last: starts after everything above is constructed
};

}  // namespace synaps::worker
