// API keys: looked up by the SHA-256 of the presented token; the token is never stored.
#pragma once

#include <optional>
#include <string>

#include "db/connection.h"

namespace synaps::store {

struct ApiKey {
  std::string id;
  std::string tenant_id;
  std::string role;
};

// The live (not revoked) key whose hash is `token_sha256`, or nullopt.
Result<std::optional<ApiKey>> FindApiKey(db::Connection& conn, const std::string& token_sha256);

}  // namespace synaps::store
