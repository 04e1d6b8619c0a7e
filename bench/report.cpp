// docs/benchmarks.md and docs/benchmarks/*.svg, drawn from the results JSON alone.
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "benchmarks.h"
#include "svg.h"

namespace synaps::bench {

namespace {

const char* kSynapsColor = "#4e79a7";
const char* kGraphileColor = "#f28e2b";
const char* kPgBossColor = "#59a14f";
const char* kPgbenchColor = "#b07aa1";

std::string F(double v, int decimals = 0) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  // Thousands separators for readability of large integers.
  if (decimals == 0 && std::fabs(v) >= 10000) {
    std::string digits = s, out;
    bool neg = digits[0] == '-';
    if (neg) digits.erase(0, 1);
    int n = 0;
    for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
      if (n > 0 && n % 3 == 0) out.insert(out.begin(), ',');
      out.insert(out.begin(), *it);
      ++n;
    }
    s = (neg ? "-" : "") + out;
  }
  return s;
}

// Median and min–max of field `key` over an array of samples.
Summary Over(const json& samples, const std::string& key) {
  std::vector<double> v;
  if (samples.is_array()) {
    for (const auto& s : samples) {
      if (s.contains(key) && s[key].is_number()) v.push_back(s[key].get<double>());
    }
  }
  return Summarize(v);
}

std::string Spread(const Summary& s, int decimals = 0) {
  if (s.n <= 1) return F(s.median, decimals);
  return F(s.median, decimals) + " (" + F(s.min, decimals) + "–" + F(s.max, decimals) + ")";
}

std::string Status(bool met) { return met ? "**met**" : "**not met**"; }

void WriteFile(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path);
  out << text;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Ok(const json& results, const char* name) {
  return results.contains(name) && results[name].is_object() && !results[name].contains("error");
}

struct Report {
  const json& r;
  const BenchOptions& options;
  std::ostringstream md;
  std::vector<std::string> summary_rows;  // "| benchmark | target | measured | status |"

  void Svg(const std::string& name, const std::string& svg) {
    WriteFile(options.svg_dir + "/" + name, svg);
    md << "\n![" << name << "](benchmarks/" << name << ")\n";
  }

  void Failed(const char* name) {
    if (r.contains(name) && r[name].contains("error")) {
      md << "\n**This benchmark failed in this run:** `" << r[name]["error"].get<std::string>()
         << "`\n";
    } else {
      md << "\nNot run in this run (`--only`).\n";
    }
  }

  void Machine() {
    const json& m = r.value("machine", json::object());
    const json& pg = r.value("postgres", json::object());
    md << "## Machine and method\n\n";
    md << "| fact | value |\n|---|---|\n";
    md << "| CPU | " << m.value("cpu", "?") << ", " << m.value("cores", 0) << " cores |\n";
    md << "| memory | " << F(m.value("memory_gib", 0.0), 1) << " GiB |\n";
    md << "| OS, kernel | " << m.value("os", "?") << ", Linux " << m.value("kernel", "?")
       << " |\n";
    md << "| load average when the run started | " << m.value("load_before", "?") << " |\n";
    md << "| PostgreSQL | " << pg.value("server_version", "?")
       << " (private server started by the benchmark, `src/devstack`) |\n";
    md << "| nats-server | " << m.value("nats_server", "?") << " |\n";
    md << "| Node.js, peers | " << m.value("node", "?") << ", graphile-worker "
       << m.value("graphile_worker", "?") << ", pg-boss " << m.value("pg_boss", "?") << " |\n";
    md << "| load generator | " << m.value("wrk", "?") << ", pgbench " << pg.value("server_version", "?") << " |\n";
    md << "| Synaps build | `build-bench`, CMAKE_BUILD_TYPE=Release (-O2 -g) |\n";
    md << "\nPostgreSQL settings (everything not listed is PostgreSQL's default):\n\n";
    md << "| setting | value |\n|---|---|\n";
    if (pg.contains("settings")) {
      for (auto it = pg["settings"].begin(); it != pg["settings"].end(); ++it) {
        md << "| `" << it.key() << "` | " << it.value().get<std::string>() << " |\n";
      }
    }
    md << "\nThe server is **durable**: `fsync`, `synchronous_commit` and `full_page_writes` "
          "are on, as in production, so every commit waits for the disk (a virtual disk here; "
          "`pg_test_fsync` measured about 0.3–0.7 ms per `fdatasync`). `max_wal_size` is "
          "raised to 4GB (ALTER SYSTEM) so the bulk load of the history benchmark does not "
          "checkpoint continuously.\n\n";
    md << "Method: every system runs against the same PostgreSQL server in the same run, each "
          "repetition on a fresh database (cloned from a migrated template); the peers run in "
          "the same repetition loop as Synaps, so slow phases of this shared machine hit both. "
          "Tables give the **median** over "
       << r.value("reps", 1)
       << " repetitions and the spread (min–max) in parentheses. The machine has 2 cores "
          "shared by PostgreSQL, the system under test, the load generator and, on this "
          "workplace, other developers' builds; numbers are noisy and only numbers from the "
          "same run are compared.\n\n";
  }

  void Drain() {
    md << "## 1. Drain throughput\n\n";
    if (!Ok(r, "drain")) return Failed("drain");
    const json& d = r["drain"];
    int tasks = d["tasks"];
    md << F(tasks) << " queued tasks (inserted with `synaps.submit_command` in bulk SQL before "
       << "the clock starts), `local` provider at zero latency, drained by 1, 2 and 4 "
       << "`synaps worker` processes (the real binary, `SYNAPS_WORKER_CONCURRENCY="
       << d["concurrency"]
       << "`, the default), timed from the first `task.claimed` to the last run finished, both on "
       << "PostgreSQL's clock. The peers drain " << F(tasks)
       << " no-op jobs on the same server in the same repetition: graphile-worker (one Node "
       << "process, `concurrency: " << d["concurrency"] << "`, jobs added with one "
       << "`add_jobs` call; timed from the first job started to its job table empty) and pg-boss "
       << "(one Node process, 4 loops of `fetch({batchSize: " << d["concurrency"]
       << "})` + one `complete()` per batch; pg-boss 10's `work()` sleeps its polling interval, "
       << "at least 500 ms, after each fetch, which would cap it far lower). graphile-worker "
       << "also drains at `concurrency: " << d.value("graphile_issue_concurrency", 32)
       << "` (issue #13's setting) in each repetition; the ratios are against the faster of "
       << "its two medians.\n\n";
    Summary g_same = Over(d["graphile"], "rate");
    Summary g = g_same;
    bool issue_setting = d.contains("graphile_issue") && !d["graphile_issue"].empty();
    Summary g_issue = issue_setting ? Over(d["graphile_issue"], "rate") : g_same;
    if (g_issue.median > g.median) g = g_issue;
    Summary b = Over(d["pgboss"], "rate");
    md << "| system | processes | tasks/s | seconds | vs graphile-worker | vs pg-boss | worker CPU ms per task |\n";
    md << "|---|---|---|---|---|---|---|\n";
    std::vector<Bar> bars;
    double one_worker = 0;
    for (const char* w : {"1", "2", "4"}) {
      if (!d["synaps"].contains(w)) continue;
      Summary s = Over(d["synaps"][w], "rate");
      Summary secs = Over(d["synaps"][w], "seconds");
      Summary cpu = Over(d["synaps"][w], "worker_cpu");
      if (std::string(w) == "1") one_worker = s.median;
      md << "| Synaps | " << w << " | " << Spread(s) << " | " << Spread(secs, 1) << " | "
         << F(s.median / g.median, 2) << "× | " << F(s.median / b.median, 2) << "× | "
         << F(cpu.median * 1000 / tasks, 2) << " |\n";
      bars.push_back({std::string("Synaps, ") + w + " worker" + (std::string(w) == "1" ? "" : "s"),
                      s.median, s.min, s.max, kSynapsColor});
    }
    Summary gs = Over(d["graphile"], "seconds"), bs = Over(d["pgboss"], "seconds");
    md << "| graphile-worker, concurrency " << d["concurrency"] << " | 1 | " << Spread(g_same)
       << " | " << Spread(gs, 1) << " | " << F(g_same.median / g.median, 2) << "× | "
       << F(g_same.median / b.median, 2) << "× | – |\n";
    if (issue_setting) {
      Summary gis = Over(d["graphile_issue"], "seconds");
      md << "| graphile-worker, concurrency " << d["graphile_issue_concurrency"] << " | 1 | "
         << Spread(g_issue) << " | " << Spread(gis, 1) << " | " << F(g_issue.median / g.median, 2)
         << "× | " << F(g_issue.median / b.median, 2) << "× | – |\n";
    }
    md << "| pg-boss | 1 | " << Spread(b) << " | " << Spread(bs, 1) << " | "
       << F(b.median / g.median, 2) << "× | 1× | – |\n";
    bars.push_back({"graphile-worker", g.median, g.min, g.max, kGraphileColor});
    bars.push_back({"pg-boss", b.median, b.min, b.max, kPgBossColor});
    Svg("drain.svg", BarChart("Drain: " + F(tasks) + " tasks, same PostgreSQL", "tasks/s", bars));
    if (d.contains("rows_per_task")) {
      const json& rows = d["rows_per_task"];
      md << "\n**What each system writes per task.** Synaps, counted after a drain (rows per "
            "task that remain): ";
      std::vector<std::string> parts;
      for (const char* t : {"threads", "commands", "runs", "tasks", "ledger_events", "artifacts",
                            "artifact_versions", "queue_items", "outbox"}) {
        if (rows.contains(t)) parts.push_back(std::string("`") + t + "` " + F(rows[t].get<double>(), 1));
      }
      for (size_t i = 0; i < parts.size(); ++i) md << (i ? ", " : "") << parts[i];
      md << "; ledger events by type: ";
      size_t i = 0;
      for (auto it = rows["ledger_by_type"].begin(); it != rows["ledger_by_type"].end(); ++it, ++i) {
        md << (i ? ", " : "") << "`" << it.key() << "` " << F(it.value().get<double>(), 1);
      }
      md << ". On top of those rows, the queue item is inserted, updated by the claim and deleted "
            "by the completion, the run and task rows are updated at claim and at completion, and "
            "the answer is kept in the task's output (an answer of at least "
            "`SYNAPS_ANSWER_ARTIFACT_MIN_BYTES`, 16 KiB by default, would also be written as a "
            "file and an `answer.md` artifact version before the completion commits; these "
            "answers are shorter). graphile-worker writes one job row per job (insert, update on "
            "lock, delete on completion) and pg-boss one job row (insert, update on fetch, "
            "update on complete); neither keeps a history, an artifact or an outbox.\n";
    }
    bool met = one_worker >= 1.5 * g.median;
    summary_rows.push_back("| 1. Drain | ≥ 1.5× graphile-worker's jobs/s with one worker process | " +
                           F(one_worker) + " vs " + F(g.median) + " jobs/s = " +
                           F(one_worker / g.median, 2) + "× | " + Status(met) + " |");
    md << "\n**Target:** at least 1.5× graphile-worker with one worker process while writing the "
          "full ledger: " << F(one_worker / g.median, 2) << "× — " << Status(met) << ".\n";
    DrainCost(d);
    md << ReadFile(options.bench_dir + "/notes/drain.md");
  }

  // What a task costs the database (bench/cost.h): WAL bytes, commits and statements per task,
  // Synaps' submit and its one-worker drain, the peers' add and drain together (medians).
  void DrainCost(const json& d) {
    if (!d["synaps"].contains("1") || !d["synaps"]["1"].at(0).contains("cost") ||
        !d["graphile"].at(0).contains("cost") || !d.contains("synaps_submit_cost") ||
        d["synaps_submit_cost"].is_null()) {
      return;
    }
    auto costs = [](const json& samples) {
      json out = json::array();
      for (const auto& sample : samples) out.push_back(sample["cost"]);
      return out;
    };
    const json& submit = d["synaps_submit_cost"];
    const json drain = costs(d["synaps"]["1"]);
    md << "\n**What each system costs the database per task** (the server's own counters, "
          "stable where rates are not: WAL from `pg_current_wal_lsn()`, a `CHECKPOINT` before "
          "each phase so full-page images count; commits from `pg_stat_database`; top-level "
          "statements from `pg_stat_statements`, `BEGIN`/`COMMIT` included; the benchmark's own "
          "progress polls taken off). Synaps' submit is the bulk SQL that fills the queue "
          "(statements of 2,000 commands); its drain is one worker's. The peers' columns are "
          "their add (one statement) and drain together; their commits and statements include "
          "installing their schema, their WAL does not.\n\n";
    md << "| system | WAL B per task: submit | drain | total | commits per task | statements "
          "per task |\n|---|---|---|---|---|---|\n";
    const Summary wal = Over(drain, "wal_bytes"), commits = Over(drain, "commits"),
                  statements = Over(drain, "statements");
    const double synaps_total = submit["wal_bytes"].get<double>() + wal.median;
    md << "| Synaps, 1 worker | " << F(submit["wal_bytes"].get<double>()) << " | " << Spread(wal)
       << " | " << F(synaps_total) << " | "
       << F(submit["commits"].get<double>() + commits.median, 2) << " | "
       << F(submit["statements"].get<double>() + statements.median, 2) << " |\n";
    for (const auto& [name, key] :
         {std::pair{"graphile-worker", "graphile"}, std::pair{"pg-boss", "pgboss"}}) {
      const json peer = costs(d[key]);
      md << "| " << name << " | – | – | " << Spread(Over(peer, "wal_bytes")) << " | "
         << F(Over(peer, "commits").median, 2) << " | " << F(Over(peer, "statements").median, 2)
         << " |\n";
    }
    const bool met = synaps_total <= 3000;
    md << "\n**Target:** at most 3,000 B of WAL per task, submit and drain: " << F(synaps_total)
       << " B — " << Status(met) << ".\n";
    summary_rows.push_back(
        "| 1c. WAL per task | ≤ 3,000 B (submit + drain), commits and statements reported | " +
        F(synaps_total) + " B (graphile-worker " +
        F(Over(costs(d["graphile"]), "wal_bytes").median) + ") | " + Status(met) + " |");
  }

  void Wakeup() {
    md << "\n## 2. Wakeup latency\n\n";
    if (!Ok(r, "wakeup")) return Failed("wakeup");
    const json& w = r["wakeup"];
    md << "Submit → claim: `task.claimed` event time minus the command's `created_at` (both are "
          "PostgreSQL's `now()`, the start of the submit and of the claim transaction), for "
       << F(w["sequential"].get<double>()) << " sequential `POST /v1/commands/submit` calls "
          "(each waits until its run succeeded before the next is sent) to `synaps api` with one "
          "`synaps worker`, NATS up. With NATS stopped under the running API and worker, "
       << F(w["polled"].get<double>()) << " submits arrive at random (exponential gaps, mean "
       << F(w["polled_gap_ms"].get<double>()) << " ms) and wait for the worker's poll "
          "(`SYNAPS_POLL_INTERVAL_MS="
       << w["poll_interval_ms"] << "`, the default). graphile-worker: the same number of "
          "sequential `addJob` calls, each waiting for `job:complete`, with its LISTEN/NOTIFY "
          "wakeup; a trigger records each job's `created_at` and `locked_at`, also PostgreSQL's "
          "`now()`.\n\n";
    auto pooled = [&](const json& runs) {
      std::vector<double> all;
      for (const auto& run : runs) {
        for (double v : run["samples"]) all.push_back(v);
      }
      return all;
    };
    md << "| mode | samples | p50 ms | p95 ms | p99 ms | max ms | p50 per run (min–max) |\n";
    md << "|---|---|---|---|---|---|---|\n";
    std::vector<Series> curves;
    auto row = [&](const std::string& name, const json& runs, const char* color) {
      if (!runs.is_array() || runs.empty()) return Summary{};
      auto all = pooled(runs);
      Summary s = Summarize(all);
      Summary per = Over(runs, "p50");
      md << "| " << name << " | " << s.n << " | " << F(s.p50, 2) << " | " << F(s.p95, 2) << " | "
         << F(s.p99, 2) << " | " << F(s.max, 1) << " | " << F(per.min, 2) << "–" << F(per.max, 2)
         << " |\n";
      std::sort(all.begin(), all.end());
      Series se{name, color, {}};
      size_t step = std::max<size_t>(1, all.size() / 200);
      for (size_t i = 0; i < all.size(); i += step) {
        se.points.push_back({std::max(all[i], 0.01), 100.0 * (i + 1) / all.size()});
      }
      se.points.push_back({std::max(all.back(), 0.01), 100.0});
      curves.push_back(se);
      return s;
    };
    Summary nats = row("Synaps, NATS wakeups", w["nats"], kSynapsColor);
    Summary poll = row("Synaps, NATS stopped (polling)", w["polling"], "#76b7b2");
    Summary g = row("graphile-worker (LISTEN/NOTIFY)", w["graphile"], kGraphileColor);
    Svg("wakeup.svg", LineChart("Wakeup latency, cumulative distribution",
                                "submit → claim, ms (log scale)", "% of submits", curves, true, 100));
    if (w.contains("submit_rtt_ms")) {
      Summary rtt = Over(w["submit_rtt_ms"], "p50");
      md << "\nThe HTTP submit itself (client round trip, including the transaction and its "
            "commit) took a median p50 of " << F(rtt.median, 2) << " ms.\n";
    }
    bool nats_met = nats.p50 <= 5 && nats.p99 <= 25;
    bool poll_met = poll.n > 0 && poll.max <= w["poll_interval_ms"].get<double>() + 100;
    summary_rows.push_back("| 2. Wakeup, NATS | p50 ≤ 5 ms, p99 ≤ 25 ms | p50 " + F(nats.p50, 2) +
                           " ms, p99 " + F(nats.p99, 2) + " ms (graphile-worker: p50 " +
                           F(g.p50, 2) + ", p99 " + F(g.p99, 2) + ") | " + Status(nats_met) + " |");
    summary_rows.push_back("| 2. Wakeup, NATS down | bounded by the poll interval (" +
                           F(w["poll_interval_ms"].get<double>()) + " ms) | p50 " + F(poll.p50) +
                           " ms, max " + F(poll.max) + " ms | " + Status(poll_met) + " |");
    md << "\n**Targets:** with NATS p50 ≤ 5 ms and p99 ≤ 25 ms: p50 " << F(nats.p50, 2)
       << " ms, p99 " << F(nats.p99, 2) << " ms — " << Status(nats_met)
       << ". With NATS down, bounded by the poll interval: max " << F(poll.max) << " ms against "
       << w["poll_interval_ms"] << " ms (plus the claim itself) — " << Status(poll_met) << ".\n";
    md << ReadFile(options.bench_dir + "/notes/wakeup.md");
  }

  void Intake() {
    md << "\n## 3. API intake\n\n";
    if (!Ok(r, "intake")) return Failed("intake");
    const json& in = r["intake"];
    md << "`wrk -t2 -c" << in["connections"] << " -d" << in["seconds"]
       << "s` (keep-alive) POSTs `{\"kind\":\"prompt\",\"input\":{\"text\":\"bench\"}}` to "
          "`/v1/commands/submit` with the admin token (`bench/wrk/submit.lua`), "
          "`SYNAPS_RATE_LIMIT_RPS=0`, the API's default pool of 16 PostgreSQL connections and 2 "
          "I/O threads, NATS up (every submit's wakeup is published by the relay). pgbench runs "
          "the statement the API runs — `SELECT synaps.submit_command(...)`, one statement that "
          "is its own transaction — with the same command JSON, as a custom script (`-M prepared -j 2`) for the same "
          "duration with 16 clients (the API's pool size) and 64 (wrk's connections). Each run "
          "starts on a fresh database after a 2 s warm-up.\n\n";
    Summary w = Over(in["wrk"], "rps");
    Summary wl = Over(in["wrk"], "latency_avg_ms");
    Summary non2xx = Over(in["wrk"], "non2xx");
    md << "| client | tx/s (submits/s) | mean latency ms |\n|---|---|---|\n";
    md << "| wrk → synaps api, 64 connections | " << Spread(w) << " | " << F(wl.median, 1) << " |\n";
    std::vector<Bar> bars = {{"Synaps API (wrk, 64 conn.)", w.median, w.min, w.max, kSynapsColor}};
    double best = 0;
    std::string best_label;
    for (auto it = in["pgbench"].begin(); it != in["pgbench"].end(); ++it) {
      Summary p = Over(it.value(), "tps");
      Summary pl = Over(it.value(), "latency_avg_ms");
      md << "| pgbench, " << it.key() << " clients | " << Spread(p) << " | " << F(pl.median, 1)
         << " |\n";
      bars.push_back({"pgbench, " + it.key() + " clients", p.median, p.min, p.max, kPgbenchColor});
      if (p.median > best) best = p.median, best_label = it.key();
    }
    if (non2xx.max > 0) {
      md << "\nwrk saw up to " << F(non2xx.max) << " non-2xx responses in a run.\n";
    }
    Svg("intake.svg", BarChart("API intake vs pgbench, same SQL, same server", "transactions/s",
                               bars));
    double ratio = best > 0 ? w.median / best : 0;
    bool met = ratio >= 0.9;  // issue #13: single submits at least 90% of pgbench
    summary_rows.push_back("| 3. API intake | ≥ 90% of pgbench's tx/s | " + F(w.median) +
                           " vs " + F(best) + " tx/s (pgbench " + best_label + " clients) = " +
                           F(ratio * 100) + "% | " + Status(met) + " |");
    md << "\n**Target:** at least 90% of pgbench's transactions/s (the better of its two client "
          "counts): " << F(ratio * 100) << "% — " << Status(met) << ".\n";
    md << ReadFile(options.bench_dir + "/notes/intake.md");
    if (in.contains("batch_wrk")) BulkIntake(in);
  }

  // Batch submits (docs/api.md, "Batch submit") against the same statement under pgbench.
  void BulkIntake(const json& in) {
    md << "\n### Bulk intake\n\n";
    md << "`wrk -t2 -c" << in["batch_connections"] << "` POSTs batches of " << in["batch"]
       << " commands (`{\"commands\":[{\"kind\":\"prompt\",\"input\":{\"text\":\"bulk N\"}}, "
          "...]}`, `bench/wrk/submit_batch.lua`) to `/v1/commands/submit`, each written in one "
          "statement and transaction (`store::SubmitCommands`), on a fresh database with the "
          "same API settings. pgbench runs that statement with the same "
       << in["batch"] << " commands and " << in["batch_connections"] << " clients.\n\n";
    Summary w = Over(in["batch_wrk"], "commands_per_s");
    Summary wl = Over(in["batch_wrk"], "latency_avg_ms");
    Summary p = Over(in["batch_pgbench"], "commands_per_s");
    Summary pl = Over(in["batch_pgbench"], "latency_avg_ms");
    md << "| client | commands/s | mean latency per batch ms |\n|---|---|---|\n";
    md << "| wrk → synaps api, " << in["batch_connections"] << " connections | " << Spread(w)
       << " | " << F(wl.median, 1) << " |\n";
    md << "| pgbench, the batch statement, " << in["batch_connections"] << " clients | "
       << Spread(p) << " | " << F(pl.median, 1) << " |\n";
    bool met = w.median >= 10000;
    summary_rows.push_back("| 3b. Bulk intake | ≥ 10,000 commands/s in batches of 1,000 | " +
                           F(w.median) + " commands/s (pgbench, same statement: " + F(p.median) +
                           ") | " + Status(met) + " |");
    md << "\n**Target:** at least 10,000 commands/s: " << F(w.median) << " — " << Status(met)
       << ".\n";
    md << ReadFile(options.bench_dir + "/notes/bulk_intake.md");
  }

  void Inflight() {
    md << "\n## 4. In flight\n\n";
    if (!Ok(r, "inflight")) return Failed("inflight");
    const json& f = r["inflight"];
    md << "A fake OpenAI-compatible server (`tests/support/fake_openai`, in the benchmark "
          "process, on its own thread) answers every chat completion after "
       << f["delay_ms"]
       << " ms with a short SSE stream. One `synaps worker` with "
          "`SYNAPS_DEFAULT_ROUTE={\"provider\":\"openai-compatible\",\"baseUrl\":…,\"model\":"
          "\"fake\"}` "
          "and `SYNAPS_WORKER_CONCURRENCY` of 100, 1,000, 2,000 and 10,000 drains "
       << f["waves"]
       << "× its concurrency in queued tasks (at least 1,000). tasks/s is tasks over "
          "first claim → last run finished; peak RSS is the worker's `VmHWM` read from "
          "`/proc/<pid>/status` just before it is stopped. The ideal is concurrency / 1 s. The "
          "references are the same worker binary draining as many tasks as the 10,000 level with "
          "the `local` provider at zero latency, at the worker's default concurrency (the drain "
          "benchmark's setting) and at 10,000, in the same repetition (each reference row names "
          "its concurrency); the 10,000 level is compared with the faster of the two.\n\n";
    md << "| concurrency | tasks | tasks/s | ideal | peak RSS MiB | worker CPU s |\n";
    md << "|---|---|---|---|---|---|\n";
    Series rate{"Synaps tasks/s", kSynapsColor, {}};
    Series ideal{"ideal (concurrency / 1 s)", "#999", {}, true};
    Series rss{"peak RSS, MiB", "#e15759", {}};
    double rate2000 = 0, rss2000 = 0, rate10k = 0, rss10k = 0;
    for (int c : f["levels"]) {
      std::string k = std::to_string(c);
      if (!f["runs"].contains(k)) continue;
      const json& runs = f["runs"][k];
      Summary s = Over(runs, "rate");
      Summary m = Over(runs, "peak_rss_mib");
      Summary cpu = Over(runs, "worker_cpu");
      md << "| " << F(c) << " | " << F(runs[0]["tasks"].get<double>()) << " | " << Spread(s)
         << " | " << F(c) << " | " << Spread(m) << " | " << F(cpu.median, 1) << " |\n";
      rate.points.push_back({static_cast<double>(c), s.median});
      ideal.points.push_back({static_cast<double>(c), static_cast<double>(c)});
      rss.points.push_back({static_cast<double>(c), m.median});
      if (c == 2000) rate2000 = s.median, rss2000 = m.median;
      if (c == 10000) rate10k = s.median, rss10k = m.median;
    }
    double reference = 0;  // the faster zero-latency drain
    if (f.contains("reference")) {
      std::map<int, json> by_concurrency;
      for (const auto& sample : f["reference"]) {
        by_concurrency[sample.value("concurrency", 16)].push_back(sample);
      }
      for (const auto& [c, samples] : by_concurrency) {
        Summary s = Over(samples, "rate");
        Summary m = Over(samples, "peak_rss_mib");
        Summary cpu = Over(samples, "worker_cpu");
        reference = std::max(reference, s.median);
        md << "| reference: " << F(c) << ", zero latency | "
           << F(f["reference_tasks"].get<double>()) << " | " << Spread(s) << " | – | " << Spread(m)
           << " | " << F(cpu.median, 1) << " |\n";
      }
    }
    double top = rate.points.empty() ? 2000 : rate.points.back().first;
    Series target{"target at 2,000: 1,800/s", "#e15759", {{100, 1800}, {top, 1800}}, true};
    Series budget{"budget: 300 MB (286 MiB)", "#999", {{100, 286}, {top, 286}}, true};
    Svg("inflight.svg", LineChart("In flight: provider answers after 1 s", "worker concurrency",
                                  "tasks/s", {rate, ideal, target}, true));
    Svg("inflight-rss.svg", LineChart("In flight: peak RSS of the worker", "worker concurrency",
                                      "MiB", {rss, budget}, true));
    bool met = rate2000 >= 1800 && rss2000 * 1.048576 < 300;  // the target is in MB
    summary_rows.push_back("| 4. In flight | 2,000 in flight: ≥ 1,800 tasks/s under 300 MB | " +
                           F(rate2000) + " tasks/s, " + F(rss2000) + " MiB | " + Status(met) +
                           " |");
    md << "\n**Target:** 2,000 in flight sustaining at least 1,800 tasks/s under 300 MB: "
       << F(rate2000) << " tasks/s at " << F(rss2000) << " MiB — " << Status(met) << ".\n";
    if (rate10k > 0 && reference > 0) {
      double share = rate10k / reference;
      bool met10k = share >= 0.9 && rss10k * 1.048576 < 300;
      summary_rows.push_back(
          "| 4. In flight | 10,000 in flight in one worker: under 300 MB, ≥ 90% of its "
          "zero-latency drain | " +
          F(rate10k) + " tasks/s (" + F(100 * share) + "% of " + F(reference) + "), " + F(rss10k) +
          " MiB | " + Status(met10k) + " |");
      md << "\n**Target:** 10,000 in flight in one worker under 300 MB, completing at least 90% "
            "as fast as its zero-latency drain: "
         << F(rate10k) << " tasks/s, " << F(100 * share) << "% of " << F(reference)
         << " tasks/s, at " << F(rss10k) << " MiB — " << Status(met10k) << ".\n";
    }
    md << ReadFile(options.bench_dir + "/notes/inflight.md");
  }

  void History() {
    md << "\n## 5. Scale of history\n\n";
    if (!Ok(r, "history")) return Failed("history");
    const json& h = r["history"];
    md << F(h["history_tasks"].get<double>())
       << " finished tasks were written directly with "
          "`INSERT ... SELECT generate_series` (bypassing the functions; time-ordered ids as "
          "submits make them, indexes that back no constraint built after the load): per task a "
          "thread, command, run, task, artifact and artifact version and six ledger events ("
       << F(h["ledger_rows"].get<double>()) << " ledger rows; database "
       << F(h["database_bytes"].get<double>() / 1024 / 1024 / 1024, 1) << " GiB; generated in "
       << F(h["generate_seconds"].get<double>())
       << " s, then `VACUUM ANALYZE`). Each repetition "
          "then measures, on an empty database and on the one with history (ABBA: every other "
          "repetition starts with the history): the latency of "
       << h["probes"]
       << " single-item `claim_queue_items` calls timed by the client (a queue of "
          "their own), and the drain rate of "
       << F(h["tasks"].get<double>())
       << " queued tasks by one `synaps worker`. Drained tasks stay, so the history grows by "
       << F(h["tasks"].get<double>())
       << " tasks per repetition. The empty database is a fresh clone every repetition, the "
          "history database is reused: before each measurement both have their queue "
          "(`queue_items`, `outbox`) vacuumed and analyzed, `runs` and `tasks` vacuumed and a "
          "checkpoint taken, so what differs is the history, not the dead rows earlier "
          "repetitions left.\n\n";
    auto claim_p = [](const json& runs, const char* p) {
      std::vector<double> v;
      for (const auto& run : runs) v.push_back(run["claim_ms"][p].get<double>());
      return Summarize(v);
    };
    Summary e50 = claim_p(h["empty"], "p50"), h50 = claim_p(h["history"], "p50");
    Summary e99 = claim_p(h["empty"], "p99"), h99 = claim_p(h["history"], "p99");
    Summary er = Over(h["empty"], "rate"), hr = Over(h["history"], "rate");
    md << "| database | claim p50 ms | claim p99 ms | drain tasks/s |\n|---|---|---|---|\n";
    md << "| empty | " << Spread(e50, 2) << " | " << Spread(e99, 2) << " | " << Spread(er)
       << " |\n";
    md << "| " << F(h["history_tasks"].get<double>()) << " finished tasks | " << Spread(h50, 2)
       << " | " << Spread(h99, 2) << " | " << Spread(hr) << " |\n";
    md << "| ratio (history / empty) | " << F(h50.median / e50.median, 2) << "× | "
       << F(h99.median / e99.median, 2) << "× | " << F(hr.median / er.median, 2) << "× |\n";
    Svg("history.svg",
        BarChart("Drain rate of one worker, empty vs " + F(h["history_tasks"].get<double>()) +
                     " finished tasks",
                 "tasks/s",
                 {{"empty database", er.median, er.min, er.max, kSynapsColor},
                  {"with history", hr.median, hr.min, hr.max, "#9c755f"}}));
    double claim_ratio = h50.median / e50.median;
    double drain_ratio = hr.median / er.median;
    // Issues #13 (1,000,000 finished tasks) and #18 (10,000,000): within 10%.
    bool met = claim_ratio <= 1.1 && drain_ratio >= 0.9;
    summary_rows.push_back("| 5. History | within 10% of the empty database | claim p50 " +
                           F(claim_ratio, 2) + "×, drain rate " + F(drain_ratio, 2) +
                           "× the empty database's | " + Status(met) + " |");
    md << "\n**Target:** within 10% of the empty database (claim latency at most 1.1×, drain "
          "rate at least 0.9×): claim p50 " << F(claim_ratio, 2) << "×, drain rate "
       << F(drain_ratio, 2) << "× — " << Status(met) << ".\n";
    if (h.contains("usage")) {
      const json& u = h["usage"];
      md << "\n**Usage and cost over this history** (`GET /v1/usage` grouped by tenant, day, "
            "route, model and skill over 366 days; docs/observability.md): a query on a history "
            "never rolled up (every event read live) took "
         << F(u["first_query_seconds"].get<double>(), 2)
         << " s; the rollup passes that fold it in (the API runs them in the background) took "
         << F(u["rollup_seconds"].get<double>(), 2) << " s; after that a query takes "
         << F(u["query_ms"]["p50"].get<double>(), 1) << " ms (p50 of 5; max "
         << F(u["query_ms"]["max"].get<double>(), 1) << " ms) for " << u["rows"]
         << " rows.\n";
    }
    md << ReadFile(options.bench_dir + "/notes/history.md");
  }

  void Expiry() {
    md << "\n## 8. Expiry\n\n";
    if (!Ok(r, "expiry")) return Failed("expiry");
    const json& x = r["expiry"];
    md << "One UTC day of " << F(x["tasks"].get<double>())
       << " finished one-task runs (created ten days ago, written directly with every row a run "
          "leaves), a default retention of 3 days, one expiry pass (what `synaps expire` runs; "
          "batches of 500 runs; docs/history.md), "
       << x.value("reps", 1)
       << " repetitions each in ABBA order on fresh databases. With its partition the day's ledger "
          "goes by dropping the partition and the other rows by deletes; without, its events sit "
          "in the default partition and go by deletes too. WAL is the server's during the pass; "
          "the database size is `pg_database_size` before and after.\n\n"
          "| | expire s | WAL MB | WAL per run | database before → after |\n"
          "|---|---|---|---|---|\n";
    double seconds[2] = {0, 0};
    int i = 0;
    for (const char* k : {"partitioned", "rows"}) {
      if (!x.contains(k) || !x[k].is_array() || x[k].empty()) continue;
      const json& v = x[k];
      Summary s = Over(v, "expire_seconds"), wal = Over(v, "wal_bytes");
      Summary before = Over(v, "database_bytes_before"), after = Over(v, "database_bytes_after");
      seconds[i++] = s.median;
      md << "| " << (std::string(k) == "partitioned" ? "with the day's partition" : "without")
         << " | " << Spread(s, 1) << " | " << F(wal.median / 1e6) << " (" << F(wal.min / 1e6) << "–"
         << F(wal.max / 1e6) << ") | " << F(wal.median / x["tasks"].get<double>()) << " B | "
         << F(before.median / 1e6) << " MB → " << F(after.median / 1e6) << " MB |\n";
    }
    if (i == 2) {
      summary_rows.push_back("| 8. Expiry | a day of " + F(x["tasks"].get<double>()) +
                             " tasks, with and without its partition (no target) | " +
                             F(seconds[0], 1) + " s with, " + F(seconds[1], 1) +
                             " s without | measured |");
    }
  }

  void Export() {
    md << "\n## 6. Span export\n\n";
    if (!Ok(r, "export")) return Failed("export");
    const json& x = r["export"];
    md << "One `synaps worker` (concurrency " << x["concurrency"] << ") drains "
       << F(x["tasks"].get<double>())
       << " queued prompt tasks (`local` provider, zero latency), each carrying a sampled trace "
          "in its spec as a traced submit stores it, first with OTLP export off, then with "
          "`OTEL_EXPORTER_OTLP_ENDPOINT` set to a fake OTLP/HTTP collector in the benchmark "
          "process that answers 200 (docs/observability.md). Repetitions alternate off and on "
          "(ABBA) "
          "on clones of one queued database; every task then exports its attempt, `chat`, "
          "queue wait, claim, upload and completion spans.\n\n";
    Summary off = Over(x["off"], "rate"), on = Over(x["on"], "rate");
    Summary off_cpu = Over(x["off"], "worker_cpu"), on_cpu = Over(x["on"], "worker_cpu");
    Summary spans = Over(x["on"], "spans");
    md << "| export | tasks/s | worker CPU s | spans received |\n|---|---|---|---|\n";
    md << "| off | " << Spread(off) << " | " << F(off_cpu.median, 1) << " | — |\n";
    md << "| on | " << Spread(on) << " | " << F(on_cpu.median, 1) << " | "
       << F(spans.median) << " |\n";
    double ratio = on.median / off.median;
    bool met = ratio >= 0.95;
    summary_rows.push_back("| 6. Span export | drain with export on within 5% of off | " +
                           F(ratio * 100) + "% of the rate with export off | " + Status(met) +
                           " |");
    md << "\n**Target:** the drain rate with export on within 5% of the rate with it off: "
       << F(ratio * 100) << "% — " << Status(met) << ".\n";
    if (x.contains("span_cpu") && !x["span_cpu"].empty()) {
      Summary emit = Over(x["span_cpu"], "emit_us"), process = Over(x["span_cpu"], "process_us");
      const double per_task = spans.median / x["tasks"].get<double>();
      // With both cores busy, a task costs (cores / rate) of CPU in all: what export adds to it.
      const double cores = r.value("machine", json::object()).value("cores", 2.0);
      const double task_cpu_us = cores / off.median * 1e6;
      md << "\nThe CPU a span costs, measured in the benchmark process alone (the worker's "
            "queue-wait, claim, upload and completion spans of "
         << F(x["span_cpu"][0]["spans"].get<double>() / 4)
         << " tasks emitted into an exporter sending to the fake collector): **"
         << F(emit.median, 1) << " µs** on the emitting thread (what a task's own work waits "
         << "for) and **" << F(process.median, 1)
         << " µs** in the whole process (adding the exporter's thread and the collector "
            "receiving: an upper bound). At "
         << F(per_task, 1) << " spans per task that is " << F(per_task * process.median, 0)
         << " µs per task, " << F(100 * per_task * process.median / task_cpu_us, 1) << "% of the "
         << F(task_cpu_us, 0) << " µs of CPU a task costs in all with " << F(cores, 0)
         << " busy cores at the rate with export off.\n";
    }
  }

  void Fairness() {
    md << "\n## 7. Fair sharing\n\n";
    if (!Ok(r, "fairness")) return Failed("fairness");
    const json& x = r["fairness"];
    md << "One `synaps worker` (concurrency " << x["concurrency"] << ") drains "
       << F(x["tasks"].get<double>())
       << " queued prompt tasks (`local` provider, zero latency) spread round-robin over 4, then "
          "1,000 tenants, with fair sharing off (`SYNAPS_FAIR_SHARE=off`: priority and age "
          "alone) and on (the default: every claim shares its slots between the tenants with "
          "work, docs/flow-control.md). Repetitions alternate off and on in ABBA order on clones "
          "of one queued database. The claim columns time 200 single-item claims by the client on "
          "such a queue (never completed, so the tenants' shares move as in a drain).\n\n";
    md << "| tenants | fair sharing | tasks/s | worker CPU s | claim p50 ms | claim p99 ms |\n"
          "|---|---|---|---|---|---|\n";
    std::vector<std::string> ratios;
    bool met = true;
    for (const char* key : {"tenants_4", "tenants_1000"}) {
      if (!x.contains(key)) continue;
      const json& t = x[key];
      Summary off = Over(t["off"], "rate"), on = Over(t["on"], "rate");
      for (const char* mode : {"off", "on"}) {
        const Summary& rate = std::string(mode) == "off" ? off : on;
        md << "| " << t["tenants"] << " | " << mode << " | " << Spread(rate) << " | "
           << F(Over(t[mode], "worker_cpu").median, 1) << " | "
           << F(t["claim_ms"][mode]["p50"].get<double>(), 2) << " | "
           << F(t["claim_ms"][mode]["p99"].get<double>(), 2) << " |\n";
      }
      const double ratio = on.median / off.median;
      met = met && ratio >= 0.9;
      ratios.push_back(t["tenants"].dump() + " tenants " + F(ratio * 100) + "%");
    }
    met = met && !ratios.empty();
    std::string measured;
    for (const auto& r : ratios) measured += (measured.empty() ? "" : ", ") + r;
    if (x.contains("keys_1000")) {
      const json& c = x["keys_1000"]["claim_ms"];
      md << "\nOne tenant whose tasks carry 1,000 fairness keys: claim p50 / p99 "
         << F(c["off"]["p50"].get<double>(), 2) << " / " << F(c["off"]["p99"].get<double>(), 2)
         << " ms with fair sharing off, " << F(c["on"]["p50"].get<double>(), 2) << " / "
         << F(c["on"]["p99"].get<double>(), 2) << " ms on.\n";
    }
    summary_rows.push_back(
        "| 7. Fair sharing | drain with fair sharing on within 10% of off "
        "(4 and 1,000 tenants) | " +
        measured + " of the rate with it off | " + Status(met) + " |");
    md << "\n**Target:** the drain rate with fair sharing on within 10% of the rate with it off: "
       << measured << " — " << Status(met) << ".\n";
  }
};

}  // namespace

void WriteReport(const json& results, const BenchOptions& options) {
  Report rep{results, options, {}, {}};
  rep.Machine();
  rep.Drain();
  rep.Wakeup();
  rep.Intake();
  rep.Inflight();
  rep.History();
  rep.Export();
  rep.Fairness();
  rep.Expiry();

  std::ostringstream doc;
  doc << "# Benchmarks\n\n";
  doc << "Written by `make bench` (`bench/`, see [Reproducing](#reproducing)) from the numbers "
         "of its last run";
  if (results.contains("finished_at")) {
    time_t t = results["finished_at"].get<int64_t>();
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
    doc << " (" << buf << ", " << F(results.value("total_seconds", 0.0) / 60, 1) << " min"
        << (results.value("quick", false) ? ", **quick mode**: fewer tasks and repetitions" : "")
        << ")";
  }
  doc << ". Do not edit the numbers by hand; prose that is not generated lives in "
         "`bench/notes/*.md`. The targets come from issue 7 and are goals for the numbers, not "
         "assertions in tests.\n\n";
  doc << "## Where each target stands\n\n";
  doc << "| benchmark | target | measured (medians) | status |\n|---|---|---|---|\n";
  for (const auto& row : rep.summary_rows) doc << row << "\n";
  doc << "\n" << rep.md.str();
  doc << "\n" << ReadFile(options.bench_dir + "/notes/profiling.md");
  doc << "\n## Reproducing\n\n"
         "```sh\n"
         "make bench                 # installs wrk and the npm peers (scripts/install-deps --bench),\n"
         "                           # builds build-bench (Release), runs everything (~20 min), writes this file\n"
         "BENCH_QUICK=1 make bench   # fewer tasks, one repetition (~5 min)\n"
         "build-bench/bench/synaps_bench --only drain,wakeup   # some benchmarks (others keep their last results)\n"
         "build-bench/bench/synaps_bench --report-only         # redraw this file from build-bench/bench-results.json\n"
         "```\n\n"
         "Everything runs on this machine: a private PostgreSQL and nats-server on ports the OS "
         "picks, in a temporary directory under `/var/tmp` (removed afterwards; `BENCH_KEEP=1` "
         "keeps it with every server and process log, and the history benchmark's loaded database "
         "in it; the log says how to start its server again). Every sample is kept in "
         "`build-bench/bench-results.json`.\n";
  WriteFile(options.report_path, doc.str());
}

}  // namespace synaps::bench
