// Retention (db/migrations/0023_retention.sql, docs/history.md): the period per tenant and the
// default, the keep flag on runs, and expiry's two statements (which runs have expired, delete a
// batch of them). Changes of retention and keep are audited (synaps.audit_log).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.h"

namespace synaps::store {

// The tenant id of the default that tenants without their own setting follow.
inline constexpr const char* kDefaultRetentionTenant = "*";

// {tenant, retentionDays (null: never), archive, source: "tenant" | "default" | "none",
//  updatedAt, updatedBy} for a tenant, or for "*" (the default itself).
Result<nlohmann::json> GetRetention(db::Connection& conn, const std::string& tenant);

struct RetentionChange {
  std::string tenant;                 // a tenant id, or "*" for the default
  std::optional<int> retention_days;  // nullopt: never expire; else 1..36500
  bool archive = false;
  bool clear = false;  // forget the tenant's own setting: follow the default
  std::string actor;
  std::string reason;
};

// Sets (or clears) and writes an audit row with the values before and after; returns what now
// applies, as GetRetention.
Result<nlohmann::json> SetRetention(db::Connection& conn, const RetentionChange& change);

// Marks a run to keep or releases it (audit row and a run.keep ledger event). `tenant` nullopt:
// any tenant's run (installation scope). kNotFound for an unknown or other tenant's run.
Status SetRunKeep(db::Connection& conn, const std::optional<std::string>& tenant,
                  const std::string& run_id, bool keep, const std::string& actor);

// A tenant whose runs expire.
struct TenantRetention {
  std::string tenant;
  int retention_days = 0;
  bool archive = false;
};
Result<std::vector<TenantRetention>> RetentionPlan(db::Connection& conn);

struct ExpiredRun {
  std::string run_id;
  std::string day;  // the UTC day it finished, YYYY-MM-DD
};
// Up to `limit` expired runs of the tenant, oldest first (synaps.expired_runs).
Result<std::vector<ExpiredRun>> ExpiredRuns(db::Connection& conn, const TenantRetention& tenant,
                                            int limit);
// How many runs of the tenant are expired now (counted in PostgreSQL: a dry run's number).
Result<int64_t> CountExpiredRuns(db::Connection& conn, const TenantRetention& tenant);

struct ExpiryCounts {
  bool busy = false;  // another process is expiring: nothing was done
  int64_t runs = 0, tasks = 0, events = 0, artifacts = 0, versions = 0, commands = 0;
  ExpiryCounts& operator+=(const ExpiryCounts& o);
  nlohmann::json ToJson() const;
};
// Deletes those of `run_ids` that are still expired, with everything that belongs to them, in
// one transaction (synaps.expire_runs). The ledger events of runs created on one of
// `partition_days` (YYYY-MM-DD, UTC) stay: that day's partition is dropped whole afterwards.
// `last_seqs` (parallel to `run_ids`, for runs that were archived): a run is deleted only while
// its runs.last_seq equals its entry; one that got a ledger event since its archive stays.
Result<ExpiryCounts> ExpireRuns(db::Connection& conn, const TenantRetention& tenant,
                                const std::vector<std::string>& run_ids,
                                const std::vector<std::string>& partition_days = {},
                                const std::optional<std::vector<int64_t>>& last_seqs = {});

}  // namespace synaps::store
