// The synaps binary: one executable, one subcommand per process role or client verb.
//
// Each Add*Verbs function below declares one group of subcommands with their options and
// help text, and records for each the function that runs it (a Verb). main() parses, then
// runs the one verb that was parsed. The flags a verb's options write into are owned by the
// verb's `run` closure (a shared_ptr), so they live as long as the verb list.
#include <CLI/CLI.hpp>
#include <functional>
#include <iostream>
#include <memory>
#include <vector>

#include "cli/commands.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"

namespace synaps::cli {
namespace {

// One verb of the command line: the (sub)command CLI11 parses into and what runs it.
struct Verb {
  enum class Kind {
    kClient,   // a client verb: Ctrl-C stops it at once; logs warnings only
    kService,  // api, worker: long-running with a shutdown sequence; logs at info
    kDev,      // dev: long-running with a shutdown sequence; logs warnings only
  };
  CLI::App* command;
  std::function<int()> run;
  Kind kind = Kind::kClient;
};

using Verbs = std::vector<Verb>;

void AddServiceFlags(CLI::App* cmd, ServiceFlags& flags) {
  cmd->add_option("--database-url", flags.database_url, "PostgreSQL URL (env SYNAPS_DATABASE_URL)");
  cmd->add_option("--nats-url", flags.nats_url, "NATS URL (env SYNAPS_NATS_URL)");
  cmd->add_option("--object-store", flags.object_store,
                  "file:///path or s3://bucket?... (env SYNAPS_OBJECT_STORE)");
}

// api, worker, migrate, dev: the process roles.
void AddServiceVerbs(CLI::App& app, Verbs& verbs) {
  auto api_flags = std::make_shared<ServiceFlags>();
  auto* api =
      app.add_subcommand("api", "Run the Control API (HTTP on SYNAPS_LISTEN, outbox relay)");
  AddServiceFlags(api, *api_flags);
  api->add_option("--listen", api_flags->listen,
                  "host:port (env SYNAPS_LISTEN, default 0.0.0.0:8081)");
  verbs.push_back({api, [api_flags] { return RunApi(*api_flags); }, Verb::Kind::kService});

  auto worker_flags = std::make_shared<ServiceFlags>();
  auto* worker = app.add_subcommand("worker", "Run a worker: claim, execute, store, complete");
  AddServiceFlags(worker, *worker_flags);
  worker
      ->add_option("--concurrency", worker_flags->concurrency,
                   "tasks in flight (env SYNAPS_WORKER_CONCURRENCY, default 128)")
      ->check(CLI::Range(1, 100000));
  worker->add_option("--queues", worker_flags->queues, "comma-separated (env SYNAPS_QUEUES)");
  verbs.push_back(
      {worker, [worker_flags] { return RunWorker(*worker_flags); }, Verb::Kind::kService});

  struct MigrateFlags {
    ServiceFlags service;
    bool json = false;
  };
  auto migrate_flags = std::make_shared<MigrateFlags>();
  auto* migrate = app.add_subcommand("migrate", "Apply database migrations (safe to run twice)");
  migrate->add_option("--database-url", migrate_flags->service.database_url,
                      "PostgreSQL URL (env SYNAPS_DATABASE_URL)");
  migrate->add_flag("--json", migrate_flags->json, "machine-readable output");
  verbs.push_back({migrate, [migrate_flags] {
                     return RunMigrate(migrate_flags->service, migrate_flags->json);
                   }});

  auto dev = std::make_shared<DevFlags>();
  dev->state_dir = config::EnvOr("SYNAPS_STATE_DIR", ".synaps");
  auto* devcmd = app.add_subcommand(
      "dev", "Run everything on this machine: PostgreSQL, NATS, API and worker (Ctrl-C stops)");
  devcmd->add_option("--state-dir", dev->state_dir, "where data, logs and the token live")
      ->capture_default_str();
  devcmd->add_option("--listen", dev->listen, "API address (default 127.0.0.1:8081)");
  devcmd->add_option("--demo", dev->demo_text, "submit this text once up, print the run");
  devcmd->add_flag("--exit-after-demo", dev->exit_after_demo, "stop after the demo run");
  verbs.push_back({devcmd, [dev] { return RunDev(*dev); }, Verb::Kind::kDev});
}

// submit: one prompt or agent command, or many from a JSON Lines file.
void AddSubmitVerb(CLI::App& app, Verbs& verbs) {
  auto submit = std::make_shared<SubmitFlags>();
  auto* cmd = app.add_subcommand(
      "submit", "Submit a prompt or agent command, or many from a file (--file commands.jsonl)");
  auto* text = cmd->add_option("text", submit->text, "the prompt text");
  auto* file = cmd->add_option(
      "--file", submit->file,
      "a JSON Lines file, one submit body per line (- for stdin), sent as batch submits; "
      "prints created/existing/failed and each failing line (exit 1 when one fails)");
  file->excludes(text);
  cmd->add_option("--batch-size", submit->batch_size, "with --file: commands per request")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--kind", submit->kind, "prompt, or agent (model -> tools -> model)")
      ->capture_default_str()
      ->check(CLI::IsMember({"prompt", "agent"}));
  cmd->add_option("--skill", submit->skill, "a skill of the control registry");
  cmd->add_option("--route", submit->route, "a route of the control registry");
  cmd->add_option("--tool", submit->tools, "agent: a tool it may call (repeatable)");
  cmd->add_option("--max-steps", submit->max_steps, "agent: model calls allowed (1..100)")
      ->check(CLI::Range(1, 100));
  cmd->add_option("--tag", submit->tags, "a tag route and arbiter rules match (repeatable)");
  cmd->add_option("--thread", submit->thread_id, "continue this thread");
  cmd->add_option("--idempotency-key", submit->idempotency_key,
                  "Idempotency-Key header; with --file, line N without its own "
                  "idempotencyKey gets <key>/<N>, so a rerun creates nothing twice");
  cmd->add_flag("--wait", submit->wait, "wait for the run to finish and print it with its answer")
      ->excludes(file);
  cmd->add_option("--timeout", submit->timeout_seconds, "seconds to wait")->capture_default_str();
  cmd->add_flag("--json", submit->json, "machine-readable output");
  verbs.push_back({cmd, [submit] {
                     if (!submit->file.empty()) return RunSubmitFile(*submit);
                     if (submit->text.empty()) {
                       std::cerr << "synaps submit: give the prompt text, or --file with "
                                    "commands\n";
                       return 2;
                     }
                     return RunSubmit(*submit);
                   }});
}

// A verb that takes one id and --json (runs cancel, runs keep, keys revoke, ...).
struct IdFlags {
  std::string id;
  bool json = false;
};

std::shared_ptr<IdFlags> AddIdAndJson(CLI::App* cmd, const std::string& what) {
  auto flags = std::make_shared<IdFlags>();
  cmd->add_option("id", flags->id, what)->required();
  cmd->add_flag("--json", flags->json, "machine-readable output");
  return flags;
}

void AddRunsGetAndList(CLI::App* runs, Verbs& verbs) {
  auto* get = runs->add_subcommand(
      "get", "Show a run with its tasks (and their answers), events and artifacts");
  auto get_flags = AddIdAndJson(get, "run id");
  auto archived = std::make_shared<bool>(false);
  get->add_flag("--archived", *archived,
                "read the run from its archive in the object store (after it expired from "
                "PostgreSQL): every row of its story as archived");
  verbs.push_back({get, [get_flags, archived] {
                     return *archived ? RunRunsGetArchived(get_flags->id, get_flags->json)
                                      : RunRunsGet(get_flags->id, get_flags->json);
                   }});

  auto list_flags = std::make_shared<RunsListFlags>();
  auto* list = runs->add_subcommand("list", "List runs, newest first (one page)");
  list->add_option("--thread", list_flags->thread_id, "only runs of this thread");
  list->add_option("--status", list_flags->status, "only runs in this status")
      ->check(CLI::IsMember(
          {"queued", "running", "awaiting_approval", "succeeded", "failed", "cancelled"}));
  list->add_option("--limit", list_flags->limit, "runs per page (1..500, default 50)")
      ->check(CLI::Range(1, 500));
  list->add_option("--schedule", list_flags->schedule, "only runs this schedule started");
  list->add_option("--cursor", list_flags->cursor, "the page after this cursor");
  list->add_flag("--json", list_flags->json, "machine-readable output");
  verbs.push_back({list, [list_flags] { return RunRunsList(*list_flags); }});
}

// runs get | list | watch | keep | cancel.
void AddRunsVerbs(CLI::App& app, Verbs& verbs) {
  auto* runs = app.add_subcommand("runs", "Inspect runs");
  runs->require_subcommand(1);
  AddRunsGetAndList(runs, verbs);

  auto watch_flags = std::make_shared<RunsWatchFlags>();
  auto* watch = runs->add_subcommand(
      "watch",
      "Follow a run's events live until it finishes. Exit code 0: succeeded, 1: failed or "
      "cancelled, 2: could not watch");
  watch->add_option("id", watch_flags->run_id, "run id")->required();
  watch
      ->add_option("--timeout", watch_flags->timeout_seconds,
                   "give up (exit 2) after this many seconds; 0 = never")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  auto no_progress = std::make_shared<bool>(false);
  watch->add_flag("--no-progress", *no_progress, "no live progress line on a terminal");
  watch->add_flag("--json", watch_flags->json,
                  "one JSON object per line: each ledger event, then {\"type\":\"end\"}");
  verbs.push_back({watch, [watch_flags, no_progress] {
                     watch_flags->progress = !*no_progress;
                     return RunRunsWatch(*watch_flags);
                   }});

  struct KeepFlags {
    std::string id;
    bool release = false;
    bool json = false;
  };
  auto keep_flags = std::make_shared<KeepFlags>();
  auto* keep =
      runs->add_subcommand("keep", "Keep a run: retention never expires it (--release: undo)");
  keep->add_option("id", keep_flags->id, "run id")->required();
  keep->add_flag("--release", keep_flags->release, "no longer keep it");
  keep->add_flag("--json", keep_flags->json, "machine-readable output");
  verbs.push_back({keep, [keep_flags] {
                     return RunRunsKeep(keep_flags->id, !keep_flags->release, keep_flags->json);
                   }});

  auto* cancel = runs->add_subcommand("cancel", "Cancel a queued or running run");
  auto cancel_flags = AddIdAndJson(cancel, "run id");
  verbs.push_back(
      {cancel, [cancel_flags] { return RunRunsCancel(cancel_flags->id, cancel_flags->json); }});
}

// tasks approve | reject: decisions on tasks an arbiter held.
void AddTasksVerbs(CLI::App& app, Verbs& verbs) {
  auto* tasks = app.add_subcommand("tasks", "Decide tasks that arbiters held for approval");
  tasks->require_subcommand(1);
  auto* approve = tasks->add_subcommand(
      "approve", "Approve a held task: it completes with the output it was held with");
  auto* reject = tasks->add_subcommand("reject", "Reject a held task: it fails without retry");
  for (auto* sub : {approve, reject}) {
    struct DecideFlags {
      std::string task_id;
      std::string reason;
      bool json = false;
    };
    auto flags = std::make_shared<DecideFlags>();
    sub->add_option("id", flags->task_id, "task id (from the run's task.awaiting_approval event)")
        ->required();
    sub->add_option("--reason", flags->reason, "why, for the ledger");
    sub->add_flag("--json", flags->json, "machine-readable output");
    const bool approving = sub == approve;
    verbs.push_back({sub, [flags, approving] {
                       return RunTasksDecide(flags->task_id, approving, flags->reason, flags->json);
                     }});
  }
}

// artifacts get.
void AddArtifactsVerbs(CLI::App& app, Verbs& verbs) {
  auto flags = std::make_shared<ArtifactsGetFlags>();
  auto* artifacts = app.add_subcommand("artifacts", "Fetch artifacts");
  artifacts->require_subcommand(1);
  auto* get =
      artifacts->add_subcommand("get", "Write an artifact version's bytes to stdout or a file");
  get->add_option("id", flags->artifact_id, "artifact id (see `runs get`)")->required();
  get->add_option("--version", flags->version, "version (default the latest)")
      ->check(CLI::Range(1, 1000000000));
  get->add_option("-o,--output", flags->output_path, "write to this file instead of stdout");
  get->add_flag("--json", flags->json,
                "print metadata as JSON (with the content unless -o is given)");
  verbs.push_back({get, [flags] { return RunArtifactsGet(*flags); }});
}

// keys create | revoke.
void AddKeysVerbs(CLI::App& app, Verbs& verbs) {
  auto* keys = app.add_subcommand("keys", "Manage API keys (needs an admin token)");
  keys->require_subcommand(1);
  auto create_flags = std::make_shared<KeysCreateFlags>();
  auto* create = keys->add_subcommand("create", "Create an API key; prints its token once");
  create->add_option("--role", create_flags->role, "what the key may do")
      ->required()
      ->check(CLI::IsMember({"admin", "operator", "worker", "viewer"}));
  create->add_option("--tenant", create_flags->tenant,
                     "tenant of the key (default the caller's; another tenant needs the "
                     "bootstrap admin token)");
  create->add_option("--name", create_flags->name, "a label, e.g. who or what uses it");
  create->add_flag("--installation", create_flags->installation,
                   "grant the installation scope: write the control registry, act across "
                   "tenants (needs the bootstrap token or an installation admin)");
  create->add_flag("--json", create_flags->json, "machine-readable output");
  verbs.push_back({create, [create_flags] { return RunKeysCreate(*create_flags); }});

  auto* revoke = keys->add_subcommand("revoke", "Revoke an API key at once");
  auto revoke_flags = AddIdAndJson(revoke, "key id");
  verbs.push_back(
      {revoke, [revoke_flags] { return RunKeysRevoke(revoke_flags->id, revoke_flags->json); }});
}

// tokens mint.
void AddTokensVerbs(CLI::App& app, Verbs& verbs) {
  auto mint = std::make_shared<TokensMintFlags>();
  auto* tokens = app.add_subcommand("tokens", "Mint tokens for the API and Hasura");
  tokens->require_subcommand(1);
  auto* cmd = tokens->add_subcommand(
      "mint", "Print an HS256 JWT signed with SYNAPS_JWT_SECRET (Hasura claim format)");
  cmd->add_option("--tenant", mint->tenant, "tenant id (x-hasura-tenant-id)")->required();
  cmd->add_option("--role", mint->role, "default role")
      ->required()
      ->check(CLI::IsMember({"admin", "operator", "worker", "viewer", "user"}));
  cmd->add_option("--ttl", mint->ttl_seconds,
                  "lifetime in seconds (at most SYNAPS_JWT_MAX_TTL, default 24h)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{366} * 24 * 3600));
  cmd->add_option("--subject", mint->subject, "sub and x-hasura-user-id")->capture_default_str();
  cmd->add_option("--issuer", mint->issuer, "iss")->capture_default_str();
  cmd->add_option("--audience", mint->audience, "aud")->capture_default_str();
  cmd->add_flag("--installation", mint->installation,
                "add the claim scope=installation: write the control registry, act "
                "across tenants");
  cmd->add_flag("--json", mint->json, "print the token with its claims as JSON");
  verbs.push_back({cmd, [mint] { return RunTokensMint(*mint); }});
}

// gc: objects no row refers to.
void AddGcVerb(CLI::App& app, Verbs& verbs) {
  auto gc = std::make_shared<GcFlags>();
  auto* cmd = app.add_subcommand(
      "gc",
      "Delete stored objects under objects/ that no artifact version, held task or archive "
      "refers to, once older than a grace period (archives/ is never touched)");
  cmd->add_option("--database-url", gc->database_url, "PostgreSQL URL (env SYNAPS_DATABASE_URL)");
  cmd->add_option("--object-store", gc->object_store,
                  "file:///path or s3://bucket?... (env SYNAPS_OBJECT_STORE)");
  cmd->add_flag("--dry-run", gc->dry_run, "list what would be deleted; delete nothing");
  cmd->add_option("--older-than", gc->older_than_seconds,
                  "only objects last written at least this many seconds ago")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--json", gc->json, "machine-readable output (progress still goes to stderr)");
  cmd->add_flag("--quiet", gc->quiet, "no progress lines on stderr");
  verbs.push_back({cmd, [gc] { return RunGc(*gc); }});
}

// A verb whose options are declared next to its code (Add<Name>Command in its own file).
template <typename Flags>
void AddDeclaredVerb(CLI::App& app, Verbs& verbs, CLI::App* (*add)(CLI::App&, Flags&),
                     int (*run)(const Flags&)) {
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = add(app, *flags);
  verbs.push_back({cmd, [flags, run] { return run(*flags); }});
}

}  // namespace
}  // namespace synaps::cli

int main(int argc, char** argv) {
  using namespace synaps;
  using cli::Verb;
  cli::BlockShutdownSignals();

  CLI::App app{
      "Synaps: a control plane for AI-agent work.\n"
      "Configuration comes from SYNAPS_* environment variables; flags override them."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("synaps ") + SYNAPS_VERSION);

  cli::Verbs verbs;
  cli::AddServiceVerbs(app, verbs);
  cli::AddSubmitVerb(app, verbs);
  cli::AddRunsVerbs(app, verbs);
  cli::AddTasksVerbs(app, verbs);
  cli::AddArtifactsVerbs(app, verbs);
  cli::AddKeysVerbs(app, verbs);
  cli::AddTokensVerbs(app, verbs);
  cli::AddGcVerb(app, verbs);
  cli::AddDeclaredVerb(app, verbs, cli::AddArchiveCommand, cli::RunArchive);
  cli::AddDeclaredVerb(app, verbs, cli::AddControlCommand, cli::RunControl);
  cli::AddDeclaredVerb(app, verbs, cli::AddSchedulesCommand, cli::RunSchedules);
  cli::AddDeclaredVerb(app, verbs, cli::AddUsageCommand, cli::RunUsage);
  cli::AddDeclaredVerb(app, verbs, cli::AddRetentionCommand, cli::RunRetention);
  cli::AddDeclaredVerb(app, verbs, cli::AddExpireCommand, cli::RunExpire);

  CLI11_PARSE(app, argc, argv);

  for (const Verb& verb : verbs) {
    if (!verb.command->parsed()) continue;
    // Client verbs have no shutdown sequence: let Ctrl-C stop them at once.
    if (verb.kind == Verb::Kind::kClient) cli::UnblockShutdownSignals();
    const bool service = verb.kind == Verb::Kind::kService;
    try {
      InitLogging(config::EnvOr("SYNAPS_LOG_LEVEL", service ? "info" : "warn"), service);
      return verb.run();
    } catch (const ConfigError& e) {
      std::cerr << "synaps: configuration error: " << e.what() << "\n";
      return 2;
    }
  }
  return 0;
}
