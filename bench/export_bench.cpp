// 6. Span export off the hot path (issue #17): one `synaps worker` drains N traced tasks (each
//    task's spec carries the `trace` a submit stores) with OTLP export off, then on — sent to a
//    fake OTLP/HTTP collector in this process that answers 200 and counts the spans — in
//    alternating repetitions (ABBA order) on clones of the same queued database. Then the CPU
//    a span costs, measured in this process alone: the drain's rates vary more from run to run
//    on a shared machine than export changes them.
#include <time.h>

#include <atomic>
#include <memory>
#include <string>

#include "benchmarks.h"
#include "support/fake_openai.h"
#include "worker/task_trace.h"

namespace synaps::bench {

namespace {

// Every task gets a sampled trace of its own, as if each had been submitted by a traced client.
constexpr const char* kTraceEveryTask = R"sql(
UPDATE synaps.tasks
   SET spec = spec || jsonb_build_object('trace', jsonb_build_object('traceparent',
         '00-' || md5(id::text) || '-' || substr(md5(id::text || 'span'), 1, 16) || '-01')))sql";

size_t CountSpans(const std::string& body) {
  size_t n = 0;
  for (size_t at = body.find("\"spanId\""); at != std::string::npos;
       at = body.find("\"spanId\"", at + 1)) {
    ++n;
  }
  return n;
}

double CpuNow(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The worker's spans of `tasks` tasks (queue wait, claim, upload, completion: worker/task_trace.h)
// emitted by this thread into an exporter sending to `port`. Answers the CPU per span in
// microseconds: `emit` on the emitting thread (what a task's own work waits for), `process` in
// the whole process (the exporter's thread encoding and sending, and the fake collector
// receiving: an upper bound on what export adds).
json MeasureSpanCpu(int port, int tasks) {
  otel::ExporterOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(port) + "/v1/traces";
  o.resource = {{"service.name", "synaps-bench"}};
  o.max_queue = static_cast<size_t>(tasks) * 4;  // the cost of every span, none dropped
  auto exporter = std::make_unique<otel::Exporter>(o);
  store::ClaimedItem item;
  item.task_id = "01890a5d-ac96-774b-bcce-b302099a8057";  // UUIDv7: a queue-wait span too
  item.run_id = "01890a5d-ac96-774b-bcce-b302099a8058";
  item.attempt = 1;
  item.spec = {
      {"trace", {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}};
  const double process0 = CpuNow(CLOCK_PROCESS_CPUTIME_ID);
  const double thread0 = CpuNow(CLOCK_THREAD_CPUTIME_ID);
  for (int i = 0; i < tasks; ++i) {
    worker::TaskSpans spans(exporter.get(), item);
    int64_t t = otel::NowUnixNano();
    spans.Claimed(t, t + 1000, 16);
    spans.Uploaded(t + 2000, t + 3000, 12, Ok());
    spans.Completed(t + 4000, t + 5000, 16, "completed", Ok());
  }
  const double emit = CpuNow(CLOCK_THREAD_CPUTIME_ID) - thread0;
  exporter.reset();  // sends what is queued, then stops
  const double process = CpuNow(CLOCK_PROCESS_CPUTIME_ID) - process0;
  const double n = 4.0 * tasks;
  return {{"spans", n}, {"emit_us", emit / n * 1e6}, {"process_us", process / n * 1e6}};
}

}  // namespace

json RunExport(Stack& stack, const BenchOptions& options) {
  const int tasks = options.quick ? 5000 : 20000;
  const int concurrency = 16;
  std::atomic<uint64_t> received{0};
  testing::FakeOpenAi collector([&](const testing::FakeRequest& r, int) {
    received += CountSpans(r.body);
    testing::FakeReply reply;
    reply.body = "{}";
    return reply;
  });
  DrainVariant off{.env = {}, .prepare_sql = kTraceEveryTask};
  DrainVariant on{.env = {{"OTEL_EXPORTER_OTLP_ENDPOINT",
                           "http://127.0.0.1:" + std::to_string(collector.port())}},
                  .prepare_sql = kTraceEveryTask};
  json out = {{"tasks", tasks}, {"concurrency", concurrency}, {"reps", options.reps}};
  json samples_off = json::array(), samples_on = json::array();
  for (int rep = 0; rep < options.reps; ++rep) {
    // ABBA order: off,on then on,off, so a drift in the machine's speed falls on both sides.
    const bool first_on = rep % 2 == 1;
    for (bool export_on : {first_on, !first_on}) {
      Log("export rep " + std::to_string(rep + 1) + ": " + (export_on ? "on" : "off"));
      uint64_t before = received.load();
      DrainSample s = DrainSynaps(stack, 1, tasks, concurrency, false, export_on ? on : off);
      json sample = {{"seconds", s.seconds}, {"rate", tasks / s.seconds},
                     {"worker_cpu", s.worker_cpu}};
      if (export_on) {
        sample["spans"] = received.load() - before;
        samples_on.push_back(sample);
      } else {
        samples_off.push_back(sample);
      }
      Log("  " + std::to_string(tasks / s.seconds) + " tasks/s" +
          (export_on ? ", " + std::to_string(received.load() - before) + " spans" : ""));
    }
  }
  out["off"] = samples_off;
  out["on"] = samples_on;
  json per_span = json::array();
  for (int rep = 0; rep < options.reps; ++rep) {
    per_span.push_back(MeasureSpanCpu(collector.port(), options.quick ? 5000 : 50000));
    Log("span CPU: " + per_span.back().dump());
  }
  out["span_cpu"] = per_span;
  return out;
}

}  // namespace synaps::bench
