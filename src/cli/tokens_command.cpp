// synaps tokens mint: signs an HS256 JWT with SYNAPS_JWT_SECRET, in Hasura's claim format, for
// the Control API and Hasura's GraphQL endpoint alike (see auth/jwt.h and docs/deploy.md).
#include <chrono>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "auth/jwt.h"
#include "cli/commands.h"
#include "core/config.h"

namespace synaps::cli {

namespace {

std::string FormatUtc(auth::Seconds t) {
  std::time_t secs = t.time_since_epoch().count();
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

int RunTokensMint(const TokensMintFlags& flags) {
  auto secret = config::Env("SYNAPS_JWT_SECRET");
  if (!secret) {
    throw ConfigError(
        "SYNAPS_JWT_SECRET is not set: export the HS256 secret shared by the API and Hasura "
        "(at least 32 bytes, e.g. `openssl rand -hex 32`; in Kubernetes it is in the chart's "
        "auth Secret)");
  }
  if (secret->size() < auth::kMinSecretBytes) {
    throw ConfigError("SYNAPS_JWT_SECRET is " + std::to_string(secret->size()) +
                      " bytes: Hasura and Synaps need at least " +
                      std::to_string(auth::kMinSecretBytes) + " (e.g. `openssl rand -hex 32`)");
  }
  // The API refuses tokens living longer than SYNAPS_JWT_MAX_TTL: never mint one.
  std::chrono::seconds max_ttl = auth::MaxLifetimeFromEnv();
  if (flags.ttl_seconds > max_ttl.count()) {
    std::cerr << "error: --ttl " << flags.ttl_seconds << " exceeds the longest lifetime the API "
              << "accepts, " << max_ttl.count()
              << " s (SYNAPS_JWT_MAX_TTL; default 24h): mint a shorter token\n";
    return 2;
  }
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  auth::Claims claims = auth::NewClaims(flags.tenant, flags.role, flags.subject,
                                        std::chrono::seconds(flags.ttl_seconds), now);
  claims.issuer = flags.issuer;
  claims.audience = {flags.audience};
  claims.installation = flags.installation;
  auto token = auth::Mint(claims, *secret);
  if (!token) {
    std::cerr << "error: " << token.error().message << "\n";
    return 1;
  }
  if (flags.json) {
    nlohmann::json out = {
        {"token", *token},
        {"tokenType", "Bearer"},
        {"tenantId", claims.tenant_id},
        {"subject", claims.subject},
        {"defaultRole", claims.default_role},
        {"allowedRoles", claims.allowed_roles},
        {"issuer", claims.issuer},
        {"audience", flags.audience},
        {"issuedAt", FormatUtc(claims.issued_at)},
        {"expiresAt", FormatUtc(claims.expires_at)},
        {"expiresIn", flags.ttl_seconds},
        {"installation", claims.installation},
    };
    std::cout << out.dump() << "\n";
  } else {
    std::cout << *token << "\n";
  }
  return 0;
}

}  // namespace synaps::cli
