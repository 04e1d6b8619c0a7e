#include "store/auth_store.h"

namespace synaps::store {

Result<std::optional<ApiKey>> FindApiKey(db::Connection& conn, const std::string& token_sha256) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("find_api_key",
                                     "SELECT id, tenant_id, role FROM synaps.api_keys"
                                     " WHERE hash = $1 AND revoked_at IS NULL",
                                     {token_sha256}));
  if (r.rows() == 0) return std::optional<ApiKey>();
  return std::optional<ApiKey>(ApiKey{r.GetString(0, 0), r.GetString(0, 1), r.GetString(0, 2)});
}

}  // namespace synaps::store
