// Reads off the primary (docs/deploy.md, "Reads off the primary"). With SYNAPS_DATABASE_READ_URL
// set, read-only requests (run reads and lists, SSE catch-up, usage, the console's lists) run on
// a streaming replica; writes, the queue, authentication and the control registry stay on the
// primary.
//
// Read-your-writes: after a successful write the API answers `X-Synaps-Lsn: <primary WAL LSN>`
// and remembers that LSN for the principal that wrote. A read runs on the replica only when the
// replica has replayed past max(the request's `X-Synaps-Lsn`, the principal's remembered LSN);
// otherwise, or when the replica cannot be reached, it runs on the primary. A client therefore
// always sees its own writes — across API replicas when it sends the header back, on the same API
// process even when it does not — and other clients' writes once the replica has replayed them.
// When the primary cannot tell the LSN of a write, the principal reads from the primary for the
// whole `remember` window instead.
//
// A replica that fails (no connection, or its replay position cannot be read) is left alone for
// `breaker`: every read goes straight to the primary meanwhile, then the replica is tried again.
//
// One replica per URL: the replica's replay position is cached once per process, so
// SYNAPS_DATABASE_READ_URL must name one server, not a Service or pooler in front of several
// (a lagging one would be taken for caught up).
//
// Thread-safe: one instance per API process, shared by every handler thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "db/pool.h"

namespace synaps::api {

// "16/B374D848" (PostgreSQL's pg_lsn text) as a number; nullopt when malformed.
std::optional<uint64_t> ParseLsn(std::string_view text);
std::string FormatLsn(uint64_t lsn);

class ReadRouting {
 public:
  // `replica` may be null: every read then runs on the primary and nothing is remembered.
  // `remember`: how long a principal's last write LSN is kept (the replica normally replays it
  // within milliseconds; after this the client's own header still protects it).
  ReadRouting(db::Pool* primary, db::Pool* replica,
              std::chrono::milliseconds remember = std::chrono::seconds(60),
              size_t max_principals = 100000,
              std::chrono::milliseconds breaker = std::chrono::seconds(5));

  bool has_replica() const { return replica_ != nullptr; }

  struct Lease {
    db::PooledConnection conn;
    bool on_replica = false;
  };
  // A connection for a read by `principal` that must see `client_lsn` (0: no token). Errors are
  // the primary pool's (the replica's are answered by falling back to the primary).
  Result<Lease> Acquire(const std::string& principal, uint64_t client_lsn);

  // After a successful write by `principal`: the primary's current WAL insert position (past the
  // write's commit record even with synchronous_commit=off, where the flushed position may not
  // be yet), remembered for the principal. nullopt without a replica, or when the
  // primary could not be asked (the write has happened either way): the principal then reads
  // from the primary until `remember` has passed.
  std::optional<uint64_t> NoteWrite(const std::string& principal);

  // True while reads skip the replica after it failed (for tests and metrics).
  bool ReplicaSkipped() const;

  // A pool for reads that need no read-your-writes (e.g. SSE catch-up of events that were
  // already seen on the primary): the replica when configured, else the primary.
  db::Pool* catch_up_pool() const { return replica_ != nullptr ? replica_ : primary_; }

 private:
  uint64_t Remembered(const std::string& principal);
  void Remember(const std::string& principal, uint64_t lsn);
  // Sends reads to the primary for `breaker_` after the replica failed.
  void TripBreaker(const std::string& why);
  // True when the replica connection has replayed at least `lsn` (asks it unless the last
  // answer already covers `lsn`).
  bool ReplicaReached(db::Connection& conn, uint64_t lsn);

  db::Pool* primary_;
  db::Pool* replica_;
  const std::chrono::milliseconds remember_;
  const size_t max_principals_;
  const std::chrono::milliseconds breaker_;
  std::atomic<uint64_t> replayed_{0};  // the highest replay LSN the replica has reported
  // steady_clock nanoseconds until which reads skip the replica (0: they do not).
  std::atomic<int64_t> skip_replica_until_{0};
  struct Write {
    uint64_t lsn;
    std::chrono::steady_clock::time_point at;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Write> writes_;  // guarded by mu_
};

}  // namespace synaps::api
