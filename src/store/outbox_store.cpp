#include "store/outbox_store.h"

namespace synaps::store {

Result<std::vector<OutboxMessage>> LockUnpublished(db::Connection& conn, int limit) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("outbox_lock_unpublished",
                                     "SELECT id, subject, payload::text, msg_id FROM synaps.outbox"
                                     " WHERE published_at IS NULL ORDER BY id LIMIT $1::integer"
                                     " FOR UPDATE SKIP LOCKED",
                                     {std::to_string(limit)}));
  std::vector<OutboxMessage> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back({r.GetInt(i, 0), r.GetString(i, 1), r.GetString(i, 2), r.GetString(i, 3)});
  }
  return out;
}

Status DeletePublished(db::Connection& conn, const std::vector<int64_t>& ids) {
  if (ids.empty()) return Ok();
  std::string arr = "{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) arr += ',';
    arr += std::to_string(ids[i]);
  }
  arr += '}';
  RETURN_IF_ERROR(conn.ExecPrepared(
      "outbox_delete_published", "DELETE FROM synaps.outbox WHERE id = ANY($1::bigint[])", {arr}));
  return Ok();
}

Result<int64_t> DeleteMarkedPublished(db::Connection& conn, int retention_seconds) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("outbox_delete_marked_published",
                                     "WITH d AS (DELETE FROM synaps.outbox WHERE published_at <"
                                     " now() - make_interval(secs => $1::integer) RETURNING 1)"
                                     " SELECT count(*) FROM d",
                                     {std::to_string(retention_seconds)}));
  return r.GetInt(0, 0);
}

Result<double> OutboxLagSeconds(db::Connection& conn) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("outbox_lag",
                                     "SELECT coalesce(extract(epoch FROM now() - min(created_at)),"
                                     " 0)::float8 FROM synaps.outbox WHERE published_at IS NULL",
                                     {}));
  return std::stod(r.GetString(0, 0));
}

}  // namespace synaps::store
