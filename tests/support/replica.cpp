#include "support/replica.h"

#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "core/ids.h"
#include "db/connection.h"

namespace synaps::testing {

namespace fs = std::filesystem;

namespace {

// PostgreSQL refuses root: as root, the backup and the standby run as `postgres`.
Status GiveToPostgres(const std::string& dir) {
  if (geteuid() != 0) return Ok();
  struct passwd* pw = getpwnam("postgres");
  if (pw == nullptr) return Fail(ErrorCode::kUnavailable, "no postgres system user");
  if (chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    return Fail(ErrorCode::kUnavailable, "cannot chown " + dir);
  }
  return Ok();
}

}  // namespace

Result<std::unique_ptr<StreamingReplica>> StreamingReplica::Start(devstack::PostgresServer& primary,
                                                                  const std::string& dir) {
  ASSIGN_OR_RETURN(std::string bin, devstack::FindPostgresBinDir());
  RETURN_IF_ERROR(GiveToPostgres(dir));
  const std::string data = dir + "/data";
  const std::string slot = "test_replica_" + RandomHex(4);
  ProcessOptions backup;
  backup.argv = {bin + "/pg_basebackup", "-h", "127.0.0.1", "-p", std::to_string(primary.port()),
                 "-U", "postgres", "-D", data, "-R", "-X", "stream", "-c", "fast", "--no-sync",
                 // A slot keeps the primary's WAL until the standby has streamed it.
                 "-C", "-S", slot};
  backup.log_path = dir + "/basebackup.log";
  if (geteuid() == 0) backup.run_as_user = "postgres";
  ASSIGN_OR_RETURN(auto child, ChildProcess::Spawn(backup));
  auto status = child.Wait(std::chrono::seconds(120));
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return Fail(ErrorCode::kUnavailable, "pg_basebackup failed; see " + backup.log_path);
  }
  auto replica = std::unique_ptr<StreamingReplica>(new StreamingReplica());
  replica->primary_ = &primary;
  replica->slot_ = slot;
  ASSIGN_OR_RETURN(replica->server_,
                   devstack::PostgresServer::Start(devstack::PostgresOptions{
                       .data_dir = data, .log_path = dir + "/replica.log", .durable = false}));
  return replica;
}

StreamingReplica::~StreamingReplica() {
  Stop();
  if (primary_ == nullptr || slot_.empty()) return;
  auto primary = db::Connection::Connect(primary_->Url("postgres"));
  if (!primary) return;
  // The standby's walsender ends shortly after the standby stops; an active slot cannot go.
  for (int i = 0; i < 500; ++i) {
    auto dropped = primary->Exec(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
        " WHERE slot_name = $1 AND NOT active",
        {slot_});
    auto left =
        primary->Exec("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", {slot_});
    if (!dropped || !left || left->GetInt(0, 0) == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void StreamingReplica::Stop() {
  if (server_ != nullptr) server_->Stop();
}

Status StreamingReplica::CatchUp(const std::string& primary_url, std::chrono::seconds timeout) {
  ASSIGN_OR_RETURN(auto primary, db::Connection::Connect(primary_url));
  ASSIGN_OR_RETURN(auto target, primary.Exec("SELECT pg_current_wal_insert_lsn()::text"));
  const std::string lsn = target.GetString(0, 0);
  ASSIGN_OR_RETURN(auto replica, db::Connection::Connect(Url("postgres")));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    ASSIGN_OR_RETURN(auto r, replica.Exec("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", {lsn}));
    if (r.GetBool(0, 0)) return Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Fail(ErrorCode::kDeadlineExceeded, "the replica did not replay " + lsn + " in time");
}

Status StreamingReplica::PauseReplay() {
  ASSIGN_OR_RETURN(auto replica, db::Connection::Connect(Url("postgres")));
  RETURN_IF_ERROR(replica.Exec("SELECT pg_wal_replay_pause()"));
  // Paused once pg_get_wal_replay_pause_state() says so (PostgreSQL 14+).
  for (int i = 0; i < 500; ++i) {
    ASSIGN_OR_RETURN(auto r, replica.Exec("SELECT pg_get_wal_replay_pause_state()"));
    if (r.GetString(0, 0) == "paused") return Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Fail(ErrorCode::kDeadlineExceeded, "replay did not pause");
}

Status StreamingReplica::ResumeReplay() {
  ASSIGN_OR_RETURN(auto replica, db::Connection::Connect(Url("postgres")));
  RETURN_IF_ERROR(replica.Exec("SELECT pg_wal_replay_resume()"));
  return Ok();
}

}  // namespace synaps::testing
