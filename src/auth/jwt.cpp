#include "auth/jwt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "auth/base64url.h"
#include "core/config.h"
#include "core/http_grammar.h"
#include "core/ids.h"

namespace synaps::auth {

namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 5> kRoles = {"admin", "operator", "worker", "viewer",
                                                    "user"};
constexpr std::string_view kGraphqlRole = "user";

std::unexpected<Error> Refuse(std::string message) {
  return Fail(ErrorCode::kUnauthenticated, std::move(message));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
           &len) == nullptr) {
    // Only fails when OpenSSL itself is broken (no SHA-256): a bug, not an input problem.
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

// Parses a base64url segment as a JSON object; nullopt when either step fails.
std::optional<json> DecodeJsonObject(std::string_view segment) {
  auto bytes = Base64UrlDecode(segment);
  if (!bytes) return std::nullopt;
  json value = json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) return std::nullopt;
  return value;
}

// RFC 7519 NumericDate: a JSON number of seconds since the epoch, possibly fractional.
std::optional<Seconds> NumericDate(const json& value) {
  // Beyond ±10^15 s (30 million years) is nonsense, and would overflow arithmetic on it.
  constexpr int64_t kLimit = 1'000'000'000'000'000;
  if (value.is_number_unsigned()) {
    if (value.get<uint64_t>() > static_cast<uint64_t>(kLimit)) return std::nullopt;
    return Seconds(std::chrono::seconds(static_cast<int64_t>(value.get<uint64_t>())));
  }
  if (value.is_number_integer()) {
    int64_t v = value.get<int64_t>();
    if (v > kLimit || v < -kLimit) return std::nullopt;
    return Seconds(std::chrono::seconds(v));
  }
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > 1e15) return std::nullopt;
    return Seconds(std::chrono::seconds(static_cast<int64_t>(std::floor(d))));
  }
  return std::nullopt;
}

Result<std::string> OptionalString(const json& payload, const char* key) {
  auto it = payload.find(key);
  if (it == payload.end()) return std::string();
  if (!it->is_string()) return Refuse(std::string("token claim '") + key + "' is not a string");
  return it->get<std::string>();
}

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

}  // namespace

std::chrono::seconds MaxLifetimeFromEnv() {
  auto raw = config::Env("SYNAPS_JWT_MAX_TTL");
  if (!raw || raw->empty()) return kDefaultMaxLifetime;
  std::string v = *raw;
  int64_t unit = 1;
  switch (v.back()) {
    case 's':
      unit = 1;
      v.pop_back();
      break;
    case 'm':
      unit = 60;
      v.pop_back();
      break;
    case 'h':
      unit = 3600;
      v.pop_back();
      break;
    case 'd':
      unit = 86400;
      v.pop_back();
      break;
    default:
      break;
  }
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n <= 0 ||
      n > 365 * 86400 / unit || n * unit < 60) {
    throw ConfigError("SYNAPS_JWT_MAX_TTL=" + *raw +
                      " is not a lifetime between 60s and 365d: give seconds or a number with "
                      "s, m, h or d, e.g. 24h");
  }
  return std::chrono::seconds(n * unit);
}

bool IsKnownRole(std::string_view role) {
  return std::find(kRoles.begin(), kRoles.end(), role) != kRoles.end();
}

std::vector<std::string> AllowedRolesFor(std::string_view role) {
  std::vector<std::string> roles = {std::string(role)};
  if (role == "admin" || role == "operator" || role == "viewer") {
    roles.emplace_back(kGraphqlRole);
  }
  return roles;
}

Claims NewClaims(std::string tenant_id, std::string role, std::string subject,
                 std::chrono::seconds ttl, Seconds now) {
  Claims c;
  c.subject = std::move(subject);
  c.tenant_id = std::move(tenant_id);
  c.allowed_roles = AllowedRolesFor(role);
  c.default_role = std::move(role);
  c.issuer = std::string(kDefaultIssuer);
  c.audience = {std::string(kDefaultAudience)};
  c.issued_at = now;
  c.expires_at = now + ttl;
  return c;
}

Result<std::string> Mint(const Claims& claims, std::string_view secret) {
  if (secret.size() < kMinSecretBytes) {
    return Fail(ErrorCode::kInvalidArgument, "the JWT secret must be at least " +
                                                 std::to_string(kMinSecretBytes) +
                                                 " bytes (e.g. `openssl rand -hex 32`)");
  }
  if (claims.tenant_id.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "a token needs a tenant id", "tenant_id");
  }
  if (claims.default_role.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "a token needs a default role", "default_role");
  }
  if (std::find(claims.allowed_roles.begin(), claims.allowed_roles.end(), claims.default_role) ==
      claims.allowed_roles.end()) {
    return Fail(
        ErrorCode::kInvalidArgument,
        "the default role " + Quoted(claims.default_role) + " must be one of the allowed roles",
        "allowed_roles");
  }
  if (claims.expires_at == Seconds{}) {
    return Fail(ErrorCode::kInvalidArgument, "a token needs an expiry", "expires_at");
  }

  json hasura = {
      {"x-hasura-default-role", claims.default_role},
      {"x-hasura-allowed-roles", claims.allowed_roles},
      {"x-hasura-tenant-id", claims.tenant_id},
      {"x-hasura-user-id", claims.user_id.empty() ? claims.subject : claims.user_id},
  };
  json payload = {
      {std::string(kHasuraClaimsNamespace), hasura},
      {"iat", claims.issued_at.time_since_epoch().count()},
      {"exp", claims.expires_at.time_since_epoch().count()},
      {"jti", claims.token_id.empty() ? NewUuid() : claims.token_id},
  };
  if (!claims.subject.empty()) payload["sub"] = claims.subject;
  if (!claims.issuer.empty()) payload["iss"] = claims.issuer;
  if (claims.audience.size() == 1) {
    payload["aud"] = claims.audience.front();
  } else if (!claims.audience.empty()) {
    payload["aud"] = claims.audience;
  }
  if (claims.not_before) payload["nbf"] = claims.not_before->time_since_epoch().count();
  if (claims.installation) payload["scope"] = "installation";

  static const std::string kHeader = Base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})");
  std::string signing_input = kHeader + "." + Base64UrlEncode(payload.dump());
  return signing_input + "." + Base64UrlEncode(HmacSha256(secret, signing_input));
}

namespace {

// The header decides how to check the signature, so it is read first: HS256 only ("none" and
// every other algorithm refused), typ JWT if given, no critical extensions.
Status CheckHeader(std::string_view header_part) {
  auto header = DecodeJsonObject(header_part);
  if (!header) return Refuse("token is malformed: the header is not base64url-encoded JSON");
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string()) {
    return Refuse("token is malformed: the header has no algorithm (alg)");
  }
  std::string algorithm = alg->get<std::string>();
  std::string lowered = algorithm;
  std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lowered == "none") {
    return Refuse("token algorithm 'none' is refused: tokens must be signed with HS256");
  }
  if (algorithm != "HS256") {
    return Refuse("token algorithm " + Quoted(algorithm) + " is not accepted: only HS256");
  }
  if (auto typ = header->find("typ"); typ != header->end()) {
    if (!typ->is_string() ||
        (typ->get<std::string>() != "JWT" && typ->get<std::string>() != "jwt")) {
      return Refuse("token is malformed: the header's typ is not JWT");
    }
  }
  if (header->contains("crit")) {
    return Refuse("token header lists critical extensions (crit), which are not supported");
  }
  return Ok();
}

// The payload of a token whose header is acceptable and whose signature matches `secret`;
// nothing from the payload is read before that.
Result<json> SignedPayload(std::string_view token, std::string_view secret) {
  if (token.empty()) return Refuse("token is empty");
  if (token.size() > kMaxTokenBytes) {
    return Refuse("token is malformed: longer than " + std::to_string(kMaxTokenBytes) + " bytes");
  }
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Refuse("token is malformed: a JWT has three dot-separated parts");
  }
  RETURN_IF_ERROR(CheckHeader(token.substr(0, dot1)));
  auto signature = Base64UrlDecode(token.substr(dot2 + 1));
  if (!signature || signature->empty()) {
    return Refuse("token is malformed: the signature is not base64url");
  }
  std::string expected = HmacSha256(secret, token.substr(0, dot2));
  if (!SecureEquals(*signature, expected)) return Refuse("token signature does not match");
  auto payload = DecodeJsonObject(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!payload) return Refuse("token is malformed: the payload is not base64url-encoded JSON");
  return std::move(*payload);
}

// exp (required; not past, not beyond the longest lifetime), nbf, iat (lifetime exp - iat).
Status ReadTimes(const json& payload, const VerifyOptions& options, Claims& claims) {
  Seconds now = options.now.value_or(
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()));
  auto exp = payload.find("exp");
  if (exp == payload.end()) return Refuse("token has no expiry (exp)");
  auto exp_time = NumericDate(*exp);
  if (!exp_time) return Refuse("token claim 'exp' is not a number of seconds");
  claims.expires_at = *exp_time;
  if (now >= claims.expires_at + options.leeway) return Refuse("token has expired");
  if (options.max_lifetime && claims.expires_at - now > *options.max_lifetime + options.leeway) {
    return Refuse("token expires too far in the future: the longest lifetime accepted is " +
                  std::to_string(options.max_lifetime->count()) + " s (SYNAPS_JWT_MAX_TTL)");
  }
  if (auto nbf = payload.find("nbf"); nbf != payload.end()) {
    auto nbf_time = NumericDate(*nbf);
    if (!nbf_time) return Refuse("token claim 'nbf' is not a number of seconds");
    claims.not_before = *nbf_time;
    if (now + options.leeway < *nbf_time) return Refuse("token is not valid yet (nbf)");
  }
  if (auto iat = payload.find("iat"); iat != payload.end()) {
    auto iat_time = NumericDate(*iat);
    if (!iat_time) return Refuse("token claim 'iat' is not a number of seconds");
    claims.issued_at = *iat_time;
    if (options.max_lifetime && claims.expires_at - claims.issued_at > *options.max_lifetime) {
      return Refuse("token lifetime (exp - iat) exceeds the longest accepted, " +
                    std::to_string(options.max_lifetime->count()) + " s (SYNAPS_JWT_MAX_TTL)");
    }
  }
  return Ok();
}

// iss and aud (checked against the expected ones when set), sub, jti, scope.
Status ReadIdentity(const json& payload, const VerifyOptions& options, Claims& claims) {
  ASSIGN_OR_RETURN(claims.issuer, OptionalString(payload, "iss"));
  if (options.issuer && claims.issuer != *options.issuer) {
    return Refuse(claims.issuer.empty()
                      ? "token has no issuer (iss); expected " + Quoted(*options.issuer)
                      : "token issuer " + Quoted(claims.issuer) + " is not " +
                            Quoted(*options.issuer));
  }
  if (auto aud = payload.find("aud"); aud != payload.end()) {
    if (aud->is_string()) {
      claims.audience.push_back(aud->get<std::string>());
    } else if (aud->is_array()) {
      for (const auto& a : *aud) {
        if (!a.is_string()) return Refuse("token claim 'aud' is not a string or list of strings");
        claims.audience.push_back(a.get<std::string>());
      }
    } else {
      return Refuse("token claim 'aud' is not a string or list of strings");
    }
  }
  if (options.audience && std::find(claims.audience.begin(), claims.audience.end(),
                                    *options.audience) == claims.audience.end()) {
    return Refuse("token audience does not include " + Quoted(*options.audience));
  }
  ASSIGN_OR_RETURN(claims.subject, OptionalString(payload, "sub"));
  ASSIGN_OR_RETURN(claims.token_id, OptionalString(payload, "jti"));
  for (const auto& [name, value] : {std::pair{"sub", &claims.subject}, {"jti", &claims.token_id}}) {
    if (value->size() > 256 || !IsSafeHeaderValue(*value)) {
      return Refuse(std::string("token claim '") + name +
                    "' is longer than 256 bytes or holds control characters");
    }
  }
  ASSIGN_OR_RETURN(std::string scope, OptionalString(payload, "scope"));
  for (size_t i = 0; i < scope.size();) {
    size_t end = std::min(scope.find(' ', i), scope.size());
    if (scope.compare(i, end - i, "installation") == 0) claims.installation = true;
    i = end + 1;
  }
  return Ok();
}

// The Hasura claims object: default role (a known role, among the allowed ones), allowed
// roles, tenant id, user id.
Status ReadHasuraClaims(const json& payload, Claims& claims) {
  auto ns = payload.find(std::string(kHasuraClaimsNamespace));
  if (ns == payload.end() || !ns->is_object()) {
    return Refuse("token lacks the Hasura claims object (" + std::string(kHasuraClaimsNamespace) +
                  ")");
  }
  const json& hasura = *ns;
  auto default_role = hasura.find("x-hasura-default-role");
  if (default_role == hasura.end() || !default_role->is_string() ||
      default_role->get<std::string>().empty()) {
    return Refuse("token has no x-hasura-default-role");
  }
  claims.default_role = default_role->get<std::string>();
  if (!IsKnownRole(claims.default_role)) {
    return Refuse(
        "token's x-hasura-default-role is not one of admin, operator, worker, viewer, "
        "user");
  }
  auto allowed = hasura.find("x-hasura-allowed-roles");
  if (allowed == hasura.end() || !allowed->is_array() || allowed->empty()) {
    return Refuse("token has no x-hasura-allowed-roles list");
  }
  for (const auto& role : *allowed) {
    if (!role.is_string() || !IsTenantId(role.get<std::string>())) {
      return Refuse(
          "token's x-hasura-allowed-roles holds a non-string or a value that is not a role name");
    }
    claims.allowed_roles.push_back(role.get<std::string>());
  }
  if (std::find(claims.allowed_roles.begin(), claims.allowed_roles.end(), claims.default_role) ==
      claims.allowed_roles.end()) {
    return Refuse("token's default role " + Quoted(claims.default_role) +
                  " is not among its allowed roles");
  }
  auto tenant = hasura.find("x-hasura-tenant-id");
  if (tenant == hasura.end() || !tenant->is_string() || tenant->get<std::string>().empty()) {
    return Refuse("token has no x-hasura-tenant-id");
  }
  claims.tenant_id = tenant->get<std::string>();
  if (!IsTenantId(claims.tenant_id)) {
    return Refuse("token's x-hasura-tenant-id must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}");
  }
  if (auto user = hasura.find("x-hasura-user-id"); user != hasura.end()) {
    if (!user->is_string()) return Refuse("token's x-hasura-user-id is not a string");
    claims.user_id = user->get<std::string>();
  }
  return Ok();
}

}  // namespace

Result<Claims> Verify(std::string_view token, std::string_view secret,
                      const VerifyOptions& options) {
  if (secret.size() < kMinSecretBytes) {
    return Fail(ErrorCode::kInternal,
                "the server's JWT secret is not configured (or shorter than " +
                    std::to_string(kMinSecretBytes) + " bytes)");
  }
  ASSIGN_OR_RETURN(json payload, SignedPayload(token, secret));
  Claims claims;
  RETURN_IF_ERROR(ReadTimes(payload, options, claims));
  RETURN_IF_ERROR(ReadIdentity(payload, options, claims));
  RETURN_IF_ERROR(ReadHasuraClaims(payload, claims));
  return claims;
}

}  // namespace synaps::auth
