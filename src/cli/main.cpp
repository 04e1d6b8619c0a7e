// The synaps binary: one executable, one subcommand per process role or client verb.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/commands.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"

int main(int argc, char** argv) {
  using namespace synaps;
  cli::BlockShutdownSignals();

  CLI::App app{"Synaps: a control plane for AI-agent work.\n"
               "Configuration comes from SYNAPS_* environment variables; flags override them."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("synaps ") + SYNAPS_VERSION);

  cli::ServiceFlags service;
  auto add_service_flags = [&](CLI::App* cmd) {
    cmd->add_option("--database-url", service.database_url,
                    "PostgreSQL URL (env SYNAPS_DATABASE_URL)");
    cmd->add_option("--nats-url", service.nats_url, "NATS URL (env SYNAPS_NATS_URL)");
    cmd->add_option("--object-store", service.object_store,
                    "file:///path or s3://bucket?... (env SYNAPS_OBJECT_STORE)");
  };

  auto* api = app.add_subcommand("api", "Run the Control API (HTTP on SYNAPS_LISTEN, outbox relay)");
  add_service_flags(api);
  api->add_option("--listen", service.listen, "host:port (env SYNAPS_LISTEN, default 0.0.0.0:8081)");

  auto* worker = app.add_subcommand("worker", "Run a worker: claim, execute, store, complete");
  add_service_flags(worker);
  worker
      ->add_option("--concurrency", service.concurrency,
                   "tasks in flight (env SYNAPS_WORKER_CONCURRENCY, default 128)")
      ->check(CLI::Range(1, 100000));
  worker->add_option("--queues", service.queues, "comma-separated (env SYNAPS_QUEUES)");

  bool json_out = false;
  auto* migrate = app.add_subcommand("migrate", "Apply database migrations (safe to run twice)");
  migrate->add_option("--database-url", service.database_url,
                      "PostgreSQL URL (env SYNAPS_DATABASE_URL)");
  migrate->add_flag("--json", json_out, "machine-readable output");

  cli::DevFlags dev;
  dev.state_dir = config::EnvOr("SYNAPS_STATE_DIR", ".synaps");
  auto* devcmd = app.add_subcommand(
      "dev", "Run everything on this machine: PostgreSQL, NATS, API and worker (Ctrl-C stops)");
  devcmd->add_option("--state-dir", dev.state_dir, "where data, logs and the token live")
      ->capture_default_str();
  devcmd->add_option("--listen", dev.listen, "API address (default 127.0.0.1:8081)");
  devcmd->add_option("--demo", dev.demo_text, "submit this text once up, print the run");
  devcmd->add_flag("--exit-after-demo", dev.exit_after_demo, "stop after the demo run");

  cli::SubmitFlags submit;
  auto* submitcmd = app.add_subcommand(
      "submit", "Submit a prompt or agent command, or many from a file (--file commands.jsonl)");
  auto* submit_text = submitcmd->add_option("text", submit.text, "the prompt text");
  auto* submit_file = submitcmd->add_option(
      "--file", submit.file,
      "a JSON Lines file, one submit body per line (- for stdin), sent as batch submits; "
      "prints created/existing/failed and each failing line (exit 1 when one fails)");
  submit_file->excludes(submit_text);
  submitcmd->add_option("--batch-size", submit.batch_size, "with --file: commands per request")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  submitcmd->add_option("--kind", submit.kind, "prompt, or agent (model -> tools -> model)")
      ->capture_default_str()
      ->check(CLI::IsMember({"prompt", "agent"}));
  submitcmd->add_option("--skill", submit.skill, "a skill of the control registry");
  submitcmd->add_option("--route", submit.route, "a route of the control registry");
  submitcmd->add_option("--tool", submit.tools, "agent: a tool it may call (repeatable)");
  submitcmd->add_option("--max-steps", submit.max_steps, "agent: model calls allowed (1..100)")
      ->check(CLI::Range(1, 100));
  submitcmd->add_option("--tag", submit.tags, "a tag route and arbiter rules match (repeatable)");
  submitcmd->add_option("--thread", submit.thread_id, "continue this thread");
  submitcmd->add_option("--idempotency-key", submit.idempotency_key,
                        "Idempotency-Key header; with --file, line N without its own "
                        "idempotencyKey gets <key>/<N>, so a rerun creates nothing twice");
  submitcmd
      ->add_flag("--wait", submit.wait, "wait for the run to finish and print it with its answer")
      ->excludes(submit_file);
  submitcmd->add_option("--timeout", submit.timeout_seconds, "seconds to wait")
      ->capture_default_str();
  submitcmd->add_flag("--json", submit.json, "machine-readable output");

  std::string run_id;
  auto* runs = app.add_subcommand("runs", "Inspect runs");
  runs->require_subcommand(1);
  auto* runs_get = runs->add_subcommand(
      "get", "Show a run with its tasks (and their answers), events and artifacts");
  runs_get->add_option("id", run_id, "run id")->required();
  runs_get->add_flag("--json", json_out, "machine-readable output");
  bool archived = false;
  runs_get->add_flag("--archived", archived,
                     "read the run from its archive in the object store (after it expired from "
                     "PostgreSQL): every row of its story as archived");

  cli::RunsListFlags runs_list_flags;
  auto* runs_list = runs->add_subcommand("list", "List runs, newest first (one page)");
  runs_list->add_option("--thread", runs_list_flags.thread_id, "only runs of this thread");
  runs_list->add_option("--status", runs_list_flags.status, "only runs in this status")
      ->check(CLI::IsMember(
          {"queued", "running", "awaiting_approval", "succeeded", "failed", "cancelled"}));
  runs_list->add_option("--limit", runs_list_flags.limit, "runs per page (1..500, default 50)")
      ->check(CLI::Range(1, 500));
  runs_list->add_option("--schedule", runs_list_flags.schedule,
                        "only runs this schedule started");
  runs_list->add_option("--cursor", runs_list_flags.cursor, "the page after this cursor");
  runs_list->add_flag("--json", runs_list_flags.json, "machine-readable output");

  cli::RunsWatchFlags watch_flags;
  auto* runs_watch = runs->add_subcommand(
      "watch",
      "Follow a run's events live until it finishes. Exit code 0: succeeded, 1: failed or "
      "cancelled, 2: could not watch");
  runs_watch->add_option("id", watch_flags.run_id, "run id")->required();
  runs_watch->add_option("--timeout", watch_flags.timeout_seconds,
                         "give up (exit 2) after this many seconds; 0 = never")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  bool no_progress = false;
  runs_watch->add_flag("--no-progress", no_progress, "no live progress line on a terminal");
  runs_watch->add_flag("--json", watch_flags.json,
                       "one JSON object per line: each ledger event, then {\"type\":\"end\"}");

  bool keep_release = false;
  auto* runs_keep =
      runs->add_subcommand("keep", "Keep a run: retention never expires it (--release: undo)");
  runs_keep->add_option("id", run_id, "run id")->required();
  runs_keep->add_flag("--release", keep_release, "no longer keep it");
  runs_keep->add_flag("--json", json_out, "machine-readable output");
  auto* runs_cancel = runs->add_subcommand("cancel", "Cancel a queued or running run");
  runs_cancel->add_option("id", run_id, "run id")->required();
  runs_cancel->add_flag("--json", json_out, "machine-readable output");

  std::string task_id, decision_reason;
  auto* tasks = app.add_subcommand("tasks", "Decide tasks that arbiters held for approval");
  tasks->require_subcommand(1);
  auto* tasks_approve = tasks->add_subcommand(
      "approve", "Approve a held task: it completes with the output it was held with");
  auto* tasks_reject =
      tasks->add_subcommand("reject", "Reject a held task: it fails without retry");
  for (auto* sub : {tasks_approve, tasks_reject}) {
    sub->add_option("id", task_id, "task id (from the run's task.awaiting_approval event)")
        ->required();
    sub->add_option("--reason", decision_reason, "why, for the ledger");
    sub->add_flag("--json", json_out, "machine-readable output");
  }

  cli::ArtifactsGetFlags artifact_flags;
  auto* artifacts = app.add_subcommand("artifacts", "Fetch artifacts");
  artifacts->require_subcommand(1);
  auto* artifacts_get = artifacts->add_subcommand(
      "get", "Write an artifact version's bytes to stdout or a file");
  artifacts_get->add_option("id", artifact_flags.artifact_id, "artifact id (see `runs get`)")
      ->required();
  artifacts_get->add_option("--version", artifact_flags.version, "version (default the latest)")
      ->check(CLI::Range(1, 1000000000));
  artifacts_get->add_option("-o,--output", artifact_flags.output_path,
                            "write to this file instead of stdout");
  artifacts_get->add_flag("--json", artifact_flags.json,
                          "print metadata as JSON (with the content unless -o is given)");

  cli::KeysCreateFlags key_flags;
  std::string key_id;
  auto* keys = app.add_subcommand("keys", "Manage API keys (needs an admin token)");
  keys->require_subcommand(1);
  auto* keys_create = keys->add_subcommand("create", "Create an API key; prints its token once");
  keys_create->add_option("--role", key_flags.role, "what the key may do")
      ->required()
      ->check(CLI::IsMember({"admin", "operator", "worker", "viewer"}));
  keys_create->add_option("--tenant", key_flags.tenant,
                          "tenant of the key (default the caller's; another tenant needs the "
                          "bootstrap admin token)");
  keys_create->add_option("--name", key_flags.name, "a label, e.g. who or what uses it");
  keys_create->add_flag("--installation", key_flags.installation,
                        "grant the installation scope: write the control registry, act across "
                        "tenants (needs the bootstrap token or an installation admin)");
  keys_create->add_flag("--json", key_flags.json, "machine-readable output");
  auto* keys_revoke = keys->add_subcommand("revoke", "Revoke an API key at once");
  keys_revoke->add_option("id", key_id, "key id")->required();
  keys_revoke->add_flag("--json", json_out, "machine-readable output");

  cli::TokensMintFlags mint;
  auto* tokens = app.add_subcommand("tokens", "Mint tokens for the API and Hasura");
  tokens->require_subcommand(1);
  auto* tokens_mint = tokens->add_subcommand(
      "mint", "Print an HS256 JWT signed with SYNAPS_JWT_SECRET (Hasura claim format)");
  tokens_mint->add_option("--tenant", mint.tenant, "tenant id (x-hasura-tenant-id)")->required();
  tokens_mint->add_option("--role", mint.role, "default role")
      ->required()
      ->check(CLI::IsMember({"admin", "operator", "worker", "viewer", "user"}));
  tokens_mint
      ->add_option("--ttl", mint.ttl_seconds,
                   "lifetime in seconds (at most SYNAPS_JWT_MAX_TTL, default 24h)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{366} * 24 * 3600));
  tokens_mint->add_option("--subject", mint.subject, "sub and x-hasura-user-id")
      ->capture_default_str();
  tokens_mint->add_option("--issuer", mint.issuer, "iss")->capture_default_str();
  tokens_mint->add_option("--audience", mint.audience, "aud")->capture_default_str();
  tokens_mint->add_flag("--installation", mint.installation,
                        "add the claim scope=installation: write the control registry, act "
                        "across tenants");
  tokens_mint->add_flag("--json", mint.json, "print the token with its claims as JSON");

  cli::GcFlags gc;
  auto* gccmd = app.add_subcommand(
      "gc",
      "Delete stored objects under objects/ that no artifact version, held task or archive "
      "refers to, once older than a grace period (archives/ is never touched)");
  gccmd->add_option("--database-url", gc.database_url, "PostgreSQL URL (env SYNAPS_DATABASE_URL)");
  gccmd->add_option("--object-store", gc.object_store,
                    "file:///path or s3://bucket?... (env SYNAPS_OBJECT_STORE)");
  gccmd->add_flag("--dry-run", gc.dry_run, "list what would be deleted; delete nothing");
  gccmd->add_option("--older-than", gc.older_than_seconds,
                    "only objects last written at least this many seconds ago")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  gccmd->add_flag("--json", gc.json, "machine-readable output (progress still goes to stderr)");
  gccmd->add_flag("--quiet", gc.quiet, "no progress lines on stderr");

  cli::ArchiveFlags archive_flags;
  auto* archivecmd = cli::AddArchiveCommand(app, archive_flags);

  cli::ControlFlags control_flags;
  auto* controlcmd = cli::AddControlCommand(app, control_flags);

  cli::SchedulesFlags schedules_flags;
  auto* schedulescmd = cli::AddSchedulesCommand(app, schedules_flags);
  cli::UsageFlags usage_flags;
  auto* usagecmd = cli::AddUsageCommand(app, usage_flags);
  cli::RetentionFlags retention_flags;
  auto* retentioncmd = cli::AddRetentionCommand(app, retention_flags);
  cli::ExpireFlags expire_flags;
  auto* expirecmd = cli::AddExpireCommand(app, expire_flags);

  CLI11_PARSE(app, argc, argv);

  bool long_running = api->parsed() || worker->parsed() || devcmd->parsed();
  if (!long_running) {
    // Client verbs have no shutdown sequence: let Ctrl-C stop them at once.
    cli::UnblockShutdownSignals();
  }
  watch_flags.progress = !no_progress;

  try {
    bool service_verb = api->parsed() || worker->parsed();
    InitLogging(config::EnvOr("SYNAPS_LOG_LEVEL", service_verb ? "info" : "warn"), service_verb);
    if (api->parsed()) return cli::RunApi(service);
    if (worker->parsed()) return cli::RunWorker(service);
    if (migrate->parsed()) return cli::RunMigrate(service, json_out);
    if (devcmd->parsed()) return cli::RunDev(dev);
    if (submitcmd->parsed() && !submit.file.empty()) return cli::RunSubmitFile(submit);
    if (submitcmd->parsed() && submit.text.empty()) {
      std::cerr << "synaps submit: give the prompt text, or --file with commands\n";
      return 2;
    }
    if (submitcmd->parsed()) return cli::RunSubmit(submit);
    if (runs_get->parsed() && archived) return cli::RunRunsGetArchived(run_id, json_out);
    if (runs_get->parsed()) return cli::RunRunsGet(run_id, json_out);
    if (runs_list->parsed()) return cli::RunRunsList(runs_list_flags);
    if (runs_watch->parsed()) return cli::RunRunsWatch(watch_flags);
    if (runs_cancel->parsed()) return cli::RunRunsCancel(run_id, json_out);
    if (runs_keep->parsed()) return cli::RunRunsKeep(run_id, !keep_release, json_out);
    if (tasks_approve->parsed() || tasks_reject->parsed()) {
      return cli::RunTasksDecide(task_id, tasks_approve->parsed(), decision_reason, json_out);
    }
    if (artifacts_get->parsed()) return cli::RunArtifactsGet(artifact_flags);
    if (keys_create->parsed()) return cli::RunKeysCreate(key_flags);
    if (keys_revoke->parsed()) return cli::RunKeysRevoke(key_id, json_out);
    if (gccmd->parsed()) return cli::RunGc(gc);
    if (archivecmd->parsed()) return cli::RunArchive(archive_flags);
    if (controlcmd->parsed()) return cli::RunControl(control_flags);
    if (schedulescmd->parsed()) return cli::RunSchedules(schedules_flags);
    if (usagecmd->parsed()) return cli::RunUsage(usage_flags);
    if (retentioncmd->parsed()) return cli::RunRetention(retention_flags);
    if (expirecmd->parsed()) return cli::RunExpire(expire_flags);
    if (tokens_mint->parsed()) return cli::RunTokensMint(mint);
  } catch (const ConfigError& e) {
    std::cerr << "synaps: configuration error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
