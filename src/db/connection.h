// A thin RAII wrapper over libpq. One Connection owns one PGconn; one PgResult owns one
// PGresult. Neither is thread-safe: a connection is used by one thread at a time (see Pool).
// Parameters and results use libpq's text format; SQL errors come back as Error values with
// SQLSTATE translated in one place (TranslateSqlState).
//
// Deadlines (docs/reliability.md, "PostgreSQL deadlines"): every wait is bounded. Connecting
// (TCP, TLS, authentication and the session settings) by ConnectOptions::connect_timeout; the
// socket carries TCP keepalives and tcp_user_timeout; the server ends a statement after
// statement_timeout and a transaction left idle after the client deadline; and the client itself
// polls libpq's socket and gives up after statement_timeout + deadline_grace. A call that gives
// up cancels its statement (best effort, off the calling thread), closes the connection and
// returns kDeadlineExceeded; the connection then reports !healthy() and its owner opens a new
// one. A frozen peer therefore costs one call one deadline, never a thread for ever.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace synaps::db {

// A statement parameter: a text value or SQL NULL.
using Param = std::optional<std::string>;
using Params = std::vector<Param>;

// Maps a SQLSTATE to our error codes: 23505 → kAlreadyExists, 40001/40P01 → kUnavailable
// (retryable conflict), class 08 and 57P0x → kUnavailable, 22xxx/23xxx → kInvalidArgument,
// 57014 → kDeadlineExceeded, anything else → kInternal.
ErrorCode TranslateSqlState(std::string_view sqlstate);

class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : r_(r) {}
  PgResult(PgResult&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  PgResult& operator=(PgResult&& o) noexcept {
    if (this != &o) {
      if (r_) PQclear(r_);
      r_ = o.r_;
      o.r_ = nullptr;
    }
    return *this;
  }
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ~PgResult() {
    if (r_) PQclear(r_);
  }

  int rows() const { return r_ ? PQntuples(r_) : 0; }
  bool IsNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::string_view Get(int row, int col) const {
    return {PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col))};
  }
  std::string GetString(int row, int col) const { return std::string(Get(row, col)); }
  std::optional<std::string> GetOptional(int row, int col) const {
    if (IsNull(row, col)) return std::nullopt;
    return GetString(row, col);
  }
  int64_t GetInt(int row, int col) const;
  bool GetBool(int row, int col) const { return Get(row, col) == "t"; }
  PGresult* get() const { return r_; }

 private:
  PGresult* r_ = nullptr;
};

// How one connection bounds its waits. Defaults suit a short interactive call; each role (API,
// worker lanes, relay, migrate, CLI) reads its own from the environment (db/deadlines.h).
// Values given in the connection URL (keepalives_idle=..., tcp_user_timeout=...) override these.
struct ConnectOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::seconds keepalive_idle{30};      // silence before the first probe
  std::chrono::seconds keepalive_interval{10};  // between probes
  int keepalive_count = 3;                      // unanswered probes before the kernel gives up
  std::chrono::milliseconds tcp_user_timeout{30000};  // unacknowledged data before giving up
  std::chrono::milliseconds statement_timeout{30000};  // server side; also bounds idle transactions
  std::chrono::milliseconds lock_timeout{0};           // server side; 0 leaves the server's
  std::chrono::milliseconds deadline_grace{2000};      // client waits statement_timeout + this

  // How long one call waits for its answer before giving up on the connection.
  std::chrono::milliseconds call_deadline() const { return statement_timeout + deadline_grace; }
};

class Connection {
 public:
  // Connects with `conninfo` (a libpq URL or key=value string) within options.connect_timeout,
  // and applies the session's server-side timeouts.
  static Result<Connection> Connect(const std::string& conninfo, const ConnectOptions& options);
  // The same with default options, a 10-minute statement timeout and the given connect timeout
  // (tools, tests and benchmarks).
  static Result<Connection> Connect(const std::string& conninfo,
                                    std::chrono::seconds connect_timeout = std::chrono::seconds(5));

  Connection() = default;
  Connection(Connection&& o) noexcept;
  Connection& operator=(Connection&& o) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Runs `sql` with parameters ($1..$n). Multi-statement text is allowed only without params.
  // Waits at most options().call_deadline(): then kDeadlineExceeded, and the connection is closed.
  Result<PgResult> Exec(std::string_view sql, const Params& params = {});
  // Like Exec, but prepares `sql` under `name` on first use on this connection.
  Result<PgResult> ExecPrepared(const std::string& name, std::string_view sql,
                                const Params& params);

  // True while the socket is believed healthy. After kUnavailable or kDeadlineExceeded errors,
  // the owner discards or resets the connection.
  bool healthy() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }
  // Reconnects in place with the same conninfo and options; prepared statements are forgotten.
  Status Reset();
  PGconn* raw() const { return conn_; }
  const ConnectOptions& options() const { return options_; }

 private:
  using Clock = std::chrono::steady_clock;
  Connection(PGconn* c, std::string conninfo, const ConnectOptions& options)
      : conn_(c), conninfo_(std::move(conninfo)), options_(options) {}
  // Sends what libpq buffered and collects every result of the query sent, until `deadline`.
  Result<PgResult> Await(Clock::time_point deadline);
  Result<PgResult> Check(PGresult* r);
  // Gives up on the connection: cancels its statement (best effort), closes it.
  Error Abandon(std::chrono::milliseconds waited);
  Error Broken(const char* doing);

  PGconn* conn_ = nullptr;
  std::string conninfo_;
  ConnectOptions options_;
  std::set<std::string> prepared_;
};

// Runs `body` inside BEGIN/COMMIT; rolls back when it returns an error.
template <class F>
auto InTransaction(Connection& conn, F&& body) -> decltype(body()) {
  auto begin = conn.Exec("BEGIN");
  if (!begin) return std::unexpected(begin.error());
  auto result = body();
  if (!result) {
    // The body's error is the one to report; a failed ROLLBACK leaves the connection in a
    // failed transaction, which the owner (pool, lane) drops.
    (void)conn.Exec("ROLLBACK");
    return result;
  }
  auto commit = conn.Exec("COMMIT");
  if (!commit) return std::unexpected(commit.error());
  return result;
}

// Renders a std::vector<std::string> as a PostgreSQL array literal ('{"a","b"}').
std::string ArrayLiteral(const std::vector<std::string>& items);

}  // namespace synaps::db
