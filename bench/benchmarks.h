// The benchmarks of docs/benchmarks.md. Each runs its own repetitions on the shared stack
// and returns every sample as JSON (the report is drawn from that JSON alone).
#pragma once

#include <map>
#include <string>

#include "stack.h"

namespace synaps::bench {

json RunDrain(Stack& stack, const BenchOptions& options);
json RunWakeup(Stack& stack, const BenchOptions& options);
json RunIntake(Stack& stack, const BenchOptions& options);
json RunInflight(Stack& stack, const BenchOptions& options);
json RunHistory(Stack& stack, const BenchOptions& options);
json RunExport(Stack& stack, const BenchOptions& options);
json RunFairness(Stack& stack, const BenchOptions& options);
json RunExpiry(Stack& stack, const BenchOptions& options);

// `n` finished one-task runs written directly, created from `first` (a timestamptz) every `step`
// (an interval), with the rows a real run leaves (history_bench.cpp); with `partitions`, the
// ledger partitions of the days they cover are made first (else their events go to the default).
void GenerateHistory(db::Connection& conn, int n, const std::string& first, const std::string& step,
                     bool partitions = true);

// One drain of `tasks` queued prompt tasks (`local` provider, zero latency) by `workers`
// `synaps worker` processes; first claim to last run finished, on the database's clock.
struct DrainSample {
  double seconds = 0;
  double worker_cpu = 0;  // user + system seconds of all worker processes
  json rows;              // rows per task, when asked for
  json cost;              // WAL bytes, commits and statements per task (bench/cost.h)
};
struct DrainVariant {
  std::map<std::string, std::string> env;  // added to the workers' environment
  std::string prepare_sql;                 // run on the queued database before the drain
};
DrainSample DrainSynaps(Stack& stack, int workers, int tasks, int concurrency, bool count_rows,
                        const DrainVariant& variant);

// Writes docs/benchmarks.md and its SVG plots from the results JSON.
void WriteReport(const json& results, const BenchOptions& options);

}  // namespace synaps::bench
