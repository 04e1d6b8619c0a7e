#include "db/connection.h"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace synaps::db {

ErrorCode TranslateSqlState(std::string_view s) {
  if (s == "23505") return ErrorCode::kAlreadyExists;
  if (s == "40001" || s == "40P01" || s == "55P03") return ErrorCode::kUnavailable;
  if (s == "57014") return ErrorCode::kDeadlineExceeded;
  if (s.starts_with("08") || s.starts_with("57P") || s == "53300") return ErrorCode::kUnavailable;
  if (s.starts_with("22") || s.starts_with("23")) return ErrorCode::kInvalidArgument;
  if (s == "42501") return ErrorCode::kPermissionDenied;
  return ErrorCode::kInternal;
}

int64_t PgResult::GetInt(int row, int col) const {
  auto v = Get(row, col);
  int64_t n = 0;
  std::from_chars(v.data(), v.data() + v.size(), n);
  return n;
}

namespace {

using Clock = std::chrono::steady_clock;

enum class Wait { kReady, kTimeout, kFailed };

// Waits until `fd` has one of `events` or `deadline` passes.
Wait WaitSocket(int fd, short events, Clock::time_point deadline) {
  if (fd < 0) return Wait::kFailed;
  while (true) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Wait::kTimeout;
    pollfd p{.fd = fd, .events = events, .revents = 0};
    int n = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 60000)));
    if (n > 0) return Wait::kReady;  // readable, writable, or an error libpq will report
    if (n < 0 && errno != EINTR) return Wait::kFailed;
  }
}

std::string Trimmed(std::string msg) {
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

// Sends cancel requests for abandoned statements on one thread of its own, so that a caller
// whose deadline passed never waits for PQcancel (it opens a new connection to the server and,
// before libpq 17, has no timeout of its own). At most kMaxQueued wait; beyond that a request is
// dropped: the server's statement_timeout ends the statement anyway, the cancel only ends it
// sooner. The canceller lives as long as the process (it is never destroyed, so exit never
// waits for a cancel stuck on an unreachable server).
class Canceller {
 public:
  static Canceller& Get() {
    static auto* instance = new Canceller();  // intentionally never destroyed, see above
    return *instance;
  }

  void Post(PGcancel* cancel) {
    {
      std::lock_guard lock(mu_);
      if (queue_.size() >= kMaxQueued) {
        PQfreeCancel(cancel);
        return;
      }
      queue_.push_back(cancel);
    }
    cv_.notify_one();
  }

 private:
  static constexpr size_t kMaxQueued = 64;

  Canceller() : thread_([this] { Loop(); }) {}

  void Loop() {
    while (true) {
      PGcancel* cancel = nullptr;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return !queue_.empty(); });
        cancel = queue_.front();
        queue_.pop_front();
      }
      char err[256];
      if (PQcancel(cancel, err, sizeof err) == 0) {
        spdlog::debug("PostgreSQL cancel request failed: {}", err);
      }
      PQfreeCancel(cancel);
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<PGcancel*> queue_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace

Result<Connection> Connection::Connect(const std::string& conninfo,
                                       std::chrono::seconds connect_timeout) {
  // Tools, tests and benchmarks: bulk loads may run for minutes, never for ever.
  ConnectOptions options;
  options.connect_timeout = connect_timeout;
  options.statement_timeout = std::chrono::minutes(10);
  return Connect(conninfo, options);
}

Result<Connection> Connection::Connect(const std::string& conninfo,
                                       const ConnectOptions& options) {
  const auto deadline = Clock::now() + options.connect_timeout;
  const auto ms = [](auto d) { return std::to_string(std::chrono::milliseconds(d).count()); };
  // libpq's own connect_timeout (whole seconds, at least 2) bounds each host it tries; the poll
  // below bounds the whole of it. `dbname` comes last so that what the URL sets wins.
  std::string libpq_timeout = std::to_string(std::max<int64_t>(
      2, std::chrono::ceil<std::chrono::seconds>(options.connect_timeout).count()));
  std::string idle = std::to_string(options.keepalive_idle.count());
  std::string interval = std::to_string(options.keepalive_interval.count());
  std::string count = std::to_string(options.keepalive_count);
  std::string user_timeout = ms(options.tcp_user_timeout);
  const char* keys[] = {"connect_timeout", "application_name",    "keepalives",
                        "keepalives_idle", "keepalives_interval", "keepalives_count",
                        "tcp_user_timeout", "dbname", nullptr};
  const char* values[] = {libpq_timeout.c_str(), "synaps", "1", idle.c_str(), interval.c_str(),
                          count.c_str(), user_timeout.c_str(), conninfo.c_str(), nullptr};
  PGconn* c = PQconnectStartParams(keys, values, /*expand_dbname=*/1);
  if (c == nullptr) return Fail(ErrorCode::kUnavailable, "out of memory creating a connection");
  auto failed = [&](ErrorCode code, const std::string& why) {
    PQfinish(c);
    return Fail(code, "cannot connect to PostgreSQL: " + why);
  };
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  while (PQstatus(c) != CONNECTION_BAD && state != PGRES_POLLING_OK) {
    if (state == PGRES_POLLING_FAILED) break;
    short events = state == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    Wait w = WaitSocket(PQsocket(c), events, deadline);
    if (w == Wait::kTimeout) {
      return failed(ErrorCode::kUnavailable,
                    "no answer within " + ms(options.connect_timeout) + " ms");
    }
    if (w == Wait::kFailed) break;
    state = PQconnectPoll(c);
  }
  if (PQstatus(c) != CONNECTION_OK) return failed(ErrorCode::kUnavailable, Trimmed(PQerrorMessage(c)));
  // Non-blocking: a send never waits for a full socket buffer; Await polls with the deadline.
  if (PQsetnonblocking(c, 1) != 0) return failed(ErrorCode::kInternal, "cannot make it non-blocking");
  Connection conn(c, conninfo, options);
  // A transaction left idle (its client frozen or gone) holds its row locks; the server ends it
  // once the client's own deadline has passed.
  std::string session = "SET statement_timeout = " + ms(options.statement_timeout) +
                        "; SET idle_in_transaction_session_timeout = " +
                        ms(options.call_deadline());
  if (options.lock_timeout.count() > 0) session += "; SET lock_timeout = " + ms(options.lock_timeout);
  if (PQsendQuery(c, session.c_str()) == 0) {
    return std::unexpected(conn.Broken("setting session timeouts"));
  }
  auto set = conn.Await(deadline);
  if (!set) {
    return Fail(set.error().code == ErrorCode::kDeadlineExceeded ? ErrorCode::kUnavailable
                                                                 : set.error().code,
                "cannot connect to PostgreSQL: " + set.error().message);
  }
  return conn;
}

Connection::Connection(Connection&& o) noexcept
    : conn_(o.conn_),
      conninfo_(std::move(o.conninfo_)),
      options_(o.options_),
      prepared_(std::move(o.prepared_)) {
  o.conn_ = nullptr;
}

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    if (conn_) PQfinish(conn_);
    conn_ = o.conn_;
    conninfo_ = std::move(o.conninfo_);
    options_ = o.options_;
    prepared_ = std::move(o.prepared_);
    o.conn_ = nullptr;
  }
  return *this;
}

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

Result<PgResult> Connection::Check(PGresult* raw) {
  PgResult r(raw);
  if (raw == nullptr) {
    return Fail(ErrorCode::kUnavailable,
                std::string("PostgreSQL connection lost: ") + PQerrorMessage(conn_));
  }
  auto status = PQresultStatus(raw);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
  const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY);
  std::string msg = primary ? primary : PQresultErrorMessage(raw);
  if (state == nullptr) {
    // No SQLSTATE: the connection itself failed.
    return Fail(ErrorCode::kUnavailable, "PostgreSQL connection lost: " + msg);
  }
  return Fail(TranslateSqlState(state), msg + " (SQLSTATE " + state + ")");
}

namespace {
struct ParamArrays {
  std::vector<const char*> values;
  explicit ParamArrays(const Params& params) {
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  }
};
}  // namespace

Error Connection::Broken(const char* doing) {
  std::string msg = conn_ ? Trimmed(PQerrorMessage(conn_)) : "not connected";
  return Error{ErrorCode::kUnavailable,
               std::string("PostgreSQL connection lost ") + doing + ": " + msg, {}};
}

Error Connection::Abandon(std::chrono::milliseconds waited) {
  // The statement may still run (or hold locks) on the server: ask it to stop, from the
  // canceller's thread, then drop our end. The server's own timeouts end it if the cancel
  // cannot get through.
  if (PGcancel* cancel = PQgetCancel(conn_)) Canceller::Get().Post(cancel);
  PQfinish(conn_);
  conn_ = nullptr;
  prepared_.clear();
  return Error{ErrorCode::kDeadlineExceeded,
               "PostgreSQL did not answer within " + std::to_string(waited.count()) +
                   " ms; the statement was cancelled and the connection closed",
               {}};
}

Result<PgResult> Connection::Await(Clock::time_point deadline) {
  const auto waited = options_.call_deadline();
  // Send what libpq holds; read meanwhile so that a server answering early cannot deadlock us.
  while (true) {
    int f = PQflush(conn_);
    if (f == 0) break;
    if (f < 0) return std::unexpected(Broken("sending"));
    Wait w = WaitSocket(PQsocket(conn_), POLLIN | POLLOUT, deadline);
    if (w == Wait::kTimeout) return std::unexpected(Abandon(waited));
    if (w == Wait::kFailed || PQconsumeInput(conn_) == 0) return std::unexpected(Broken("sending"));
  }
  // A multi-statement text yields a result per statement; like PQexec, keep the last one, or
  // the first error (the server stops there).
  std::unique_ptr<PGresult, decltype(&PQclear)> kept(nullptr, &PQclear);
  bool kept_error = false;
  while (true) {
    while (PQisBusy(conn_)) {
      Wait w = WaitSocket(PQsocket(conn_), POLLIN, deadline);
      if (w == Wait::kTimeout) return std::unexpected(Abandon(waited));
      if (w == Wait::kFailed || PQconsumeInput(conn_) == 0) {
        return std::unexpected(Broken("waiting for an answer"));
      }
    }
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) break;
    auto status = PQresultStatus(r);
    bool error = status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK;
    if (kept_error) {
      PQclear(r);
    } else {
      kept.reset(r);
      kept_error = error;
    }
  }
  return Check(kept.release());
}

Result<PgResult> Connection::Exec(std::string_view sql, const Params& params) {
  if (!conn_) return Fail(ErrorCode::kUnavailable, "not connected to PostgreSQL");
  auto deadline = Clock::now() + options_.call_deadline();
  std::string text(sql);
  int sent = 0;
  if (params.empty()) {
    sent = PQsendQuery(conn_, text.c_str());
  } else {
    ParamArrays a(params);
    sent = PQsendQueryParams(conn_, text.c_str(), static_cast<int>(params.size()), nullptr,
                             a.values.data(), nullptr, nullptr, 0);
  }
  if (sent == 0) return std::unexpected(Broken("sending a statement"));
  return Await(deadline);
}

Result<PgResult> Connection::ExecPrepared(const std::string& name, std::string_view sql,
                                          const Params& params) {
  if (!conn_) return Fail(ErrorCode::kUnavailable, "not connected to PostgreSQL");
  if (!prepared_.contains(name)) {
    std::string text(sql);
    auto deadline = Clock::now() + options_.call_deadline();
    if (PQsendPrepare(conn_, name.c_str(), text.c_str(), 0, nullptr) == 0) {
      return std::unexpected(Broken("preparing a statement"));
    }
    auto r = Await(deadline);
    if (!r) return std::unexpected(r.error());
    prepared_.insert(name);
  }
  auto deadline = Clock::now() + options_.call_deadline();
  ParamArrays a(params);
  if (PQsendQueryPrepared(conn_, name.c_str(), static_cast<int>(params.size()), a.values.data(),
                          nullptr, nullptr, 0) == 0) {
    return std::unexpected(Broken("sending a statement"));
  }
  return Await(deadline);
}

Status Connection::Reset() {
  if (conninfo_.empty()) return Fail(ErrorCode::kUnavailable, "not connected");
  ASSIGN_OR_RETURN(Connection fresh, Connect(conninfo_, options_));
  *this = std::move(fresh);
  return Ok();
}

std::string ArrayLiteral(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace synaps::db
