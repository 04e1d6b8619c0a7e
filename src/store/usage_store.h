// Usage and cost, read from the ledger (db/migrations/0015_usage.sql, docs/observability.md
// "Usage and cost"): tasks, errors, provider calls, tokens and cost per tenant, day (UTC),
// route, model and skill. Days older than the rollup horizon come from synaps.usage_daily; the
// events past the rollup cursor are added as they are read, so a query always sees every
// finished task attempt.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.h"

namespace synaps::store {

// The dimensions a usage query may group by, in their output order.
inline constexpr const char* kUsageDimensions[] = {"tenant", "day", "route", "model", "skill"};

struct UsageQuery {
  std::string from;                   // YYYY-MM-DD (UTC), inclusive
  std::string to;                     // YYYY-MM-DD (UTC), inclusive
  std::optional<std::string> tenant;  // nullopt: every tenant
  std::vector<std::string> group_by;  // a subset of kUsageDimensions (validated by the caller)
  int max_rows = 10000;
};

// Folds usage events older than the horizon into synaps.usage_daily (synaps.roll_up_usage);
// returns the ledger ids passed. One statement; concurrent callers skip instead of waiting.
Result<int64_t> RollUpUsage(db::Connection& conn, int64_t max_ids = 500000);

// {"from", "to", "groupBy", "rows": [{<dimensions>..., "tasks", "succeeded", "errors",
// "providerCalls", "promptTokens", "completionTokens", "totalTokens", "costUsd",
// "unpricedTasks"}], "totals": {...}, "truncated": bool}. Rows are ordered by their dimensions;
// at most max_rows are returned ("truncated" says more existed; "totals" sums those returned).
// Dates that do not parse are kInvalidArgument from PostgreSQL: validate them first.
Result<nlohmann::json> QueryUsage(db::Connection& conn, const UsageQuery& q);

}  // namespace synaps::store
