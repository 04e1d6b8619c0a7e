// Which object-store keys the database refers to: the one place that knows every column holding
// an object key (artifact_versions.object_key, the artifacts of held tasks, and
// archives.object_keys). `synaps gc` deletes only objects that no row names; a new table that
// stores object keys must be added here.
#pragma once

#include <string>
#include <unordered_set>
#include <vector>

#include "db/connection.h"

namespace synaps::store {

// Every referenced key that starts with `prefix`, in one round trip.
Result<std::unordered_set<std::string>> ReferencedObjectKeys(db::Connection& conn,
                                                             const std::string& prefix);

// The subset of `keys` that some row refers to, in one round trip.
Result<std::unordered_set<std::string>> FilterReferencedObjectKeys(
    db::Connection& conn, const std::vector<std::string>& keys);

}  // namespace synaps::store
