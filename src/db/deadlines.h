// Per-role connection deadlines read from the environment (docs/reliability.md, "PostgreSQL
// deadlines"). Every process that talks to PostgreSQL opens its connections with the options of
// its role: the shared SYNAPS_DB_* network bounds plus the role's own statement timeout.
//
//   SYNAPS_DB_CONNECT_TIMEOUT_MS          5000    connect, TLS, authentication, session settings
//   SYNAPS_DB_KEEPALIVE_IDLE_SECONDS      30      TCP keepalive: silence before the first probe
//   SYNAPS_DB_KEEPALIVE_INTERVAL_SECONDS  10      TCP keepalive: between probes
//   SYNAPS_DB_KEEPALIVE_COUNT             3       TCP keepalive: unanswered probes before giving up
//   SYNAPS_DB_TCP_USER_TIMEOUT_MS         30000   unacknowledged sends before giving up (0: kernel's)
//   SYNAPS_DB_DEADLINE_GRACE_MS           2000    a call waits statement timeout + this, then
//                                                 cancels, closes and replaces its connection
//   SYNAPS_API_STATEMENT_TIMEOUT_MS       15000   API request handlers
//   SYNAPS_RELAY_STATEMENT_TIMEOUT_MS     15000   the API's outbox relay
//   SYNAPS_WORKER_STATEMENT_TIMEOUT_MS    10000   the worker's DB lanes
//   SYNAPS_MIGRATE_STATEMENT_TIMEOUT_MS   600000  `synaps migrate` and `synaps dev` migrating
//   SYNAPS_MIGRATE_LOCK_TIMEOUT_MS        120000  migrate waiting for another migrate's lock
//   SYNAPS_CLI_STATEMENT_TIMEOUT_MS       300000  other CLI commands (gc)
#pragma once

#include <chrono>

#include "db/connection.h"

namespace synaps::db {

enum class Role { kApi, kRelay, kWorker, kMigrate, kCli };

// The options for `role`; throws ConfigError naming the variable when a value is malformed or
// out of range.
ConnectOptions ConnectOptionsFromEnv(Role role);

// SYNAPS_MIGRATE_LOCK_TIMEOUT_MS: how long migrate waits for the migration lock.
std::chrono::milliseconds MigrateLockTimeoutFromEnv();

}  // namespace synaps::db
