// The control registry's seventh kind, `concurrency` (docs/flow-control.md): how work shares the
// workers. An item is one of two things:
//   * a fair-share weight: {match?: {tenant?, fairnessKey?}, weight: 1..1000}. A weight with no
//     fairnessKey weighs a tenant against other tenants; with one, a fairness key against the
//     other keys of its tenant. Unweighted tenants and keys weigh 1.
//   * a concurrency limit: {match?: {tenant?, key?}, maxRunning: 1..10000, strategy?} over the
//     tasks that carry the same concurrencyKey (docs/flow-control.md for the strategies).
// Pure functions, like the other kinds in control/spec.h; errors are kInvalidArgument whose
// `field` is the JSON path from "spec". PostgreSQL reads the stored items itself (the claim
// enforces them); this is the gate before they are written.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace synaps::control {

// fairnessKey and concurrencyKey values: [A-Za-z0-9_.:/@-]{1,128}.
bool IsValidFlowKey(std::string_view key);
// Match values for keys: a key, or a prefix of one followed by '*' ("user:*"), or "*".
// PostgreSQL matches them (synaps.flow_like turns them into LIKE patterns).
bool IsValidFlowPattern(std::string_view pattern);

enum class ConcurrencyStrategy {
  kQueue,             // wait for a slot; waiting keys take turns (the default)
  kCancelInProgress,  // a newcomer cancels the oldest running run of its key and takes its slot
  kCancelNewest,      // a newcomer over the limit is refused at submit (409)
};
std::string_view ConcurrencyStrategyName(ConcurrencyStrategy s);  // "queue", ...

struct Concurrency {
  std::string name;
  int version = 0;
  std::optional<std::string> tenant;        // match.tenant
  std::optional<std::string> key;           // match.key (limits only)
  std::optional<std::string> fairness_key;  // match.fairnessKey (weights only)
  std::optional<int> weight;                // set: a weight item
  std::optional<int> max_running;           // set: a limit item
  ConcurrencyStrategy strategy = ConcurrencyStrategy::kQueue;
};

Result<Concurrency> ParseConcurrency(std::string_view name, const nlohmann::json& spec);

}  // namespace synaps::control
