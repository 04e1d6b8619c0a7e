#include "db/connection.h"

#include <charconv>

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

Result<Connection> Connection::Connect(const std::string& conninfo,
                                       std::chrono::seconds connect_timeout) {
  const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
  std::string timeout = std::to_string(connect_timeout.count());
  const char* values[] = {conninfo.c_str(), timeout.c_str(), "synaps", nullptr};
  PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c == nullptr) return Fail(ErrorCode::kUnavailable, "out of memory creating a connection");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    PQfinish(c);
    return Fail(ErrorCode::kUnavailable, "cannot connect to PostgreSQL: " + msg);
  }
  return Connection(c);
}

Connection::Connection(Connection&& o) noexcept
    : conn_(o.conn_), prepared_(std::move(o.prepared_)) {
  o.conn_ = nullptr;
}

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    if (conn_) PQfinish(conn_);
    conn_ = o.conn_;
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

Result<PgResult> Connection::Exec(std::string_view sql, const Params& params) {
  if (!conn_) return Fail(ErrorCode::kUnavailable, "not connected to PostgreSQL");
  std::string text(sql);
  if (params.empty()) return Check(PQexec(conn_, text.c_str()));
  ParamArrays a(params);
  return Check(PQexecParams(conn_, text.c_str(), static_cast<int>(params.size()), nullptr,
                            a.values.data(), nullptr, nullptr, 0));
}

Result<PgResult> Connection::ExecPrepared(const std::string& name, std::string_view sql,
                                          const Params& params) {
  if (!conn_) return Fail(ErrorCode::kUnavailable, "not connected to PostgreSQL");
  if (!prepared_.contains(name)) {
    std::string text(sql);
    auto r = Check(PQprepare(conn_, name.c_str(), text.c_str(), 0, nullptr));
    if (!r) return std::unexpected(r.error());
    prepared_.insert(name);
  }
  ParamArrays a(params);
  return Check(PQexecPrepared(conn_, name.c_str(), static_cast<int>(params.size()),
                              a.values.data(), nullptr, nullptr, 0));
}

Status Connection::Reset() {
  prepared_.clear();
  if (!conn_) return Fail(ErrorCode::kUnavailable, "not connected");
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) {
    return Fail(ErrorCode::kUnavailable,
                std::string("cannot reconnect to PostgreSQL: ") + PQerrorMessage(conn_));
  }
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
