// 6. Span export off the hot path (issue #17): one `synaps worker` drains N traced tasks (each
//    task's spec carries the `trace` a submit stores) with OTLP export off, then on — sent to a
//    fake OTLP/HTTP collector in this process that answers 200 and counts the spans — in
//    alternating repetitions (ABBA order) on clones of the same queued database.
#include <atomic>
#include <string>

#include "benchmarks.h"
#include "support/fake_openai.h"

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
  return out;
}

}  // namespace synaps::bench
