// The ledger's time partitions (db/migrations/0024..0026, docs/history.md "The partitioned
// ledger"): created ahead by Synaps itself, dropped whole when every run of their day has
// expired.
#pragma once

#include <string>
#include <vector>

#include "db/connection.h"

namespace synaps::store {

// Creates the daily partitions from yesterday to `days_ahead` days from today (UTC) that do not
// exist yet; returns how many it created.
Result<int> EnsureLedgerPartitions(db::Connection& conn, int days_ahead = 7);

// The UTC days (YYYY-MM-DD) whose partition can go whole: every run created that day has
// expired or is gone. Oldest first.
Result<std::vector<std::string>> DroppableLedgerDays(db::Connection& conn);

// Drops the day's partition if no run of that day is left and usage has folded its events:
// "dropped", or why not ("absent", "runs_remain", "usage_pending", "busy" when the parent's lock
// was not had within 2 s).
Result<std::string> DropLedgerPartition(db::Connection& conn, const std::string& day);

}  // namespace synaps::store
