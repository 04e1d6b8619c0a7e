#include "db/pool.h"

namespace synaps::db {

PooledConnection::~PooledConnection() {
  if (pool_) pool_->Release(std::move(conn_));
}

Pool::Pool(std::string conninfo, int size, ConnectOptions options)
    : conninfo_(std::move(conninfo)), size_(size), options_(options) {}

Result<PooledConnection> Pool::Acquire(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !idle_.empty() || open_ < size_; })) {
    return Fail(ErrorCode::kUnavailable, "no free database connection within the timeout");
  }
  // open_ < size_ holds again if stale idle connections are dropped below.
  while (!idle_.empty()) {
    Connection c = std::move(idle_.front());
    idle_.pop_front();
    // Reading what the server sent while idle reveals a connection it closed (restart,
    // idle timeout) before we put a query on it. A server shutting down sends a FATAL message
    // and then closes: one read takes the message, a second one (it does not block) finds the
    // end of the connection.
    if (PQconsumeInput(c.raw()) == 1 && PQconsumeInput(c.raw()) == 1 && c.healthy()) {
      return PooledConnection(this, std::move(c));
    }
    --open_;
  }
  ++open_;
  lock.unlock();
  auto conn = Connection::Connect(conninfo_, options_);
  if (!conn) {
    lock.lock();
    --open_;
    cv_.notify_one();
    return std::unexpected(conn.error());
  }
  return PooledConnection(this, std::move(*conn));
}

void Pool::Release(Connection conn) {
  std::lock_guard lock(mu_);
  // A connection in a failed state (or mid-transaction after an error) is not reused.
  if (conn.healthy() && PQtransactionStatus(conn.raw()) == PQTRANS_IDLE) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;
  }
  cv_.notify_one();
}

}  // namespace synaps::db
