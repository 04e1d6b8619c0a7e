#include "store/ledger_partitions.h"

namespace synaps::store {

Result<int> EnsureLedgerPartitions(db::Connection& conn, int days_ahead) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("ledger_ensure_partitions",
                                     "SELECT synaps.ensure_ledger_partitions($1::integer)",
                                     {std::to_string(days_ahead)}));
  return static_cast<int>(r.GetInt(0, 0));
}

Result<std::vector<std::string>> DroppableLedgerDays(db::Connection& conn) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("ledger_droppable_days",
                                     "SELECT d::text FROM synaps.droppable_ledger_days() d", {}));
  std::vector<std::string> days;
  for (int i = 0; i < r.rows(); ++i) days.push_back(r.GetString(i, 0));
  return days;
}

Result<std::string> DropLedgerPartition(db::Connection& conn, const std::string& day) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("ledger_drop_partition",
                                     "SELECT synaps.drop_ledger_partition($1::date)", {day}));
  return r.GetString(0, 0);
}

}  // namespace synaps::store
