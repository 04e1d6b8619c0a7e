// The five benchmarks of docs/benchmarks.md. Each runs its own repetitions on the shared stack
// and returns every sample as JSON (the report is drawn from that JSON alone).
#pragma once

#include "stack.h"

namespace synaps::bench {

json RunDrain(Stack& stack, const BenchOptions& options);
json RunWakeup(Stack& stack, const BenchOptions& options);
json RunIntake(Stack& stack, const BenchOptions& options);
json RunInflight(Stack& stack, const BenchOptions& options);
json RunHistory(Stack& stack, const BenchOptions& options);

// Writes docs/benchmarks.md and its SVG plots from the results JSON.
void WriteReport(const json& results, const BenchOptions& options);

}  // namespace synaps::bench
