// 5. Scale of history: claim latency and drain rate of one worker with a large history of
//    finished tasks (and their ledger rows) in the database, against an empty one. The empty
//    side is a fresh clone every repetition, the history database is loaded once and reused;
//    both have their queue vacuumed and a checkpoint taken before each measurement, so the two
//    differ in their history, not in what earlier repetitions left in the queue. BENCH_KEEP=1
//    keeps the history database (with the stack's directory) to explain a claim on it later.
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include "benchmarks.h"
#include "store/usage_store.h"

namespace synaps::bench {

namespace {

// The statements that write the history's rows, one table each, in creation order: `n` tasks,
// the first created at `first`, one every `step`.
std::vector<std::string> HistoryLoad(int n, const std::string& first, const std::string& step) {
  const std::string when = "('" + first + "'::timestamptz + g * '" + step + "'::interval)";
  // A UUIDv7 of `when` (its first 48 bits, `ms`) whose random part is derived from g and a
  // letter per kind of row.
  auto v7 = [](const std::string& kind) {
    return "(ms || '7' || substr(md5('" + kind + "' || g), 1, 19))::uuid";
  };
  return {
      "CREATE UNLOGGED TABLE bench_h AS SELECT g, " + v7("t") + " AS thread_id, " + v7("c") +
          " AS command_id, " + v7("r") + " AS run_id, " + v7("k") +
          " AS task_id, gen_random_uuid() AS artifact_id, t FROM (SELECT g, t,"
          " substr(replace(synaps.uuid_v7_floor(t)::text, '-', ''), 1, 12) AS ms"
          " FROM (SELECT g, " +
          when + " AS t FROM generate_series(1, " + std::to_string(n) + ") g) x) y",
      "INSERT INTO synaps.threads (id, tenant_id, created_at)"
      " SELECT thread_id, 'bench', t FROM bench_h ORDER BY g",
      "INSERT INTO synaps.commands (id, tenant_id, thread_id, kind, payload, request_hash,"
      " response, submitted_by, created_at)"
      " SELECT command_id, 'bench', thread_id, 'prompt',"
      " jsonb_build_object('kind', 'prompt', 'input', jsonb_build_object('text', 'history ' || g)),"
      " md5(g::text), jsonb_build_object('commandId', command_id, 'runId', run_id,"
      " 'threadId', thread_id, 'status', 'queued'), 'bench', t FROM bench_h ORDER BY g",
      "INSERT INTO synaps.runs (id, command_id, thread_id, tenant_id, status, last_seq,"
      " created_at, started_at, finished_at, thread_seq)"
      " SELECT run_id, command_id, thread_id, 'bench', 'succeeded', 6, t,"
      " t + interval '10 ms', t + interval '20 ms', 1 FROM bench_h ORDER BY g",
      "INSERT INTO synaps.tasks (id, run_id, tenant_id, name, kind, spec, status, attempt,"
      " output, created_at, started_at, finished_at)"
      " SELECT task_id, run_id, 'bench', 'main', 'prompt',"
      " jsonb_build_object('kind', 'prompt', 'input', jsonb_build_object('text', 'history ' || g)),"
      " 'succeeded', 1, jsonb_build_object('text', 'echo: history ' || g, 'provider', 'local',"
      " 'model', 'echo'), t, t + interval '10 ms', t + interval '20 ms' FROM bench_h ORDER BY g",
      "INSERT INTO synaps.artifacts (id, tenant_id, run_id, task_id, thread_id, name,"
      " content_type, latest_version, created_at)"
      " SELECT artifact_id, 'bench', run_id, task_id, thread_id, 'answer.md', 'text/markdown', 1, t"
      " FROM bench_h ORDER BY g",
      "INSERT INTO synaps.artifact_versions (artifact_id, version, run_id, task_id, object_key,"
      " size, sha256, created_at)"
      " SELECT artifact_id, 1, run_id, task_id, 'objects/sha256/' || md5(g::text), 20,"
      " md5(g::text) || md5(g::text), t FROM bench_h ORDER BY g",
      "INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data, created_at)"
      " SELECT h.run_id, CASE WHEN e.seq IN (1, 6) THEN NULL ELSE h.task_id END, e.seq, e.type,"
      " CASE WHEN e.seq IN (3, 4, 5) THEN 1 END, e.data, h.t + e.seq * interval '1 ms'"
      " FROM bench_h h, (VALUES"
      " (1, 'run.created', '{\"kind\":\"prompt\"}'::jsonb),"
      " (2, 'task.queued', '{\"name\":\"main\",\"queue\":\"default\",\"priority\":0}'::jsonb),"
      " (3, 'task.claimed', '{\"worker\":\"history\",\"leaseEpoch\":1}'::jsonb),"
      " (4, 'artifact.created', '{\"name\":\"answer.md\",\"version\":1,\"size\":20}'::jsonb),"
      " (5, 'task.completed', '{\"provider\":\"local\",\"model\":\"echo\","
      "\"usage\":{\"promptTokens\":12,\"completionTokens\":3},\"costUsd\":0.000021,"
      "\"providerAttempts\":1,\"control\":{\"routeUsed\":{\"name\":\"default\","
      "\"version\":1}}}'::jsonb),"
      " (6, 'run.succeeded', '{}'::jsonb)) AS e(seq, type, data) ORDER BY h.g, e.seq",
      "SET session_replication_role = DEFAULT",
      "DROP TABLE bench_h",
  };
}

}  // namespace

// Finished history written directly (bypassing the functions): per task a thread, command, run,
// task, artifact, artifact version and the six ledger events a real run leaves. Command, thread,
// run and task ids are UUIDv7 of their creation time, as synaps.uuid_v7() makes them (the
// ledger's events land in the partition of their run's day, made first for each day the history
// covers); artifact ids are random, as the completion makes them. Every table is written in
// creation order, and the indexes that back no constraint are dropped during the load and built
// afterwards (CREATE INDEX sorts once instead of inserting millions of keys one by one): the
// tables and indexes end as a real history's would, in a fraction of the time.
void GenerateHistory(db::Connection& conn, int n, const std::string& first, const std::string& step,
                     bool partitions) {
  if (partitions) {
    Must(conn.Exec("SELECT synaps.ensure_ledger_partition(d::date) FROM generate_series("
                   "($1::timestamptz AT TIME ZONE 'UTC')::date,"
                   " ($1::timestamptz + $2::integer * $3::interval) AT TIME ZONE 'UTC',"
                   " interval '1 day') d",
                   {first, std::to_string(n), step}),
         "history partitions");
  }
  // Plain indexes of the tables the load writes (the ledger's are its constraints, per partition).
  auto defs = Must(conn.Exec("SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)"
                             "  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
                             " WHERE c.relnamespace = 'synaps'::regnamespace"
                             "   AND c.relname IN ('threads', 'commands', 'runs', 'tasks',"
                             "                     'artifacts', 'artifact_versions')"
                             "   AND NOT EXISTS (SELECT 1 FROM pg_constraint k"
                             "                    WHERE k.conindid = i.indexrelid)"),
                   "history indexes");
  std::vector<std::string> steps = {
      "SET synchronous_commit = off",
      "SET maintenance_work_mem = '512MB'",
      // The rows are consistent by construction: skip the per-row foreign-key checks (they are
      // triggers, which replica mode does not fire).
      "SET session_replication_role = replica",
  };
  for (int i = 0; i < defs.rows(); ++i) steps.push_back("DROP INDEX " + defs.GetString(i, 0));
  const std::vector<std::string> load = HistoryLoad(n, first, step);
  for (const auto& sql : load) {
    steps.push_back(sql);
    // Lets the server recycle the load's WAL as it goes: without it the WAL grows to
    // max_wal_size (4 GB) on top of the data, on a disk other sessions share.
    if (sql.rfind("INSERT", 0) == 0) steps.push_back("CHECKPOINT");
  }
  for (int i = 0; i < defs.rows(); ++i) steps.push_back(defs.GetString(i, 1));
  steps.push_back("VACUUM ANALYZE");
  steps.push_back("CHECKPOINT");
  for (const auto& sql : steps) {
    auto start = std::chrono::steady_clock::now();
    Must(conn.Exec(sql), sql.substr(0, 60));
    Log("  " + sql.substr(0, 48) + "... " +
        std::to_string(Seconds(std::chrono::steady_clock::now() - start)) + " s");
  }
}

namespace {

// GET /v1/usage over the whole history (docs/observability.md "Usage and cost"): a query on a
// history never rolled up (everything read live), the passes that fold it in (the API's
// background rollup), and a query once everything is folded.
json MeasureUsage(db::Connection& conn) {
  store::UsageQuery q;
  q.to = Must(conn.Exec("SELECT (now() AT TIME ZONE 'UTC')::date::text"), "today").GetString(0, 0);
  q.from = Must(conn.Exec("SELECT ((now() AT TIME ZONE 'UTC')::date - 365)::text"), "from")
               .GetString(0, 0);
  q.group_by.assign(std::begin(store::kUsageDimensions), std::end(store::kUsageDimensions));
  auto timed = [&](const std::function<void()>& f) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    return Seconds(std::chrono::steady_clock::now() - t0);
  };
  json out;
  int64_t rows = 0;
  out["first_query_seconds"] = timed([&] {
    rows = static_cast<int64_t>(Must(store::QueryUsage(conn, q), "usage query")["rows"].size());
  });
  out["rollup_seconds"] = timed([&] {
    while (Must(store::RollUpUsage(conn), "usage rollup") > 0) {
    }
  });
  std::vector<double> ms;
  for (int i = 0; i < 5; ++i) {
    ms.push_back(1000 * timed([&] { Must(store::QueryUsage(conn, q), "usage query"); }));
  }
  out["query_ms"] = ToJson(Summarize(ms));
  out["rows"] = rows;
  return out;
}

struct HistorySample {
  json claim;            // summary of single-item claim latencies (ms), timed by the client
  json claim_statement;  // summary of the same claims' own time on the server (ms)
  std::vector<double> claim_samples;  // every claim's client time (ms), in the order taken
  json claim_explain;    // EXPLAIN (ANALYZE, BUFFERS) of one more claim: time and buffers
  double rate;           // drain tasks/s, one worker
  json blocks;  // per relation: blocks read from outside shared_buffers and hit, per drained task
};

// The tables a repetition dirties: the queue (submits insert, claims update, completions and
// the probe cleanup delete) and the outbox, rewritten compactly (they hold only the
// repetition's rows: a plain VACUUM would leave the history side's queue twice the size of a
// fresh clone's, in empty pages), and the runs and tasks the drain updates.
constexpr const char* kQueueRewrite = "VACUUM FULL synaps.queue_items, synaps.outbox";
constexpr const char* kQueueVacuum = "VACUUM (ANALYZE) synaps.queue_items, synaps.outbox";
constexpr const char* kRunsVacuum = "VACUUM synaps.runs, synaps.tasks";

// Puts `db`, with its repetition's tasks queued, in the state the empty side's fresh clone of
// the queued template starts in: the dead rows earlier repetitions left in the queue's heap and
// indexes vacuumed away (the history database is reused from one repetition to the next, and
// at 10M autovacuum did not keep up with its four repetitions), the queue analyzed with
// the tasks in it, and a checkpoint taken (a clone is made by one), so that neither side meets
// the next timed checkpoint sooner. Done on both sides. The history tables are not analyzed:
// sampling them would evict the cache the measurement depends on. Returns the time it took and
// the queue's size after it, in 8 kB pages.
json SettleQueue(Stack& stack, const std::string& db) {
  auto conn = stack.ConnectForLoad(db);
  auto start = std::chrono::steady_clock::now();
  for (const char* sql : {kQueueRewrite, kQueueVacuum, kRunsVacuum, "CHECKPOINT"}) {
    Must(conn.Exec(sql), sql);
  }
  json out = {{"seconds", Seconds(std::chrono::steady_clock::now() - start)}};
  auto r = Must(conn.Exec("SELECT c.relname, pg_relation_size(c.oid) / 8192 FROM pg_class c"
                          " WHERE c.relnamespace = 'synaps'::regnamespace AND c.relname IN"
                          " ('queue_items', 'queue_items_claim_idx', 'queue_items_task_id_key')"),
                "queue pages");
  json pages = json::object();
  for (int i = 0; i < r.rows(); ++i) pages[r.GetString(i, 0)] = std::stoll(r.GetString(i, 1));
  out["pages"] = pages;
  return out;
}

// Block counters of every synaps table and index (a day's ledger partitions summed as one).
std::map<std::string, std::pair<int64_t, int64_t>> BlockCounters(db::Connection& conn) {
  auto r = Must(conn.Exec("SELECT regexp_replace(rel, '_d[0-9]{8}', '_dDAY'), sum(rd)::bigint,"
                          "       sum(hit)::bigint FROM ("
                          " SELECT indexrelname AS rel, idx_blks_read AS rd, idx_blks_hit AS hit"
                          "   FROM pg_statio_user_indexes WHERE schemaname = 'synaps'"
                          " UNION ALL SELECT relname, heap_blks_read, heap_blks_hit"
                          "   FROM pg_statio_user_tables WHERE schemaname = 'synaps') s"
                          " GROUP BY 1"),
                "block counters");
  std::map<std::string, std::pair<int64_t, int64_t>> out;
  for (int i = 0; i < r.rows(); ++i) {
    out[r.GetString(i, 0)] = {std::stoll(r.GetString(i, 1)), std::stoll(r.GetString(i, 2))};
  }
  return out;
}

HistorySample Measure(Stack& stack, const std::string& db, int tasks, int probes) {
  HistorySample s;
  {
    // Claim latency: single-item claims from a queue of their own, timed by the client.
    // Each claim also reports its own time on the server: from the receipt of the statement
    // (statement_timestamp()) to its row, which the function returns once it is done; what the
    // client measures beyond that is mostly the commit's wait for the disk.
    auto conn = stack.Connect(db);
    SubmitBulk(conn, probes + 1, "probe");
    std::vector<double> ms, statement_ms;
    for (int i = 0; i < probes; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      auto r =
          Must(conn.ExecPrepared("probe_claim",
                                 "SELECT item_id, (extract(epoch FROM clock_timestamp() -"
                                 " statement_timestamp()) * 1000)::float8"
                                 " FROM synaps.claim_queue_items('probe', ARRAY['probe'], 1, 300)",
                                 {}),
               "probe claim");
      ms.push_back(Seconds(std::chrono::steady_clock::now() - t0) * 1000);
      if (r.rows() != 1) throw BenchError("probe claim returned no item");
      statement_ms.push_back(std::stod(r.GetString(0, 1)));
    }
    s.claim = ToJson(Summarize(ms));
    s.claim_samples = ms;
    s.claim_statement = ToJson(Summarize(statement_ms));
    // One more, explained: its buffers include those of the statements inside the function.
    auto plan =
        json::parse(Must(conn.Exec("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT item_id FROM"
                                   " synaps.claim_queue_items('probe', ARRAY['probe'], 1, 300)"),
                         "probe claim explain")
                        .GetString(0, 0))[0];
    s.claim_explain = {{"execution_ms", plan["Execution Time"]},
                       {"rows", plan["Plan"]["Actual Rows"]},
                       {"shared_hit", plan["Plan"]["Shared Hit Blocks"]},
                       {"shared_read", plan["Plan"]["Shared Read Blocks"]}};
    // The probes stay leased (never completed): without this the history database, measured
    // again every repetition, would carry every earlier repetition's leased probes in the
    // claim's index and its next probes would step over them.
    Must(conn.Exec("DELETE FROM synaps.queue_items WHERE queue = 'probe'"), "probe cleanup");
  }
  std::string objects = stack.TempDir("objects");
  std::map<std::string, std::string> env = {
      {"SYNAPS_DATABASE_URL", stack.Url(db)},
      {"SYNAPS_NATS_URL", stack.nats().Url()},
      {"SYNAPS_OBJECT_STORE", "file://" + objects},
  };
  auto conn = stack.Connect(db);
  auto t0 = Must(conn.Exec("SELECT now()"), "now").GetString(0, 0);
  Must(conn.Exec("SELECT pg_stat_force_next_flush()"), "stats flush");
  auto blocks_before = BlockCounters(conn);
  ChildProcess worker = StartSynaps("worker", env, stack.root() + "/history-" + db + ".log");
  // Done when the queue is empty (a one-task run finishes in the statement that deletes its
  // item). Polling must not read the history: a count over every run, ten times a second, is
  // work of the size of the history that competes with the drain on this machine.
  WaitUntil(
      [&] {
        return Scalar(conn, "SELECT count(*) FROM synaps.queue_items WHERE queue = 'default'") == 0;
      },
      std::chrono::minutes(15), "history drain", std::chrono::milliseconds(100));
  worker.Stop(std::chrono::seconds(30));
  // The worker's backends flushed their counters when they exited. Read before the rate's
  // query below: it reads every run and ledger row of the last two hours, on the history side
  // also earlier repetitions' and the history's own, which is not the drain's work.
  Must(conn.Exec("SELECT pg_stat_force_next_flush()"), "stats flush");
  Must(conn.Exec("SELECT pg_stat_clear_snapshot()"), "stats snapshot");
  s.blocks = json::object();
  for (const auto& [rel, after] : BlockCounters(conn)) {
    auto before = blocks_before.count(rel) ? blocks_before[rel] : std::pair<int64_t, int64_t>{};
    const int64_t read = after.first - before.first, hit = after.second - before.second;
    if (read > 0 || hit > 0) {
      s.blocks[rel] = {{"read", static_cast<double>(read) / tasks},
                       {"hit", static_cast<double>(hit) / tasks}};
    }
  }
  // The drained runs were submitted less than two hours ago: their ids (UUIDv7) bound the
  // runs and ledger partitions read.
  double seconds =
      ScalarDouble(conn,
                   "SELECT extract(epoch FROM (SELECT max(finished_at) FROM synaps.runs"
                   "   WHERE id >= synaps.uuid_v7_floor($1::timestamptz - interval '2 hours')) -"
                   " (SELECT min(created_at) FROM synaps.ledger_events WHERE type = 'task.claimed'"
                   "   AND run_id >= synaps.uuid_v7_floor($1::timestamptz - interval '2 hours')"
                   "   AND created_at >= $1::timestamptz))",
                   {t0});
  s.rate = tasks / seconds;
  return s;
}

// About 3.6 KB per finished task once loaded (1M: 3.4 GB), and the load's WAL up to
// max_wal_size (4 GB) on top: refuses a size the disk cannot hold rather than fill it.
void RequireDiskFor(Stack& stack, int history) {
  const double needed = history * 3800.0 + 5e9;
  const double free_bytes = static_cast<double>(std::filesystem::space(stack.root()).available);
  if (needed > free_bytes) {
    throw BenchError("history: " + std::to_string(history) + " finished tasks need about " +
                     std::to_string(static_cast<int64_t>(needed / 1e9)) + " GB, " +
                     std::to_string(static_cast<int64_t>(free_bytes / 1e9)) +
                     " GB are free under " + stack.root() + " (pick --history-tasks)");
  }
}

// A fresh database with `history` finished tasks spread over the 60 days before now; what the
// load took (and, with `usage`, GET /v1/usage over it) goes into `out`. Returns its name.
std::string LoadHistory(Stack& stack, bool usage, int history, json& out) {
  Log("history: generating " + std::to_string(history) + " finished tasks");
  std::string big = stack.FreshSynapsDb();
  {
    auto conn = stack.ConnectForLoad(big);
    auto start = std::chrono::steady_clock::now();
    // Spread over the 60 days before now, one run every 60 days / history.
    GenerateHistory(
        conn, history,
        Must(conn.Exec("SELECT (now() - interval '60 days')::text"), "start").GetString(0, 0),
        std::to_string(60.0 * 86400 / history) + " seconds");
    out["generate_seconds"] = Seconds(std::chrono::steady_clock::now() - start);
    out["ledger_rows"] = Scalar(conn, "SELECT count(*) FROM synaps.ledger_events");
    out["database_bytes"] = Scalar(conn, "SELECT pg_database_size(current_database())");
    if (usage) {
      Log("history: usage and cost over the history (GET /v1/usage)");
      out["usage"] = MeasureUsage(conn);
      Log("  first query " + std::to_string(out["usage"]["first_query_seconds"].get<double>()) +
          " s, rollup " + std::to_string(out["usage"]["rollup_seconds"].get<double>()) +
          " s, then p50 " + std::to_string(out["usage"]["query_ms"]["p50"].get<double>()) + " ms");
    }
  }
  return big;
}

// One repetition's sample as the results JSON keeps it, logged.
json RecordSample(const HistorySample& s, int rep, const json& settle) {
  Log("  settled in " + std::to_string(settle["seconds"].get<double>()) + " s (queue " +
      settle["pages"].dump() + " pages); claim p50 " +
      std::to_string(s.claim["p50"].get<double>()) + " ms (statement " +
      std::to_string(s.claim_statement["p50"].get<double>()) + " ms, explained " +
      s.claim_explain.dump() + "), drain " + std::to_string(s.rate) + " tasks/s");
  return json{{"claim_ms", s.claim},
              {"claim_statement_ms", s.claim_statement},
              {"claim_samples_ms", s.claim_samples},
              {"claim_explain", s.claim_explain},
              {"rate", s.rate},
              {"rep", rep},
              {"blocks", s.blocks},
              {"settle", settle}};
}

}  // namespace

json RunHistory(Stack& stack, const BenchOptions& options) {
  const int history =
      options.history_tasks > 0 ? options.history_tasks : (options.quick ? 100000 : 1000000);
  const int tasks = options.quick ? 3000 : 5000;
  const int probes = 300;
  json out = {
      {"history_tasks", history}, {"tasks", tasks}, {"probes", probes}, {"reps", options.reps}};
  RequireDiskFor(stack, history);
  const std::string big = LoadHistory(stack, options.history_usage, history, out);
  json empty_runs = json::array(), big_runs = json::array();
  auto measure_empty = [&](int rep) {
    Log("history rep " + std::to_string(rep + 1) + ": empty database");
    std::string db = stack.QueuedSynapsDb(tasks);
    json settle = SettleQueue(stack, db);
    HistorySample s = Measure(stack, db, tasks, probes);
    empty_runs.push_back(RecordSample(s, rep, settle));
    stack.DropDb(db);
  };
  auto measure_big = [&](int rep) {
    Log("history rep " + std::to_string(rep + 1) + ": with history");
    {
      auto conn = stack.Connect(big);
      SubmitBulk(conn, tasks);
    }
    json settle = SettleQueue(stack, big);
    HistorySample s = Measure(stack, big, tasks, probes);
    big_runs.push_back(RecordSample(s, rep, settle));
  };
  // ABBA: even repetitions measure the empty database first, odd ones the history first, so a
  // slow phase of the shared machine does not always fall on the same side.
  for (int rep = 0; rep < options.reps; ++rep) {
    if (rep % 2 == 0) {
      measure_empty(rep);
      measure_big(rep);
    } else {
      measure_big(rep);
      measure_empty(rep);
    }
  }
  if (getenv("BENCH_KEEP")) {
    // Kept with the stack's directory, for a person to explain a claim on it afterwards.
    out["kept_database"] = big;
    Log("history: BENCH_KEEP: database " + big + " kept in " + stack.root() +
        "/pg; start the server again as the postgres user with `postgres -D " + stack.root() +
        "/pg -p " + std::to_string(stack.postgres().port()) +
        " -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c shared_buffers=256MB`"
        " and connect to " +
        stack.Url(big));
  } else {
    stack.DropDb(big);
  }
  out["empty"] = empty_runs;
  out["history"] = big_runs;
  return out;
}

}  // namespace synaps::bench
