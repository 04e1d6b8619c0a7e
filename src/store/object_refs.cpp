#include "store/object_refs.h"

namespace synaps::store {
namespace {

// Every object key a row refers to: artifact versions, the artifacts of tasks held for
// approval (queue_items.held), which become versions only when approved, and the artifacts of
// archived runs (synaps.archives.object_keys), which a restore brings back.
constexpr const char* kReferencedKeys =
    "SELECT object_key FROM synaps.artifact_versions"
    " UNION SELECT unnest(object_keys) FROM synaps.archives"
    " UNION SELECT a->>'objectKey' FROM synaps.queue_items q,"
    "   jsonb_array_elements(q.held->'artifacts') a"
    "  WHERE q.status = 'held'";

}  // namespace

Result<std::unordered_set<std::string>> ReferencedObjectKeys(db::Connection& conn,
                                                             const std::string& prefix) {
  ASSIGN_OR_RETURN(auto rows, conn.Exec(std::string("SELECT k FROM (") + kReferencedKeys +
                                            ") r(k) WHERE starts_with(k, $1)",
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
  ASSIGN_OR_RETURN(auto rows, conn.Exec(std::string("SELECT k FROM (") + kReferencedKeys +
                                            ") r(k) WHERE k = ANY($1::text[])",
                                        {db::ArrayLiteral(keys)}));
  for (int i = 0; i < rows.rows(); ++i) referenced.insert(rows.GetString(i, 0));
  return referenced;
}

}  // namespace synaps::store
