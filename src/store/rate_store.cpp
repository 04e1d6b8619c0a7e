#include "store/rate_store.h"

namespace synaps::store {

Result<RateAdmission> AcquireRate(db::Connection& conn, const RateAsk& ask) {
  std::optional<std::string> item, epoch;
  if (ask.lease) {
    item = std::to_string(ask.lease->item_id);
    epoch = std::to_string(ask.lease->lease_epoch);
  }
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared("rate_acquire",
                        "SELECT wait_ms, parked FROM synaps.rate_acquire($1, $2::integer,"
                        " $3::integer, $4::bigint, $5::bigint, $6::bigint, $7::integer)",
                        {ask.route, std::to_string(ask.requests_per_minute),
                         std::to_string(ask.tokens_per_minute), std::to_string(ask.tokens), item,
                         epoch, std::to_string(ask.park_after_ms)}));
  if (r.rows() != 1) return Fail(ErrorCode::kInternal, "rate_acquire answered no row");
  return RateAdmission{.wait_ms = r.GetInt(0, 0), .parked = r.GetBool(0, 1)};
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
