#include "store/usage_store.h"

#include <algorithm>

namespace synaps::store {

using nlohmann::json;

namespace {

// The SQL column of a dimension; the names come from kUsageDimensions only, never from input.
std::string Column(const std::string& dimension) {
  return dimension == "tenant" ? "tenant_id" : dimension == "day" ? "day::text" : dimension;
}

constexpr const char* kMetrics[] = {"tasks",         "succeeded",    "errors",
                                    "providerCalls", "promptTokens", "completionTokens",
                                    "costUsd",       "unpricedTasks"};

json MetricsJson(const db::PgResult& r, int row, int first) {
  json m = json::object();
  for (int i = 0; i < 8; ++i) {
    std::string v = r.GetString(row, first + i);
    if (std::string(kMetrics[i]) == "costUsd") {
      m[kMetrics[i]] = v.empty() ? 0.0 : std::strtod(v.c_str(), nullptr);
    } else {
      m[kMetrics[i]] = v.empty() ? 0 : std::strtoll(v.c_str(), nullptr, 10);
    }
  }
  m["totalTokens"] = m["promptTokens"].get<int64_t>() + m["completionTokens"].get<int64_t>();
  return m;
}

}  // namespace

Result<int64_t> RollUpUsage(db::Connection& conn, int64_t max_ids) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("usage_roll_up",
                                     "SELECT synaps.roll_up_usage(interval '10 minutes', $1::bigint)",
                                     {std::to_string(max_ids)}));
  return r.GetInt(0, 0);
}

Result<json> QueryUsage(db::Connection& conn, const UsageQuery& q) {
  std::vector<std::string> dims;
  for (const char* d : kUsageDimensions) {
    if (std::find(q.group_by.begin(), q.group_by.end(), d) != q.group_by.end()) dims.push_back(d);
  }
  std::string cols;
  for (const auto& d : dims) cols += Column(d) + ", ";
  std::string group = dims.empty() ? "" : " GROUP BY " + cols.substr(0, cols.size() - 2);
  std::string order = dims.empty() ? "" : " ORDER BY " + cols.substr(0, cols.size() - 2);
  // $1 from, $2 to, $3 tenant (NULL: all), $4 row limit.
  std::string sql =
      "WITH range AS (SELECT $1::date AS f, $2::date AS t),"
      " u AS ("
      "  SELECT d.tenant_id, d.day, d.route, d.model, d.skill, d.tasks, d.succeeded, d.errors,"
      "         d.provider_calls, d.prompt_tokens, d.completion_tokens, d.cost_usd, d.unpriced"
      "    FROM synaps.usage_daily d, range"
      "   WHERE d.day BETWEEN range.f AND range.t AND ($3::text IS NULL OR d.tenant_id = $3)"
      "  UNION ALL"
      "  SELECT e.tenant_id, e.day, e.route, e.model, e.skill, 1, e.succeeded, 1 - e.succeeded,"
      "         e.provider_calls, e.prompt_tokens, e.completion_tokens, e.cost_usd, e.unpriced"
      "    FROM synaps.usage_events((SELECT last_event_id FROM synaps.usage_rollup),"
      "                             9223372036854775807) e, range"
      "   WHERE e.day BETWEEN range.f AND range.t AND ($3::text IS NULL OR e.tenant_id = $3))"
      " SELECT " +
      cols +
      "sum(tasks), sum(succeeded), sum(errors), sum(provider_calls), sum(prompt_tokens),"
      " sum(completion_tokens), sum(cost_usd), sum(unpriced)"
      " FROM u" +
      group + order + " LIMIT $4::integer";
  ASSIGN_OR_RETURN(db::PgResult r, conn.Exec(sql, {q.from, q.to, q.tenant,
                                                   std::to_string(q.max_rows + 1)}));
  json out = {{"from", q.from},
              {"to", q.to},
              {"groupBy", dims},
              {"rows", json::array()},
              {"truncated", r.rows() > q.max_rows}};
  json totals = json::object();
  for (const char* m : kMetrics) totals[m] = 0;
  totals["costUsd"] = 0.0;
  const int first_metric = static_cast<int>(dims.size());
  for (int i = 0; i < std::min(r.rows(), q.max_rows); ++i) {
    if (r.IsNull(i, first_metric)) continue;  // no rows at all: the aggregate's empty group
    json row = json::object();
    for (size_t d = 0; d < dims.size(); ++d) row[dims[d]] = r.GetString(i, static_cast<int>(d));
    json m = MetricsJson(r, i, first_metric);
    for (auto& [k, v] : m.items()) {
      row[k] = v;
      if (k == "costUsd") {
        totals[k] = totals[k].get<double>() + v.get<double>();
      } else if (k != "totalTokens") {
        totals[k] = totals[k].get<int64_t>() + v.get<int64_t>();
      }
    }
    out["rows"].push_back(std::move(row));
  }
  totals["totalTokens"] =
      totals["promptTokens"].get<int64_t>() + totals["completionTokens"].get<int64_t>();
  out["totals"] = std::move(totals);
  return out;
}

}  // namespace synaps::store
