// Tokens and cost of the tasks one worker process completed, per (tenant, model), for its
// Prometheus counters (synaps_model_tokens_total, synaps_model_cost_usd_total). The label set is
// bounded: after kMaxSeries distinct pairs, further pairs count under ("other", "other"), so
// tenants or models named by input cannot grow the worker's memory or the scrape. The exact
// numbers per tenant, model, route, skill and day are in GET /v1/usage. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace synaps::worker {

struct UsageTotals {
  uint64_t tasks = 0;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  double cost_usd = 0;  // of the tasks whose route names pricing
};

class UsageTally {
 public:
  static constexpr size_t kMaxSeries = 200;
  using Key = std::pair<std::string, std::string>;  // tenant, model

  // Adds a completed task's output ({"model", "usage": {"promptTokens", "completionTokens"},
  // "costUsd"?}); fields that are missing or not numbers count as zero.
  void Add(const std::string& tenant, const nlohmann::json& output);
  std::map<Key, UsageTotals> Snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<Key, UsageTotals> totals_;  // guarded by mu_
};

}  // namespace synaps::worker
