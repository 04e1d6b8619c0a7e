// The npm peers, run by Node scripts in bench/node/ against a fresh database on the benchmark's
// PostgreSQL: graphile-worker 0.16 and pg-boss 10 (versions pinned in tools/node).
#pragma once

#include "stack.h"

namespace synaps::bench {

// Drains `jobs` no-op jobs; returns {seconds, rate, ...} (first job started to last completed).
json GraphileDrain(Stack& stack, const BenchOptions& options, int jobs, int concurrency);
json PgBossDrain(Stack& stack, const BenchOptions& options, int jobs, int concurrency);

// `count` sequential addJob calls, each waiting for its job to finish; returns the add → lock
// latencies in milliseconds (locked_at − created_at, both PostgreSQL's clock).
std::vector<double> GraphileWakeup(Stack& stack, const BenchOptions& options, int count);

// The peer's installed version, from tools/node.
std::string PeerVersion(const BenchOptions& options, const std::string& package);

}  // namespace synaps::bench
