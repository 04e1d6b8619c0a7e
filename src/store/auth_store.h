// API keys: looked up by the SHA-256 of the presented token; the token is never stored.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.h"

namespace synaps::store {

struct ApiKey {
  std::string id;
  std::string tenant_id;
  std::string role;
  // Installation scope (migration 0011): may write the control registry and act across
  // tenants. Only the bootstrap token or another installation key may grant it.
  bool installation = false;
};

// The live (not revoked) key whose hash is `token_sha256`, or nullopt.
Result<std::optional<ApiKey>> FindApiKey(db::Connection& conn, const std::string& token_sha256);

// Stores a new key (only the hash of `token`) and an audit row; returns its id.
Result<std::string> CreateApiKey(db::Connection& conn, const ApiKey& key, const std::string& name,
                                 const std::string& token_sha256, const std::string& actor);

// Revokes a key. `tenant_id` empty = any tenant, installation keys included (installation
// scope); otherwise only that tenant's keys without installation scope. kNotFound when absent,
// out of reach, or already revoked. Writes an audit row.
Status RevokeApiKey(db::Connection& conn, const std::string& key_id, const std::string& tenant_id,
                    const std::string& actor);

// Keys of `tenant_id` (every tenant when empty: the bootstrap admin), newest first, revoked ones
// too: [{id, tenantId, role, name, createdBy, createdAt, revokedAt, installation}]. Never a token or hash.
Result<nlohmann::json> ListApiKeys(db::Connection& conn, const std::string& tenant_id);

// The JWT deny-list (migration 0014). Revokes `jti` until `expires_at` (unix seconds, the
// token's exp) with an audit row; revoking a listed jti again extends its entry to the later
// expiry. Idempotent.
Status RevokeToken(db::Connection& conn, const std::string& jti, int64_t expires_at,
                   const std::string& actor, const std::string& reason);

// Every jti listed and not yet expired.
Result<std::vector<std::string>> ListRevokedTokens(db::Connection& conn);

// Deletes entries whose token has expired (they can no longer be presented); returns how many.
Result<int64_t> DeleteExpiredRevocations(db::Connection& conn);

}  // namespace synaps::store
