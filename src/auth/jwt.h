// HS256 JSON Web Tokens in Hasura's claim format, so that one token works for the Control API and
// for Hasura's GraphQL endpoint (both configured with the same SYNAPS_JWT_SECRET).
//
// A token's payload:
//   {"sub": "alice", "iss": "synaps", "aud": "synaps", "iat": ..., "exp": ..., "jti": "...",
//    "https://hasura.io/jwt/claims": {
//      "x-hasura-default-role": "operator",
//      "x-hasura-allowed-roles": ["operator", "user"],
//      "x-hasura-tenant-id": "acme",
//      "x-hasura-user-id": "alice"}}
//
// Installation scope: a token carrying `"scope": "installation"` (RFC 8693's space-separated
// `scope` claim; other scope values are ignored) may write the control registry and act across
// tenants (docs/security.md, "Tenancy and the control registry"). Anyone holding
// SYNAPS_JWT_SECRET can mint one: the secret is an installation credential.
//
// Roles: the API roles `admin`, `operator`, `worker`, `viewer`, and `user`, the read-only GraphQL
// role whose select permissions the Hasura metadata defines (deploy/hasura/metadata). The default
// role is the role the token acts as; AllowedRolesFor() says what else it may ask Hasura for.
//
// All functions are pure and thread-safe. Every refusal of a presented token is an Error with
// code kUnauthenticated and a message naming the reason; a secret that cannot work (shorter
// than kMinSecretBytes) is kInvalidArgument from Mint and kInternal from Verify, since it is
// the server's configuration at fault, not the caller's token.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace synaps::auth {

using Seconds = std::chrono::sys_seconds;

// Where Hasura looks for its claims by default (its `claims_namespace`).
inline constexpr std::string_view kHasuraClaimsNamespace = "https://hasura.io/jwt/claims";
// `iss` and `aud` of tokens minted by `synaps tokens mint`; the Helm chart configures Hasura's
// HASURA_GRAPHQL_JWT_SECRET with the same values.
inline constexpr std::string_view kDefaultIssuer = "synaps";
inline constexpr std::string_view kDefaultAudience = "synaps";
// Hasura refuses HS256 keys shorter than 32 bytes; so do we.
inline constexpr size_t kMinSecretBytes = 32;
// The longest JWT lifetime accepted and minted unless SYNAPS_JWT_MAX_TTL says otherwise.
inline constexpr std::chrono::seconds kDefaultMaxLifetime{24 * 3600};
// Longer tokens are refused before any parsing.
inline constexpr size_t kMaxTokenBytes = 8192;

// SYNAPS_JWT_MAX_TTL: seconds, or a number with s, m, h or d ("24h"); between 60 s and 365 d;
// kDefaultMaxLifetime when unset. Throws ConfigError naming the variable when malformed.
std::chrono::seconds MaxLifetimeFromEnv();

// True for admin, operator, worker, viewer and user.
bool IsKnownRole(std::string_view role);

// The x-hasura-allowed-roles of a token whose default role is `role`: the role itself, plus
// `user` for admin, operator and viewer, so a person's token can also read through GraphQL
// (with the header `X-Hasura-Role: user`; viewer and operator inherit `user` in the Hasura
// metadata, so they need no header). A worker token carries only `worker`.
std::vector<std::string> AllowedRolesFor(std::string_view role);

struct Claims {
  std::string subject;                     // sub: who the token speaks for
  std::string tenant_id;                   // x-hasura-tenant-id (required, non-empty)
  std::string default_role;                // x-hasura-default-role (required)
  std::vector<std::string> allowed_roles;  // x-hasura-allowed-roles; contains default_role
  std::string user_id;                     // x-hasura-user-id; Mint writes `subject` if empty
  std::string issuer;                      // iss; empty = absent
  std::vector<std::string> audience;       // aud; empty = absent; one entry is written as a string
  Seconds issued_at{};                     // iat
  Seconds expires_at{};                    // exp (required: tokens without expiry are refused)
  std::optional<Seconds> not_before;       // nbf
  std::string token_id;                    // jti; Mint generates a UUID if empty
  bool installation = false;               // scope contains "installation"
};

// Claims for a token of `tenant_id` acting as `role`, valid from `now` for `ttl`, with
// AllowedRolesFor(role), issuer kDefaultIssuer and audience kDefaultAudience.
Claims NewClaims(std::string tenant_id, std::string role, std::string subject,
                 std::chrono::seconds ttl, Seconds now);

// Signs `claims` with HMAC-SHA256. kInvalidArgument when the secret is shorter than
// kMinSecretBytes, the tenant or default role is empty, the default role is not among the
// allowed roles, or no expiry is set.
Result<std::string> Mint(const Claims& claims, std::string_view secret);

struct VerifyOptions {
  // When set, `iss` must equal it.
  std::optional<std::string> issuer;
  // When set, `aud` (a string or an array of strings) must contain it.
  std::optional<std::string> audience;
  // The current time; nullopt = the system clock.
  std::optional<Seconds> now;
  // Clock skew tolerated for exp and nbf.
  std::chrono::seconds leeway{0};
  // When set, the longest lifetime accepted (SYNAPS_JWT_MAX_TTL): exp - iat beyond it is
  // refused, and so is an exp further than it from now (a token without iat, or one whose iat
  // lies about its age).
  std::optional<std::chrono::seconds> max_lifetime;
};

// Checks, in this order: size and shape (three base64url segments), header (alg must be
// HS256: `none` and every other algorithm are refused; no `crit`), signature (constant-time
// compare), then the payload: exp (required; refused once now >= exp + leeway; times beyond
// ±10^15 s are refused), the lifetime bound, nbf, iss, aud, sub and jti (at most 256 bytes, no
// control characters), and the Hasura claims: the default role a known role, allowed roles
// containing it, each of the role grammar, and the tenant id of the API keys' grammar
// (core/http_grammar.h IsTenantId: no NUL, no spaces, at most 64 bytes).
Result<Claims> Verify(std::string_view token, std::string_view secret,
                      const VerifyOptions& options = {});

}  // namespace synaps::auth
