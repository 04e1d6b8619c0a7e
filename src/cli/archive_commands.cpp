// synaps archive create | restore | list (docs/storage.md, "Archives"). Like gc, these talk to
// PostgreSQL and the object store directly: archiving is an operator's job (the retention
// expiry calls the same history::ArchiveRuns), not a tenant's API call.
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/config.h"
#include "core/http_grammar.h"
#include "core/ids.h"
#include "db/connection.h"
#include "db/deadlines.h"
#include "history/archive.h"
#include "objstore/object_store.h"
#include "store/archive_store.h"

namespace synaps::cli {
namespace {

using nlohmann::json;

// Archive data that PostgreSQL's record refuses (damaged, or larger than the reader's cap) is
// reported by its own code, as the API does (502 archive_corrupt / archive_too_large).
int Report(const Error& e, bool as_json) {
  if (as_json) {
    const std::string code =
        history::IsArchiveDataError(e) ? e.field : std::string(ErrorCodeName(e.code));
    std::cout << json{{"error", {{"code", code}, {"message", e.message}}}}.dump() << "\n";
  }
  std::cerr << "synaps archive: " << e.message << "\n";
  return 1;
}

json RecordJson(const store::ArchiveRecord& r) {
  return {{"tenant", r.tenant_id},
          {"day", r.day},
          {"segment", r.segment},
          {"dataKey", r.data_key},
          {"manifestKey", r.manifest_key},
          {"schemaVersion", r.schema_version},
          {"runs", r.runs},
          {"tasks", r.tasks},
          {"events", r.events},
          {"artifacts", r.artifacts},
          {"bytes", r.bytes},
          {"sha256", r.sha256},
          {"from", r.first_at ? json(*r.first_at) : json()},
          {"to", r.last_at ? json(*r.last_at) : json()},
          {"archivedAt", r.archived_at}};
}

int Create(db::Connection& conn, objstore::ObjectStore& objects, const ArchiveFlags& flags) {
  history::ArchiveRequest request{flags.tenant, flags.day.value_or(""), flags.run_ids};
  auto done = history::ArchiveRuns(conn, objects, request);
  if (!done) return Report(done.error(), flags.json);
  if (flags.json) {
    std::cout << json{{"dataKey", done->data_key}, {"manifestKey", done->manifest_key},
                      {"runs", done->runs},        {"tasks", done->tasks},
                      {"events", done->events},    {"artifacts", done->artifacts},
                      {"bytes", done->bytes},      {"alreadyArchived", done->already_archived},
                      {"segments", done->segments}}
                     .dump()
              << "\n";
  } else {
    std::cout << (done->already_archived ? "already archived: " : "archived ") << done->runs
              << " runs (" << done->tasks << " tasks, " << done->events << " events, "
              << done->bytes << " bytes) in " << done->data_key
              << (done->segments > 1
                      ? " and " + std::to_string(done->segments - 1) + " more segments"
                      : "")
              << "\n";
  }
  return 0;
}

int Restore(db::Connection& conn, objstore::ObjectStore& objects, const ArchiveFlags& flags) {
  std::string tenant = flags.tenant;
  std::string day = flags.day.value_or("");
  // Only run ids: find their segment through PostgreSQL's record (one run at a time).
  if (tenant.empty() && !day.empty()) {
    return Report({ErrorCode::kInvalidArgument, "--day needs --tenant"}, flags.json);
  }
  history::RestoreResult total;
  const history::RestoreOptions options{.keep = flags.keep, .unrecorded = flags.unrecorded};
  if (tenant.empty()) {
    if (flags.run_ids.empty()) {
      return Report({ErrorCode::kInvalidArgument, "give run ids, or --tenant and --day"},
                    flags.json);
    }
    for (const auto& id : flags.run_ids) {
      if (!IsUuid(id)) {
        return Report({ErrorCode::kInvalidArgument, "run id '" + id + "' is not a UUID"},
                      flags.json);
      }
      // The segment PostgreSQL records for the run, and only that one.
      auto done = history::RestoreArchivedRun(conn, objects, "", id, options);
      if (!done) return Report(done.error(), flags.json);
      total.runs += done->runs;
      total.skipped += done->skipped;
      total.artifacts_mapped += done->artifacts_mapped;
      total.keys_dropped.insert(total.keys_dropped.end(), done->keys_dropped.begin(),
                                done->keys_dropped.end());
    }
  } else {
    auto done = history::RestoreRuns(conn, objects, tenant, day, flags.run_ids, options);
    if (!done) return Report(done.error(), flags.json);
    total = *done;
  }
  if (flags.json) {
    json dropped = json::array();
    for (const auto& [run, key] : total.keys_dropped) {
      dropped.push_back({{"runId", run}, {"idempotencyKey", key}});
    }
    std::cout << json{{"restored", total.runs},
                      {"alreadyPresent", total.skipped},
                      {"kept", flags.keep},
                      {"artifactsMapped", total.artifacts_mapped},
                      {"idempotencyKeysDropped", dropped}}
                     .dump()
              << "\n";
  } else {
    std::cout << "restored " << total.runs << " runs (" << total.skipped
              << " were in PostgreSQL already)"
              << (flags.keep ? "; marked to keep: expiry leaves them\n" : "\n");
    for (const auto& [run, key] : total.keys_dropped) {
      std::cout << "run " << run << ": its command came back without its idempotency key '" << key
                << "' (a command made after the run expired holds it)\n";
    }
    if (total.artifacts_mapped > 0) {
      std::cout << total.artifacts_mapped
                << " archived artifacts were put under the artifact their thread has under the "
                   "same name now\n";
    }
  }
  return 0;
}

int List(db::Connection& conn, const ArchiveFlags& flags) {
  if (!IsTenantId(flags.tenant)) {
    return Report({ErrorCode::kInvalidArgument, "--tenant is not a valid tenant id"}, flags.json);
  }
  if (flags.day && !history::IsArchiveDay(*flags.day)) {
    return Report({ErrorCode::kInvalidArgument, "--day must be a date as YYYY-MM-DD"}, flags.json);
  }
  auto archives = store::ListArchives(conn, flags.tenant, flags.day);
  if (!archives) return Report(archives.error(), flags.json);
  if (flags.json) {
    json items = json::array();
    for (const auto& r : *archives) items.push_back(RecordJson(r));
    std::cout << json{{"items", items}}.dump() << "\n";
    return 0;
  }
  std::cout << "DAY         RUNS   TASKS  EVENTS  BYTES      DATA\n";
  for (const auto& r : *archives) {
    std::cout << r.day << "  " << r.runs << "  " << r.tasks << "  " << r.events << "  " << r.bytes
              << "  " << r.data_key << "\n";
  }
  return 0;
}

}  // namespace

CLI::App* AddArchiveCommand(CLI::App& app, ArchiveFlags& flags) {
  auto* cmd = app.add_subcommand(
      "archive",
      "Run archives in the object store: gzip JSON Lines per tenant and day, with a manifest "
      "(reads SYNAPS_DATABASE_URL and SYNAPS_OBJECT_STORE)");
  cmd->require_subcommand(1);
  auto common = [&](CLI::App* sub) {
    sub->add_option("--database-url", flags.database_url,
                    "PostgreSQL URL (env SYNAPS_DATABASE_URL)");
    sub->add_option("--object-store", flags.object_store,
                    "file:///path or s3://bucket?... (env SYNAPS_OBJECT_STORE)");
    sub->add_flag("--json", flags.json, "machine-readable output");
    sub->callback([&flags, sub] { flags.verb = sub->get_name(); });
  };
  auto* create = cmd->add_subcommand(
      "create", "Archive finished runs of one tenant under one day (does not delete them)");
  create->add_option("--tenant", flags.tenant, "tenant id")->required();
  create->add_option("--day", flags.day, "UTC day, YYYY-MM-DD")->required();
  create->add_option("runs", flags.run_ids, "run ids (1..1000)")->required();
  common(create);
  auto* restore = cmd->add_subcommand(
      "restore",
      "Insert archived runs back into PostgreSQL with their ids: given run ids, or every run "
      "of --tenant on --day (rows that exist are kept)");
  restore->add_option("--tenant", flags.tenant, "tenant id (with --day)");
  restore->add_option("--day", flags.day, "UTC day, YYYY-MM-DD (with --tenant)");
  restore->add_option("runs", flags.run_ids, "run ids (without --tenant: found by their record)");
  restore->add_flag("--keep", flags.keep,
                    "mark the restored runs to keep: the next expiry pass leaves them");
  restore->add_flag("--unrecorded", flags.unrecorded,
                    "also restore segments PostgreSQL has no record of, trusting the object "
                    "store's manifests (only after the records were lost)");
  common(restore);
  auto* list = cmd->add_subcommand("list", "List a tenant's archived segments");
  list->add_option("--tenant", flags.tenant, "tenant id")->required();
  list->add_option("--day", flags.day, "only this UTC day, YYYY-MM-DD");
  common(list);
  return cmd;
}

int RunArchive(const ArchiveFlags& flags) {
  std::string database_url = config::FlagOrEnv(flags.database_url, "SYNAPS_DATABASE_URL");
  if (database_url.empty()) {
    throw ConfigError(
        "SYNAPS_DATABASE_URL is not set (or pass --database-url): archives are recorded in "
        "PostgreSQL, e.g. postgresql://synaps:secret@localhost:5432/synaps");
  }
  auto objects = objstore::OpenObjectStore(config::FlagOrEnv(
      flags.object_store, "SYNAPS_OBJECT_STORE", "file:///var/lib/synaps/objects"));
  auto conn = db::Connection::Connect(database_url, db::ConnectOptionsFromEnv(db::Role::kCli));
  if (!conn) return Report(conn.error(), flags.json);
  if (flags.verb == "create") return Create(*conn, *objects, flags);
  if (flags.verb == "restore") return Restore(*conn, *objects, flags);
  return List(*conn, flags);
}

}  // namespace synaps::cli
