// synaps retention get | set | clear (GET/PUT/DELETE /v1/retention), synaps runs keep (POST
// /v1/runs/{id}/keep) and synaps expire (expiry on demand, against PostgreSQL like `synaps gc`,
// with a progress line per batch). docs/history.md.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "core/config.h"
#include "db/deadlines.h"
#include "history/archive.h"
#include "history/expiry.h"
#include "objstore/object_store.h"

namespace synaps::cli {

using nlohmann::json;

namespace {

void PrintRetention(const json& r) {
  std::cout << "tenant " << r.value("tenant", "") << ": ";
  if (r["retentionDays"].is_null()) {
    std::cout << "runs are kept for ever";
  } else {
    std::cout << "finished runs expire after " << r["retentionDays"].get<int64_t>() << " days";
  }
  std::cout << (r.value("archive", false) ? ", archived first" : "") << " ("
            << r.value("source", "")
            << (r["updatedBy"].is_string() ? ", set by " + r["updatedBy"].get<std::string>() : "")
            << ")\n";
}

}  // namespace

CLI::App* AddRetentionCommand(CLI::App& app, RetentionFlags& flags) {
  auto* cmd = app.add_subcommand("retention", "How long finished runs stay in PostgreSQL");
  cmd->require_subcommand(1);
  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--tenant", flags.tenant,
                    "a tenant (default yours; another, or * for the default, needs the "
                    "installation scope)");
    sub->add_flag("--json", flags.json, "machine-readable output");
  };
  auto* get = cmd->add_subcommand("get", "Show the retention that applies");
  add_common(get);
  get->callback([&] { flags.verb = "get"; });
  auto* set = cmd->add_subcommand("set", "Set the retention (audited)");
  add_common(set);
  set->add_option("--days", flags.days, "days after a run finished (1..36500)")
      ->check(CLI::Range(1, 36500));
  set->add_flag("--forever", flags.forever, "never expire");
  set->add_option("--archive", flags.archive, "archive expiring runs to the object store first")
      ->check(CLI::IsMember({"on", "off"}));
  set->add_option("--reason", flags.reason, "why (kept in the audit log)");
  set->callback([&] { flags.verb = "set"; });
  auto* clear = cmd->add_subcommand("clear", "Forget the tenant's own setting: follow the default");
  add_common(clear);
  clear->callback([&] { flags.verb = "clear"; });
  return cmd;
}

int RunRetention(const RetentionFlags& flags) {
  ApiClient client = ApiClient::FromEnvironment();
  std::string path = "/v1/retention";
  if (flags.tenant) path += "?tenant=" + PercentEncode(*flags.tenant);
  Result<json> r = std::unexpected(Error{ErrorCode::kInternal, "no verb"});
  if (flags.verb == "get") {
    r = client.Call("GET", path);
  } else if (flags.verb == "clear") {
    r = client.Call("DELETE", path);
  } else {
    if (flags.days.has_value() == flags.forever) {
      std::cerr << "synaps retention set: give --days N or --forever\n";
      return 2;
    }
    json body = {{"retentionDays", flags.forever ? json(nullptr) : json(*flags.days)},
                 {"archive", flags.archive == "on"}};
    if (flags.reason) body["reason"] = *flags.reason;
    r = client.Call("PUT", path, &body);
  }
  if (!r) return ReportError(r.error(), flags.json);
  if (flags.json) {
    std::cout << r->dump() << "\n";
  } else {
    PrintRetention(*r);
  }
  return 0;
}

int RunRunsKeep(const std::string& run_id, bool keep, bool as_json) {
  ApiClient client = ApiClient::FromEnvironment();
  json body = {{"keep", keep}};
  auto r = client.Call("POST", "/v1/runs/" + PercentEncode(run_id) + "/keep", &body);
  if (!r) return ReportError(r.error(), as_json);
  if (as_json) {
    std::cout << r->dump() << "\n";
  } else {
    std::cout << "run " << run_id
              << (keep ? " is kept: expiry never takes it\n"
                       : " is no longer kept: it expires with its tenant's retention\n");
  }
  return 0;
}

CLI::App* AddExpireCommand(CLI::App& app, ExpireFlags& flags) {
  auto* cmd = app.add_subcommand(
      "expire",
      "Delete the finished runs whose retention has passed, now (what the API does "
      "every SYNAPS_EXPIRY_SECONDS)");
  cmd->add_option("--database-url", flags.database_url, "PostgreSQL URL (env SYNAPS_DATABASE_URL)");
  cmd->add_option("--object-store", flags.object_store,
                  "where archiving tenants' runs are archived first: file:///path or "
                  "s3://bucket?... (env SYNAPS_OBJECT_STORE)");
  cmd->add_option("--batch", flags.batch_runs, "runs per transaction")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--max-batches", flags.max_batches, "stop after this many batches (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--dry-run", flags.dry_run, "count what has expired; delete nothing");
  cmd->add_flag("--json", flags.json, "machine-readable output (the final report)");
  return cmd;
}

int RunExpire(const ExpireFlags& flags) {
  std::string url = config::FlagOrEnv(flags.database_url, "SYNAPS_DATABASE_URL");
  if (url.empty()) {
    throw ConfigError(
        "SYNAPS_DATABASE_URL is not set (or pass --database-url): expire deletes from "
        "PostgreSQL, e.g. postgresql://synaps:secret@localhost:5432/synaps");
  }
  auto conn = db::Connection::Connect(url, db::ConnectOptionsFromEnv(db::Role::kCli));
  if (!conn) return ReportError(conn.error(), flags.json);
  history::ExpiryOptions options{
      .batch_runs = flags.batch_runs, .max_batches = flags.max_batches, .dry_run = flags.dry_run};
  auto progress = [&](const history::TenantExpiry& t, const history::ExpiryReport& so_far) {
    if (flags.json) return;
    if (flags.dry_run) {
      std::cerr << "tenant " << t.tenant << ": " << t.expired << " runs expired (retention "
                << t.retention_days << " days)\n";
      return;
    }
    std::cerr << "tenant " << t.tenant << ": " << t.counts.runs << " runs, " << t.counts.tasks
              << " tasks, " << t.counts.events << " events deleted; total " << so_far.total.runs
              << " runs in " << so_far.batches << " batches\n";
  };
  // Without an object store, tenants that archive are skipped (the report says so).
  std::string store_url = config::FlagOrEnv(flags.object_store, "SYNAPS_OBJECT_STORE");
  std::unique_ptr<objstore::ObjectStore> objects;
  std::unique_ptr<history::ObjectStoreArchiver> archiver;
  if (!store_url.empty()) {
    objects = objstore::OpenObjectStore(store_url);
    archiver = std::make_unique<history::ObjectStoreArchiver>(objects.get());
  }
  auto report = history::ExpireOnce(*conn, archiver.get(), options, progress);
  if (!report) return ReportError(report.error(), flags.json);
  if (flags.json) {
    json out = report->ToJson();
    out["dryRun"] = flags.dry_run;
    std::cout << out.dump() << "\n";
  } else {
    for (const auto& t : report->tenants) {
      if (!t.skipped.empty())
        std::cout << "tenant " << t.tenant << " skipped: " << t.skipped << "\n";
    }
    if (report->busy) std::cout << "another expiry is running; stopped\n";
    for (const auto& day : report->partitions_dropped) {
      std::cout << "ledger partition of " << day << " dropped\n";
    }
    std::cout << (flags.dry_run ? "dry run: nothing deleted\n" : "") << report->total.runs
              << " runs, " << report->total.tasks << " tasks, " << report->total.events
              << " ledger events, " << report->total.artifacts << " artifacts deleted in "
              << report->batches << " batches\n";
  }
  return report->busy ? 3 : 0;
}

}  // namespace synaps::cli
