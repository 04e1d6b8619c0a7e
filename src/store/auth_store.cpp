#include "store/auth_store.h"

#include "store/detail/json_column.h"

namespace synaps::store {

Result<std::optional<ApiKey>> FindApiKey(db::Connection& conn, const std::string& token_sha256) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("find_api_key",
                                     "SELECT id, tenant_id, role, installation FROM synaps.api_keys"
                                     " WHERE hash = $1 AND revoked_at IS NULL",
                                     {token_sha256}));
  if (r.rows() == 0) return std::optional<ApiKey>();
  return std::optional<ApiKey>(
      ApiKey{r.GetString(0, 0), r.GetString(0, 1), r.GetString(0, 2), r.GetBool(0, 3)});
}

Result<std::string> CreateApiKey(db::Connection& conn, const ApiKey& key, const std::string& name,
                                 const std::string& token_sha256, const std::string& actor) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared(
          "create_api_key",
          "WITH k AS (INSERT INTO synaps.api_keys"
          "  (id, tenant_id, role, name, hash, created_by, installation)"
          "  VALUES (gen_random_uuid(), $1, $2, nullif($3, ''), $4, $5, $6::boolean) RETURNING id),"
          " a AS (INSERT INTO synaps.audit_log (tenant_id, actor, action, target, data)"
          "  SELECT $1, $5, 'api_key.create', k.id::text,"
          "         jsonb_build_object('role', $2::text, 'name', nullif($3, ''),"
          "                            'installation', $6::boolean) FROM k)"
          " SELECT id FROM k",
          {key.tenant_id, key.role, name, token_sha256, actor,
           key.installation ? "true" : "false"}));
  return r.GetString(0, 0);
}

Status RevokeApiKey(db::Connection& conn, const std::string& key_id, const std::string& tenant_id,
                    const std::string& actor) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared(
          "revoke_api_key",
          "WITH k AS (UPDATE synaps.api_keys SET revoked_at = now()"
          "  WHERE id = $1::uuid AND revoked_at IS NULL"
          "    AND ($2 = '' OR (tenant_id = $2 AND NOT installation))"
          "  RETURNING id, tenant_id),"
          " a AS (INSERT INTO synaps.audit_log (tenant_id, actor, action, target)"
          "  SELECT k.tenant_id, $3, 'api_key.revoke', k.id::text FROM k)"
          " SELECT count(*) FROM k",
          {key_id, tenant_id, actor}));
  if (r.GetInt(0, 0) == 0) {
    return Fail(ErrorCode::kNotFound, "API key " + key_id + " not found or already revoked");
  }
  return Ok();
}

Result<nlohmann::json> ListApiKeys(db::Connection& conn, const std::string& tenant_id) {
  ASSIGN_OR_RETURN(
      auto r,
      conn.ExecPrepared(
          "list_api_keys",
          "SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'tenantId', tenant_id,"
          " 'role', role, 'name', name, 'createdBy', created_by, 'createdAt', created_at,"
          " 'revokedAt', revoked_at, 'installation', installation)"
          " ORDER BY created_at DESC, id), '[]'::jsonb)"
          " FROM synaps.api_keys WHERE $1::text = '' OR tenant_id = $1",
          {tenant_id}));
  return detail::ParseColumn(r.Get(0, 0), "the API key list");
}

Status RevokeToken(db::Connection& conn, const std::string& jti, int64_t expires_at,
                   const std::string& actor, const std::string& reason) {
  ASSIGN_OR_RETURN(
      auto r,
      conn.ExecPrepared(
          "revoke_token",
          "WITH t AS (INSERT INTO synaps.revoked_tokens (jti, expires_at, revoked_by, reason)"
          "  VALUES ($1, to_timestamp($2::bigint), $3, nullif($4, ''))"
          "  ON CONFLICT (jti) DO UPDATE"
          "    SET expires_at = greatest(synaps.revoked_tokens.expires_at, EXCLUDED.expires_at)"
          "  RETURNING jti),"
          " a AS (INSERT INTO synaps.audit_log (tenant_id, actor, action, target)"
          "  SELECT 'default', $3, 'token.revoke', t.jti FROM t)"
          " SELECT count(*) FROM t",
          {jti, std::to_string(expires_at), actor, reason}));
  (void)r;
  return Ok();
}

Result<std::vector<std::string>> ListRevokedTokens(db::Connection& conn) {
  ASSIGN_OR_RETURN(auto r, conn.ExecPrepared("list_revoked_tokens",
                                             "SELECT jti FROM synaps.revoked_tokens"
                                             " WHERE expires_at > now()",
                                             {}));
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.GetString(i, 0));
  return out;
}

Result<int64_t> DeleteExpiredRevocations(db::Connection& conn) {
  ASSIGN_OR_RETURN(auto r, conn.ExecPrepared("delete_expired_revocations",
                                             "WITH d AS (DELETE FROM synaps.revoked_tokens"
                                             " WHERE expires_at <= now() RETURNING 1)"
                                             " SELECT count(*) FROM d",
                                             {}));
  return r.GetInt(0, 0);
}

}  // namespace synaps::store
