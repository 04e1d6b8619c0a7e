#include "store/object_refs.h"

namespace synaps::store {

Result<std::unordered_set<std::string>> ReferencedObjectKeys(db::Connection& conn,
                                                             const std::string& prefix) {
  ASSIGN_OR_RETURN(auto rows, conn.Exec("SELECT DISTINCT object_key FROM synaps.artifact_versions"
                                        " WHERE starts_with(object_key, $1)",
                                        {prefix}));
  std::unordered_set<std::string> keys;
  keys.reserve(static_cast<size_t>(rows.rows()));
  for (int i = 0; i < rows.rows(); ++i) keys.insert(rows.GetString(i, 0));
  return keys;
}

Result<std::unordered_set<std::string>> FilterReferencedObjectKeys(
    db::Connection& conn, const std::vector<std::string>& keys) {
  std::unordered_set<std::string> referenced;
  if (keys.empty()) return referenced;
  ASSIGN_OR_RETURN(auto rows, conn.Exec("SELECT DISTINCT object_key FROM synaps.artifact_versions"
                                        " WHERE object_key = ANY($1::text[])",
                                        {db::ArrayLiteral(keys)}));
  for (int i = 0; i < rows.rows(); ++i) referenced.insert(rows.GetString(i, 0));
  return referenced;
}

}  // namespace synaps::store
