// A real streaming replica of a test PostgreSQL server: `pg_basebackup -R -X stream` of the
// primary into a temporary directory, started as a hot standby on a port the OS picked (by the
// same devstack code that starts the primary). Replay can be paused to hold the replica behind
// the primary on purpose.
#pragma once

#include <memory>
#include <string>

#include "devstack/postgres_server.h"

namespace synaps::testing {

class StreamingReplica {
 public:
  // Stops the standby and drops its replication slot on the primary (else the primary keeps WAL
  // for it for the rest of the test run).
  ~StreamingReplica();

  // Clones `primary` (every database it holds now) and starts streaming from it.
  static Result<std::unique_ptr<StreamingReplica>> Start(devstack::PostgresServer& primary,
                                                         const std::string& dir);

  // postgresql://postgres@127.0.0.1:<replica port>/<db>
  std::string Url(const std::string& db) const { return server_->Url(db); }
  // Waits until the replica has replayed everything the primary had written when called.
  Status CatchUp(const std::string& primary_url, std::chrono::seconds timeout);
  // pg_wal_replay_pause() / pg_wal_replay_resume() on the replica.
  Status PauseReplay();
  Status ResumeReplay();
  // Stops the standby (fast shutdown): its URL refuses connections afterwards.
  void Stop();

 private:
  StreamingReplica() = default;

  std::unique_ptr<devstack::PostgresServer> server_;
  devstack::PostgresServer* primary_ = nullptr;
  std::string slot_;
};

}  // namespace synaps::testing
