// 4. In flight: a fake OpenAI-compatible model answering after 1 s (streamed, as the worker asks
//    for streams); one worker at concurrency 100, 1,000, 2,000 and 10,000: tasks/s and peak RSS.
//    The reference for 10,000: the same number of tasks drained by the same worker binary with
//    the `local` provider at zero latency, at the worker's default concurrency and at 10,000.
#include <thread>

#include "benchmarks.h"
#include "support/fake_openai.h"
#include "worker/worker.h"

namespace synaps::bench {
namespace {

// Drains a clone of `tasks` queued tasks with one worker under `env` (database, bus and object
// store added here); returns the sample. `label` names the log file.
json DrainWithOneWorker(Stack& stack, int tasks, std::map<std::string, std::string> env,
                        const std::string& label) {
  std::string db = stack.QueuedSynapsDb(tasks);
  env["SYNAPS_DATABASE_URL"] = stack.Url(db);
  env["SYNAPS_NATS_URL"] = stack.nats().Url();
  env["SYNAPS_OBJECT_STORE"] = "file://" + stack.TempDir("objects");
  ChildProcess worker =
      StartSynaps("worker", env, stack.root() + "/inflight-" + label + "-" + db + ".log");
  auto conn = stack.Connect(db);
  WaitUntil(
      [&] {
        return Scalar(conn,
                      "SELECT count(*) FROM synaps.runs WHERE status IN "
                      "('succeeded', 'failed')") >= tasks;
      },
      std::chrono::minutes(10), "in-flight drain", std::chrono::milliseconds(100));
  double rss = PeakRssMiB(worker.pid());
  double cpu = CpuSeconds(worker.pid());
  worker.Stop(std::chrono::seconds(30));
  int64_t failed = Scalar(conn, "SELECT count(*) FROM synaps.runs WHERE status <> 'succeeded'");
  double seconds = ScalarDouble(
      conn,
      "SELECT extract(epoch FROM (SELECT max(finished_at) FROM synaps.runs) -"
      " (SELECT min(created_at) FROM synaps.ledger_events WHERE type = 'task.claimed'))");
  // How long the provider calls took as the worker measured them (tasks.output.latencyMs): the
  // fake answers after 1 s, so what is above that is queueing in the worker and the fake.
  std::string call_ms = Must(conn.Exec("SELECT percentile_disc(array[0.5, 0.9, 0.99]) WITHIN GROUP"
                                       " (ORDER BY (output->>'latencyMs')::int)::text"
                                       " FROM synaps.tasks"),
                             "call latencies")
                            .GetString(0, 0);
  conn = db::Connection();
  stack.DropDb(db);
  json sample = {{"tasks", tasks},
                 {"seconds", seconds},
                 {"rate", tasks / seconds},
                 {"peak_rss_mib", rss},
                 {"worker_cpu", cpu},
                 {"failed", failed},
                 {"call_ms_p50_p90_p99", call_ms}};
  Log("  " + std::to_string(tasks / seconds) + " tasks/s, peak RSS " + std::to_string(rss) +
      " MiB, worker CPU " + std::to_string(cpu) + " s, provider call ms p50/p90/p99 " + call_ms);
  return sample;
}

}  // namespace

json RunInflight(Stack& stack, const BenchOptions& options) {
  const std::vector<int> levels = options.inflight_levels.empty()
                                      ? std::vector<int>{100, 1000, 2000, 10000}
                                      : options.inflight_levels;
  // tasks = waves × concurrency (at least 1,000)
  const int waves = options.inflight_waves > 0 ? options.inflight_waves : options.quick ? 2 : 3;
  testing::FakeOpenAi fake([](const testing::FakeRequest&, int) {
    testing::FakeReply reply = testing::FakeOpenAi::Stream({"a slow ", "answer"});
    reply.delay = std::chrono::milliseconds(1000);
    return reply;
  });
  json route = {{"provider", "openai-compatible"}, {"baseUrl", fake.base_url()},
                {"model", "fake"}};
  const int reference_tasks = std::max(1000, waves * levels.back());
  json out = {{"levels", levels},     {"waves", waves}, {"delay_ms", 1000},
              {"reps", options.reps}, {"route", route}, {"reference_tasks", reference_tasks}};
  json runs = json::object();
  json reference = json::array();
  for (int rep = 0; rep < options.reps; ++rep) {
    for (int c : levels) {
      int tasks = std::max(1000, waves * c);
      Log("inflight rep " + std::to_string(rep + 1) + ": concurrency " + std::to_string(c) +
          ", " + std::to_string(tasks) + " tasks");
      runs[std::to_string(c)].push_back(
          DrainWithOneWorker(stack, tasks,
                             {{"SYNAPS_WORKER_CONCURRENCY", std::to_string(c)},
                              {"SYNAPS_DEFAULT_ROUTE", route.dump()}},
                             "c" + std::to_string(c)));
    }
    // Two references: the worker's default concurrency (the drain benchmark's setting) and the
    // 10,000 level's own; the report compares against the faster of the two.
    for (int c : {worker::WorkerOptions{}.concurrency, levels.back()}) {
      Log("inflight rep " + std::to_string(rep + 1) + ": reference, zero latency, concurrency " +
          std::to_string(c) + ", " + std::to_string(reference_tasks) + " tasks");
      json sample = DrainWithOneWorker(
          stack, reference_tasks,
          {{"SYNAPS_LOCAL_LATENCY_MS", "0"}, {"SYNAPS_WORKER_CONCURRENCY", std::to_string(c)}},
          "reference" + std::to_string(c));
      sample["concurrency"] = c;
      reference.push_back(sample);
    }
  }
  out["runs"] = runs;
  out["reference"] = reference;
  return out;
}

}  // namespace synaps::bench
