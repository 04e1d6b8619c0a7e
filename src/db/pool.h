// A fixed-size pool of PostgreSQL connections, safe to use from many threads. Connections are
// opened lazily with the pool's ConnectOptions (so every call on them has a deadline); a
// connection returned unhealthy (broken, or closed by a call whose deadline passed) is dropped
// and replaced on the next Acquire, so the pool heals after PostgreSQL restarts and after
// connections that froze.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>

#include "db/connection.h"

namespace synaps::db {

class Pool;

// Borrowed connection; returns itself to the pool when destroyed.
class PooledConnection {
 public:
  PooledConnection(Pool* pool, Connection conn) : pool_(pool), conn_(std::move(conn)) {}
  PooledConnection(PooledConnection&& o) noexcept : pool_(o.pool_), conn_(std::move(o.conn_)) {
    o.pool_ = nullptr;
  }
  PooledConnection(const PooledConnection&) = delete;
  PooledConnection& operator=(const PooledConnection&) = delete;
  PooledConnection& operator=(PooledConnection&&) = delete;
  ~PooledConnection();

  Connection& operator*() { return conn_; }
  Connection* operator->() { return &conn_; }

 private:
  Pool* pool_;
  Connection conn_;
};

class Pool {
 public:
  Pool(std::string conninfo, int size, ConnectOptions options = {});
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Waits up to `timeout` for a free connection; kUnavailable when none frees up or a new one
  // cannot be opened.
  Result<PooledConnection> Acquire(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  const std::string& conninfo() const { return conninfo_; }

 private:
  friend class PooledConnection;
  void Release(Connection conn);

  const std::string conninfo_;
  const int size_;
  const ConnectOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Connection> idle_;  // guarded by mu_
  int open_ = 0;                 // guarded by mu_: idle + borrowed + being opened
};

}  // namespace synaps::db
