// The runs list: GET /v1/runs (the console's runs page) and the bulk actions by filter.
//
// Newest first, keyset-paged, filtered by thread, status, kind, time range, tag, schedule,
// metadata and text. A text search finds its page in time that follows the number of runs it
// reads, not a planner's estimate: it reads a window of the newest runs one by one (common words
// fill a page there), and asks the trigram index for the runs older than the window (rare words:
// the index lists exactly their matches). run_list.cpp says how; docs/console.md gives numbers.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.h"

namespace synaps::store {

struct RunFilter {
  std::optional<std::string> thread_id;
  std::optional<std::string> status;
  std::optional<std::string> kind;  // the command's kind: prompt, agent, ...
  std::optional<std::string> text;  // substring of the command's payload (any case)
  // metadata[key] equals the value: a string equal to it, or a number, boolean or null written
  // the same way (`attempt=3` matches {"attempt": 3} and {"attempt": "3"}).
  std::optional<std::string> metadata_key;
  std::optional<std::string> metadata_value;
  std::optional<std::string> created_after;   // RFC 3339, inclusive
  std::optional<std::string> created_before;  // RFC 3339, exclusive
  std::optional<std::string> tag;             // one of the command's tags
  std::optional<std::string> schedule;        // only runs started by this schedule
  std::optional<std::string> cursor;          // opaque, from a previous page's nextCursor
  int limit = 50;
};

// Runs of the tenant (of every tenant when `tenant_id` is empty: the installation scope), newest
// first: {items: [run summaries], nextCursor?}. A summary also has
// `kind` and `title` (the first 120 characters of the input text). kInvalidArgument for a
// malformed cursor or time.
Result<nlohmann::json> ListRuns(db::Connection& conn, const std::string& tenant_id,
                                const RunFilter& filter);

// Ids of the tenant's unfinished runs (queued, running, awaiting_approval) that match `filter`
// (its cursor and limit ignored), at most `limit`, newest first.
Result<std::vector<std::string>> UnfinishedRunIds(db::Connection& conn,
                                                  const std::string& tenant_id,
                                                  const RunFilter& filter, int limit);

}  // namespace synaps::store
