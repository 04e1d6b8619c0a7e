// The `synaps` subcommands. Each Run* function returns the process exit code; errors are
// printed for a person (stderr), or as JSON on stdout with --json where a verb has it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "auth/jwt.h"
#include "core/error.h"
#include "db/migrate.h"

namespace CLI {
class App;
}

namespace synaps::cli {

// Flags that override the environment for the service verbs.
struct ServiceFlags {
  std::optional<std::string> database_url;
  std::optional<std::string> nats_url;
  std::optional<std::string> object_store;
  std::optional<std::string> listen;
  std::optional<int> concurrency;
  std::optional<std::string> queues;
};

struct DevFlags {
  std::string state_dir;
  std::optional<std::string> listen;
  std::optional<std::string> demo_text;
  bool exit_after_demo = false;
};

struct SubmitFlags {
  std::string text;
  std::string kind = "prompt";         // prompt or agent
  std::optional<std::string> skill;    // control-registry names
  std::optional<std::string> route;
  std::vector<std::string> tools;      // agent only
  std::optional<int> max_steps;        // agent only
  std::vector<std::string> tags;
  std::optional<std::string> thread_id;
  std::optional<std::string> idempotency_key;
  bool wait = false;
  int timeout_seconds = 120;
  bool json = false;
  // --file: one submit body per line ("-": stdin), sent in batches of `batch_size` (1..1000).
  std::string file;
  int batch_size = 1000;
};

// synaps tokens mint: an HS256 JWT for the API and Hasura, signed with SYNAPS_JWT_SECRET.
struct TokensMintFlags {
  std::string tenant;
  std::string role;
  int64_t ttl_seconds = 3600;
  std::string subject = "synaps-cli";
  std::string issuer = std::string(auth::kDefaultIssuer);
  std::string audience = std::string(auth::kDefaultAudience);
  bool installation = false;  // scope "installation": may write the control registry
  bool json = false;
};

int RunApi(const ServiceFlags& flags);
int RunWorker(const ServiceFlags& flags);
int RunMigrate(const ServiceFlags& flags, bool json);
// Connects to `database_url` as the migrate role (SYNAPS_DB_* connect settings) and applies the
// embedded migrations under the migration lock (SYNAPS_MIGRATE_LOCK_TIMEOUT): `synaps migrate`
// and `synaps dev` both migrate through it.
Result<db::MigrationReport> MigrateDatabase(const std::string& database_url);
int RunDev(const DevFlags& flags);
int RunSubmit(const SubmitFlags& flags);
// synaps submit --file: exit 0 when every line was accepted (created or existing), 1 when a
// line failed (each named with its error) or a batch could not be sent.
int RunSubmitFile(const SubmitFlags& flags);
int RunRunsGet(const std::string& run_id, bool json);
// synaps runs get --archived: GET /v1/runs/{id}/archive, the run as its archive holds it.
int RunRunsGetArchived(const std::string& run_id, bool json);

// synaps runs list: GET /v1/runs with its filters; one page, with the next page's cursor.
struct RunsListFlags {
  std::optional<std::string> thread_id;
  std::optional<std::string> status;
  std::optional<std::string> schedule;
  std::optional<int> limit;
  std::optional<std::string> cursor;
  bool json = false;
};
int RunRunsList(const RunsListFlags& flags);

// synaps runs watch: follows GET /v1/runs/{id}/events (Server-Sent Events), printing each
// event, with a progress line on a terminal; reconnects with Last-Event-ID when the connection
// drops. Exit code kWatchSucceeded, kWatchRunFailed (failed or cancelled) or kWatchError.
struct RunsWatchFlags {
  std::string run_id;
  int timeout_seconds = 0;  // 0: no limit
  bool progress = true;     // the live progress line, when stdout is a terminal
  bool json = false;        // one JSON object per line: each event, then {"type":"end",...}
};
inline constexpr int kWatchSucceeded = 0;
inline constexpr int kWatchRunFailed = 1;
inline constexpr int kWatchError = 2;
int RunRunsWatch(const RunsWatchFlags& flags);

// synaps runs cancel: POST /v1/runs/{id}/cancel.
int RunRunsCancel(const std::string& run_id, bool json);

// synaps tasks approve|reject: POST /v1/tasks/{id}/approve|reject with an optional reason.
int RunTasksDecide(const std::string& task_id, bool approve, const std::string& reason,
                   bool json);

// synaps artifacts get: the bytes of one version (default the latest) to stdout or a file.
struct ArtifactsGetFlags {
  std::string artifact_id;
  std::optional<int> version;
  std::optional<std::string> output_path;  // "-" = stdout
  bool json = false;
};
int RunArtifactsGet(const ArtifactsGetFlags& flags);

// synaps keys create | revoke: POST /v1/api-keys, DELETE /v1/api-keys/{id} (admin tokens).
struct KeysCreateFlags {
  std::string role;
  std::optional<std::string> tenant;
  std::optional<std::string> name;
  bool installation = false;  // needs an installation-scoped caller
  bool json = false;
};
int RunKeysCreate(const KeysCreateFlags& flags);
int RunKeysRevoke(const std::string& key_id, bool json);
// Throws ConfigError when SYNAPS_JWT_SECRET is unset or shorter than 32 bytes.
int RunTokensMint(const TokensMintFlags& flags);

// `synaps gc`: deletes objects under objects/ that no artifact version refers to and that were
// last written at least `older_than_seconds` ago (see docs/storage.md).
struct GcFlags {
  std::optional<std::string> database_url;
  std::optional<std::string> object_store;
  bool dry_run = false;
  int64_t older_than_seconds = 3600;
  bool json = false;
  bool quiet = false;  // no progress lines on stderr
};
int RunGc(const GcFlags& flags);

// synaps retention get | set | clear (docs/history.md). The verb parsed is in `verb`.
struct RetentionFlags {
  std::string verb;
  std::optional<std::string> tenant;  // a tenant id or "*" (the default)
  std::optional<int> days;            // set --days
  bool forever = false;               // set --forever
  std::string archive = "off";        // set --archive on|off
  std::optional<std::string> reason;
  bool json = false;
};
CLI::App* AddRetentionCommand(CLI::App& app, RetentionFlags& flags);
int RunRetention(const RetentionFlags& flags);
// synaps runs keep [--release]: POST /v1/runs/{id}/keep.
int RunRunsKeep(const std::string& run_id, bool keep, bool as_json);

// synaps expire: one expiry pass against PostgreSQL (history/expiry.h), archiving the runs of
// tenants that archive to the object store first (history/archive.h), a progress line per
// batch on stderr. Exit 0 when done, 1 on errors, 3 when another expiry was running.
struct ExpireFlags {
  std::optional<std::string> database_url;
  std::optional<std::string> object_store;  // where tenants that archive are archived
  int batch_runs = 500;
  int max_batches = 0;
  bool dry_run = false;
  bool json = false;
};
CLI::App* AddExpireCommand(CLI::App& app, ExpireFlags& flags);
int RunExpire(const ExpireFlags& flags);
// synaps archive create | restore | list: run archives in the object store (docs/storage.md,
// "Archives"), straight against PostgreSQL and the store like gc (operators, not tenants).
struct ArchiveFlags {
  std::string verb;  // create, restore or list
  std::optional<std::string> database_url;
  std::optional<std::string> object_store;
  std::string tenant;
  std::optional<std::string> day;
  std::vector<std::string> run_ids;
  bool keep = false;        // restore --keep
  bool unrecorded = false;  // restore --unrecorded
  bool json = false;
};
CLI::App* AddArchiveCommand(CLI::App& app, ArchiveFlags& flags);
int RunArchive(const ArchiveFlags& flags);

// synaps control apply | get | history | rollback | delete | snapshot: the control registry
// through the API (docs/control.md). The verb that was parsed is in `verb`.
struct ControlFlags {
  std::string verb;
  std::string file;                  // apply -f; "-" = stdin
  bool dry_run = false;
  std::optional<std::string> reason;
  std::string kind;
  std::optional<std::string> name;
  std::optional<int64_t> version;    // get: item version; snapshot: snapshot version
  std::optional<int> to_version;     // rollback --to
  std::optional<std::string> actor;  // history filter
  std::optional<int> limit;
  std::optional<std::string> cursor;
  bool json = false;
};
// Adds `control` and its verbs to `app`, filling `flags` (which must outlive parsing).
CLI::App* AddControlCommand(CLI::App& app, ControlFlags& flags);
int RunControl(const ControlFlags& flags);

// synaps schedules list | get | trigger | backfill (docs/schedules.md). The verb parsed is in
// `verb`.
struct SchedulesFlags {
  std::string verb;
  std::string name;
  std::optional<std::string> overlap;  // trigger, backfill
  std::string from;                    // backfill, RFC 3339
  std::string to;
  bool json = false;
};
CLI::App* AddSchedulesCommand(CLI::App& app, SchedulesFlags& flags);
int RunSchedules(const SchedulesFlags& flags);

// synaps usage: tokens, cost and errors from GET /v1/usage.
struct UsageFlags {
  std::optional<std::string> from;  // YYYY-MM-DD
  std::optional<std::string> to;
  std::string group_by = "day,route,model";
  std::optional<std::string> tenant;
  bool json = false;
};
CLI::App* AddUsageCommand(CLI::App& app, UsageFlags& flags);
int RunUsage(const UsageFlags& flags);

// Blocks SIGINT and SIGTERM in the calling thread and every thread started after it, so that
// WaitForShutdownSignal() can take them synchronously. Call first thing in main().
void BlockShutdownSignals();
// Waits for SIGINT or SIGTERM; returns the signal.
int WaitForShutdownSignal();
// Undoes BlockShutdownSignals for the calling thread (client verbs: Ctrl-C ends them).
void UnblockShutdownSignals();

}  // namespace synaps::cli
