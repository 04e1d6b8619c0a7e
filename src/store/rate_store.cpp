#include "store/rate_store.h"

#include <algorithm>

namespace synaps::store {

namespace {

struct Reservation {
  int64_t wait_ms = 0;
  bool reserved = false;
  std::string park_until;  // when not reserved: when the task comes back (timestamptz text)
};

Result<Reservation> Reserve(db::Connection& conn, const RateAsk& ask, bool may_park) {
  std::optional<std::string> item;
  if (ask.lease) item = std::to_string(ask.lease->item_id);
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared(
          "rate_reserve",
          "SELECT wait_ms, reserved, park_until FROM synaps.rate_reserve($1,"
          " $2::integer, $3::integer, $4::bigint, $5, $6::bigint, $7::integer,"
          " $8::boolean)",
          {ask.route, std::to_string(ask.requests_per_minute),
           std::to_string(ask.tokens_per_minute), std::to_string(ask.tokens), ask.tenant, item,
           std::to_string(ask.park_after_ms), std::string(may_park ? "true" : "false")}));
  if (r.rows() != 1) return Fail(ErrorCode::kInternal, "rate_reserve answered no row");
  return Reservation{.wait_ms = r.GetInt(0, 0),
                     .reserved = r.GetBool(0, 1),
                     .park_until = r.IsNull(0, 2) ? std::string() : r.GetString(0, 2)};
}

}  // namespace

Result<RateAdmission> AcquireRate(db::Connection& conn, const RateAsk& ask) {
  ASSIGN_OR_RETURN(Reservation first, Reserve(conn, ask, ask.lease.has_value()));
  if (first.reserved) return RateAdmission{.wait_ms = first.wait_ms, .parked = false};
  ASSIGN_OR_RETURN(
      db::PgResult parked,
      conn.ExecPrepared("rate_park",
                        "SELECT synaps.rate_park($1::bigint, $2::bigint, $3, $4::timestamptz,"
                        " $5::bigint),"
                        " greatest(0, ceil(extract(epoch FROM $4::timestamptz - now()) * 1000))"
                        "::bigint",
                        {std::to_string(ask.lease->item_id), std::to_string(ask.lease->lease_epoch),
                         ask.route, first.park_until, std::to_string(first.wait_ms)}));
  if (parked.rows() == 1 && parked.GetBool(0, 0)) {
    return RateAdmission{.wait_ms = std::max<int64_t>(parked.GetInt(0, 1), first.wait_ms),
                         .parked = true};
  }
  ASSIGN_OR_RETURN(Reservation held, Reserve(conn, ask, /*may_park=*/false));
  return RateAdmission{.wait_ms = held.wait_ms, .parked = false};
}

Status BlockRate(db::Connection& conn, const std::string& route, int64_t wait_ms) {
  RETURN_IF_ERROR(conn.ExecPrepared("rate_block", "SELECT synaps.rate_block($1, $2::bigint)",
                                    {route, std::to_string(wait_ms)}));
  return Ok();
}

Status SettleRate(db::Connection& conn, const std::string& route, int64_t tokens_per_minute,
                  int64_t delta_tokens) {
  RETURN_IF_ERROR(
      conn.ExecPrepared("rate_settle", "SELECT synaps.rate_settle($1, $2::integer, $3::bigint)",
                        {route, std::to_string(tokens_per_minute), std::to_string(delta_tokens)}));
  return Ok();
}

}  // namespace synaps::store
