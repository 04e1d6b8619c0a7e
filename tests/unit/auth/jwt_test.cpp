#include "auth/jwt.h"

#include <gtest/gtest.h>

#include <limits>
#include <optional>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <nlohmann/json.hpp>

#include "auth/base64url.h"

namespace synaps::auth {
namespace {

using nlohmann::json;
using std::chrono::seconds;

const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";
const Seconds kNow = Seconds(seconds(1'700'000'000));

VerifyOptions At(Seconds now) {
  VerifyOptions o;
  o.issuer = std::string(kDefaultIssuer);
  o.audience = std::string(kDefaultAudience);
  o.now = now;
  return o;
}

std::string MintOrDie(const Claims& claims, const std::string& secret = kSecret) {
  auto token = Mint(claims, secret);
  EXPECT_TRUE(token) << token.error().message;
  return token.value_or("");
}

// Signs arbitrary header and payload JSON, to build tokens Mint would never produce.
std::string SignRaw(const std::string& header, const std::string& payload,
                    const std::string& secret = kSecret) {
  std::string input = Base64UrlEncode(header) + "." + Base64UrlEncode(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + Base64UrlEncode(std::string(reinterpret_cast<char*>(mac), len));
}

json ValidPayload() {
  return {{"sub", "alice"},
          {"iss", "synaps"},
          {"aud", "synaps"},
          {"iat", 1'700'000'000},
          {"exp", 1'700'003'600},
          {std::string(kHasuraClaimsNamespace),
           {{"x-hasura-default-role", "viewer"},
            {"x-hasura-allowed-roles", {"viewer", "user"}},
            {"x-hasura-tenant-id", "acme"},
            {"x-hasura-user-id", "alice"}}}};
}

const std::string kHs256Header = R"({"alg":"HS256","typ":"JWT"})";

void ExpectRefused(const Result<Claims>& r, const std::string& reason) {
  ASSERT_FALSE(r) << "accepted a token that should be refused for: " << reason;
  EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated) << r.error().message;
  EXPECT_NE(r.error().message.find(reason), std::string::npos)
      << "message '" << r.error().message << "' does not mention '" << reason << "'";
}

json DecodePayload(const std::string& token) {
  size_t a = token.find('.');
  size_t b = token.find('.', a + 1);
  auto bytes = Base64UrlDecode(token.substr(a + 1, b - a - 1));
  EXPECT_TRUE(bytes);
  return json::parse(bytes.value_or("{}"));
}

TEST(JwtTest, MintedTokenVerifiesWithAllClaims) {
  Claims c = NewClaims("acme", "operator", "alice", seconds(3600), kNow);
  c.token_id = "token-1";
  auto verified = Verify(MintOrDie(c), kSecret, At(kNow + seconds(10)));
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_EQ(verified->subject, "alice");
  EXPECT_EQ(verified->tenant_id, "acme");
  EXPECT_EQ(verified->default_role, "operator");
  EXPECT_EQ(verified->allowed_roles, (std::vector<std::string>{"operator", "user"}));
  EXPECT_EQ(verified->user_id, "alice");
  EXPECT_EQ(verified->issuer, "synaps");
  EXPECT_EQ(verified->audience, std::vector<std::string>{"synaps"});
  EXPECT_EQ(verified->issued_at, kNow);
  EXPECT_EQ(verified->expires_at, kNow + seconds(3600));
  EXPECT_EQ(verified->token_id, "token-1");
  EXPECT_FALSE(verified->not_before);
}

// The installation scope (docs/api.md, "Tenancy"): RFC 8693's space-separated `scope` claim.
TEST(JwtTest, InstallationScopeIsTheScopeClaim) {
  Claims c = NewClaims("ops", "operator", "root", seconds(3600), kNow);
  EXPECT_FALSE(Verify(MintOrDie(c), kSecret, At(kNow))->installation);
  c.installation = true;
  std::string token = MintOrDie(c);
  EXPECT_EQ(DecodePayload(token)["scope"], "installation");
  EXPECT_TRUE(Verify(token, kSecret, At(kNow))->installation);
  auto with_scope = [](const json& scope) {
    json payload = ValidPayload();
    payload["scope"] = scope;
    return Verify(SignRaw(kHs256Header, payload.dump()), kSecret, At(kNow));
  };
  EXPECT_TRUE(with_scope("read installation write")->installation);
  EXPECT_FALSE(with_scope("installations")->installation);
  EXPECT_FALSE(with_scope("read")->installation);
  EXPECT_FALSE(with_scope(json::array({"installation"})));
}

TEST(JwtTest, PayloadFollowsHasuraClaimFormat) {
  std::string token = MintOrDie(NewClaims("acme", "viewer", "bob", seconds(60), kNow));
  size_t a = token.find('.');
  auto header = json::parse(*Base64UrlDecode(token.substr(0, a)));
  EXPECT_EQ(header, json({{"alg", "HS256"}, {"typ", "JWT"}}));

  json payload = DecodePayload(token);
  ASSERT_TRUE(payload.contains("https://hasura.io/jwt/claims"));
  const json& h = payload["https://hasura.io/jwt/claims"];
  EXPECT_EQ(h["x-hasura-default-role"], "viewer");
  EXPECT_EQ(h["x-hasura-allowed-roles"], json({"viewer", "user"}));
  EXPECT_EQ(h["x-hasura-tenant-id"], "acme");
  EXPECT_EQ(h["x-hasura-user-id"], "bob");
  EXPECT_EQ(payload["sub"], "bob");
  EXPECT_EQ(payload["iss"], "synaps");
  EXPECT_EQ(payload["aud"], "synaps");  // one audience is a plain string, as Hasura expects
  EXPECT_EQ(payload["exp"].get<int64_t>() - payload["iat"].get<int64_t>(), 60);
  EXPECT_TRUE(payload["jti"].is_string());
}

TEST(JwtTest, AllowedRolesAddTheGraphqlRoleForPeopleOnly) {
  EXPECT_EQ(AllowedRolesFor("admin"), (std::vector<std::string>{"admin", "user"}));
  EXPECT_EQ(AllowedRolesFor("operator"), (std::vector<std::string>{"operator", "user"}));
  EXPECT_EQ(AllowedRolesFor("viewer"), (std::vector<std::string>{"viewer", "user"}));
  EXPECT_EQ(AllowedRolesFor("worker"), std::vector<std::string>{"worker"});
  EXPECT_EQ(AllowedRolesFor("user"), std::vector<std::string>{"user"});
  EXPECT_TRUE(IsKnownRole("viewer"));
  EXPECT_FALSE(IsKnownRole("root"));
}

TEST(JwtTest, MatchesRfc7515HmacExample) {
  // RFC 7515 appendix A.1: an externally computed HS256 signature. It verifies, then is refused
  // only because it carries no Hasura claims.
  auto key = Base64UrlDecode(
      "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow");
  ASSERT_TRUE(key);
  std::string token =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
      "cnVlfQ."
      "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  VerifyOptions o;
  o.now = Seconds(seconds(1'300'819'000));
  ExpectRefused(Verify(token, *key, o), "Hasura claims");
  std::string forged = token;
  forged.back() = forged.back() == 'k' ? 'A' : 'k';
  ExpectRefused(Verify(forged, *key, o), "signature does not match");
}

TEST(JwtTest, RefusesAlgNone) {
  json payload = ValidPayload();
  std::string unsigned_token = Base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." +
                               Base64UrlEncode(payload.dump()) + ".";
  ExpectRefused(Verify(unsigned_token, kSecret, At(kNow)), "'none' is refused");
  // Even with a valid-looking signature, and in any letter case.
  ExpectRefused(Verify(SignRaw(R"({"alg":"None"})", payload.dump()), kSecret, At(kNow)),
                "'none' is refused");
}

TEST(JwtTest, RefusesOtherAlgorithms) {
  for (const char* alg : {"HS384", "HS512", "RS256", "ES256", "hs256", "PS256"}) {
    std::string header = json({{"alg", alg}, {"typ", "JWT"}}).dump();
    ExpectRefused(Verify(SignRaw(header, ValidPayload().dump()), kSecret, At(kNow)), "only HS256");
  }
  ExpectRefused(Verify(SignRaw(R"({"typ":"JWT"})", ValidPayload().dump()), kSecret, At(kNow)),
                "no algorithm");
  ExpectRefused(Verify(SignRaw(R"({"alg":256})", ValidPayload().dump()), kSecret, At(kNow)),
                "no algorithm");
}

TEST(JwtTest, RefusesCriticalExtensionsAndWrongType) {
  ExpectRefused(Verify(SignRaw(R"({"alg":"HS256","crit":["exp"]})", ValidPayload().dump()), kSecret,
                       At(kNow)),
                "critical extensions");
  ExpectRefused(Verify(SignRaw(R"({"alg":"HS256","typ":"JOSE+JSON"})", ValidPayload().dump()),
                       kSecret, At(kNow)),
                "typ is not JWT");
}

TEST(JwtTest, RefusesBadSignatures) {
  std::string token = SignRaw(kHs256Header, ValidPayload().dump());
  ASSERT_TRUE(Verify(token, kSecret, At(kNow)));

  ExpectRefused(Verify(token, kSecret + "x", At(kNow)), "signature does not match");

  std::string flipped = token;
  char& last_sig_char = flipped[flipped.size() - 2];
  last_sig_char = last_sig_char == 'A' ? 'B' : 'A';
  ExpectRefused(Verify(flipped, kSecret, At(kNow)), "signature does not match");

  // The payload of one token under the signature of another: a tenant swap.
  json other = ValidPayload();
  other[std::string(kHasuraClaimsNamespace)]["x-hasura-tenant-id"] = "evil";
  size_t a = token.find('.');
  size_t b = token.find('.', a + 1);
  std::string swapped = token.substr(0, a + 1) + Base64UrlEncode(other.dump()) + token.substr(b);
  ExpectRefused(Verify(swapped, kSecret, At(kNow)), "signature does not match");

  std::string truncated = token.substr(0, token.size() - 4);
  ExpectRefused(Verify(truncated, kSecret, At(kNow)), "signature");
  ExpectRefused(Verify(token.substr(0, b + 1), kSecret, At(kNow)), "signature");
}

TEST(JwtTest, RefusesExpiredTokens) {
  std::string token = MintOrDie(NewClaims("acme", "viewer", "a", seconds(60), kNow));
  EXPECT_TRUE(Verify(token, kSecret, At(kNow + seconds(59))));
  ExpectRefused(Verify(token, kSecret, At(kNow + seconds(60))), "expired");
  ExpectRefused(Verify(token, kSecret, At(kNow + seconds(3600))), "expired");
  VerifyOptions lenient = At(kNow + seconds(65));
  lenient.leeway = seconds(10);
  EXPECT_TRUE(Verify(token, kSecret, lenient));
}

TEST(JwtTest, RefusesTokensWithoutExpiry) {
  json payload = ValidPayload();
  payload.erase("exp");
  ExpectRefused(Verify(SignRaw(kHs256Header, payload.dump()), kSecret, At(kNow)), "no expiry");
  payload["exp"] = "tomorrow";
  ExpectRefused(Verify(SignRaw(kHs256Header, payload.dump()), kSecret, At(kNow)), "'exp'");
}

TEST(JwtTest, AcceptsFractionalNumericDates) {
  json payload = ValidPayload();
  payload["exp"] = 1'700'000'100.75;
  auto r = Verify(SignRaw(kHs256Header, payload.dump()), kSecret, At(kNow));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->expires_at, kNow + seconds(100));
}

TEST(JwtTest, RefusesTokensNotYetValid) {
  Claims c = NewClaims("acme", "viewer", "a", seconds(600), kNow);
  c.not_before = kNow + seconds(30);
  std::string token = MintOrDie(c);
  ExpectRefused(Verify(token, kSecret, At(kNow)), "not valid yet");
  auto later = Verify(token, kSecret, At(kNow + seconds(30)));
  ASSERT_TRUE(later) << later.error().message;
  EXPECT_EQ(later->not_before, kNow + seconds(30));
  VerifyOptions lenient = At(kNow + seconds(25));
  lenient.leeway = seconds(5);
  EXPECT_TRUE(Verify(token, kSecret, lenient));
}

TEST(JwtTest, ChecksAudience) {
  Claims c = NewClaims("acme", "viewer", "a", seconds(600), kNow);
  c.audience = {"other-service"};
  ExpectRefused(Verify(MintOrDie(c), kSecret, At(kNow)), "audience does not include 'synaps'");

  c.audience = {"other-service", "synaps"};
  std::string both = MintOrDie(c);
  EXPECT_TRUE(DecodePayload(both)["aud"].is_array());
  EXPECT_TRUE(Verify(both, kSecret, At(kNow)));

  c.audience.clear();
  ExpectRefused(Verify(MintOrDie(c), kSecret, At(kNow)), "audience");

  json payload = ValidPayload();
  payload["aud"] = 7;
  ExpectRefused(Verify(SignRaw(kHs256Header, payload.dump()), kSecret, At(kNow)), "'aud'");

  // Without an expected audience, any is accepted.
  VerifyOptions any = At(kNow);
  any.audience.reset();
  c.audience = {"other-service"};
  EXPECT_TRUE(Verify(MintOrDie(c), kSecret, any));
}

TEST(JwtTest, ChecksIssuer) {
  Claims c = NewClaims("acme", "viewer", "a", seconds(600), kNow);
  c.issuer = "someone-else";
  ExpectRefused(Verify(MintOrDie(c), kSecret, At(kNow)), "issuer 'someone-else' is not 'synaps'");
  c.issuer.clear();
  ExpectRefused(Verify(MintOrDie(c), kSecret, At(kNow)), "no issuer");
  json payload = ValidPayload();
  payload["iss"] = json::array({"synaps"});
  ExpectRefused(Verify(SignRaw(kHs256Header, payload.dump()), kSecret, At(kNow)), "'iss'");
}

TEST(JwtTest, RefusesMalformedTokens) {
  VerifyOptions o = At(kNow);
  ExpectRefused(Verify("", kSecret, o), "empty");
  ExpectRefused(Verify("abc", kSecret, o), "three dot-separated parts");
  ExpectRefused(Verify("a.b", kSecret, o), "three dot-separated parts");
  ExpectRefused(Verify("a.b.c.d", kSecret, o), "three dot-separated parts");
  ExpectRefused(Verify("..", kSecret, o), "header");
  ExpectRefused(Verify("!!!.e30.AAAA", kSecret, o), "header");
  ExpectRefused(Verify(Base64UrlEncode("not json") + ".e30.AAAA", kSecret, o), "header");
  ExpectRefused(Verify(Base64UrlEncode("[1,2]") + ".e30.AAAA", kSecret, o), "header");
  ExpectRefused(Verify(std::string(kMaxTokenBytes + 1, 'a'), kSecret, o), "longer than");

  // Padding and the standard (non-URL) alphabet are not base64url.
  std::string good = SignRaw(kHs256Header, ValidPayload().dump());
  ExpectRefused(Verify(good + "=", kSecret, o), "signature");
  std::string header = Base64UrlEncode(kHs256Header);
  ExpectRefused(Verify(header + "=" + good.substr(header.size()), kSecret, o), "header");

  // A payload that is not a JSON object, correctly signed.
  ExpectRefused(Verify(SignRaw(kHs256Header, "[]"), kSecret, o), "payload");
  ExpectRefused(Verify(SignRaw(kHs256Header, "{\"exp\":"), kSecret, o), "payload");
}

TEST(JwtTest, RefusesTokensWithoutUsableHasuraClaims) {
  const std::string ns(kHasuraClaimsNamespace);
  auto verify = [&](const json& payload) {
    return Verify(SignRaw(kHs256Header, payload.dump()), kSecret, At(kNow));
  };
  json p = ValidPayload();
  p.erase(ns);
  ExpectRefused(verify(p), "Hasura claims");
  p = ValidPayload();
  p[ns] = p[ns].dump();  // stringified JSON is not accepted
  ExpectRefused(verify(p), "Hasura claims");
  p = ValidPayload();
  p[ns].erase("x-hasura-default-role");
  ExpectRefused(verify(p), "x-hasura-default-role");
  p = ValidPayload();
  p[ns]["x-hasura-allowed-roles"] = json::array();
  ExpectRefused(verify(p), "x-hasura-allowed-roles");
  p = ValidPayload();
  p[ns]["x-hasura-allowed-roles"] = {"user"};
  ExpectRefused(verify(p), "not among its allowed roles");
  p = ValidPayload();
  p[ns]["x-hasura-allowed-roles"] = {"viewer", 3};
  ExpectRefused(verify(p), "non-string");
  p = ValidPayload();
  p[ns].erase("x-hasura-tenant-id");
  ExpectRefused(verify(p), "x-hasura-tenant-id");
  p = ValidPayload();
  p[ns]["x-hasura-tenant-id"] = "";
  ExpectRefused(verify(p), "x-hasura-tenant-id");
  p = ValidPayload();
  p["sub"] = 42;
  ExpectRefused(verify(p), "'sub'");
}

TEST(JwtTest, SecretsShorterThan32BytesAreAConfigurationError) {
  Claims c = NewClaims("acme", "viewer", "a", seconds(60), kNow);
  auto minted = Mint(c, "short");
  ASSERT_FALSE(minted);
  EXPECT_EQ(minted.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(minted.error().message.find("32 bytes"), std::string::npos);

  auto verified = Verify(MintOrDie(c), std::string(31, 'x'), At(kNow));
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code, ErrorCode::kInternal);
}

TEST(JwtTest, MintRefusesIncompleteClaims) {
  Claims c = NewClaims("", "viewer", "a", seconds(60), kNow);
  EXPECT_EQ(Mint(c, kSecret).error().field, "tenant_id");
  c = NewClaims("acme", "viewer", "a", seconds(60), kNow);
  c.allowed_roles = {"user"};
  EXPECT_EQ(Mint(c, kSecret).error().field, "allowed_roles");
  c = NewClaims("acme", "viewer", "a", seconds(60), kNow);
  c.expires_at = Seconds{};
  EXPECT_EQ(Mint(c, kSecret).error().field, "expires_at");
}

}  // namespace
TEST(JwtTest, LifetimesBeyondTheMaximumAreRefused) {
  auto verify = [&](const json& payload, std::optional<std::chrono::seconds> max) {
    VerifyOptions o = At(kNow);
    o.max_lifetime = max;
    return Verify(SignRaw(kHs256Header, payload.dump()), kSecret, o);
  };
  const int64_t now = kNow.time_since_epoch().count();
  json p = ValidPayload();
  p["iat"] = now;
  p["exp"] = now + 24 * 3600;
  EXPECT_TRUE(verify(p, std::chrono::hours(24)));
  p["exp"] = now + 24 * 3600 + 1;
  ExpectRefused(verify(p, std::chrono::hours(24)), "SYNAPS_JWT_MAX_TTL");
  EXPECT_TRUE(verify(p, std::nullopt)) << "no maximum, no check";
  // iat that lies about the token's age, or no iat at all: exp - now still counts.
  p["iat"] = now + 10 * 86400;
  p["exp"] = now + 11 * 86400;
  ExpectRefused(verify(p, std::chrono::hours(24)), "too far in the future");
  p.erase("iat");
  ExpectRefused(verify(p, std::chrono::hours(24)), "too far in the future");
  // Times no clock will reach are not numbers of seconds at all.
  p["exp"] = std::numeric_limits<int64_t>::max();
  ExpectRefused(verify(p, std::nullopt), "'exp'");
  p["exp"] = std::numeric_limits<uint64_t>::max();
  ExpectRefused(verify(p, std::nullopt), "'exp'");
}

TEST(JwtTest, ClaimsFollowTheApiKeyGrammar) {
  const std::string ns(kHasuraClaimsNamespace);
  auto verify = [&](const json& payload) {
    return Verify(SignRaw(kHs256Header, payload.dump()), kSecret, At(kNow));
  };
  json p = ValidPayload();
  p[ns]["x-hasura-tenant-id"] = std::string("acme\0zzz", 8);
  ExpectRefused(verify(p), "x-hasura-tenant-id");
  p[ns]["x-hasura-tenant-id"] = "acme corp";
  ExpectRefused(verify(p), "x-hasura-tenant-id");
  p = ValidPayload();
  p[ns]["x-hasura-default-role"] = "god";
  p[ns]["x-hasura-allowed-roles"] = {"god"};
  ExpectRefused(verify(p), "x-hasura-default-role");
  p = ValidPayload();
  p["sub"] = "alice\r\nX-Injected: 1";
  ExpectRefused(verify(p), "'sub'");
  p = ValidPayload();
  p["jti"] = std::string(300, 'j');
  ExpectRefused(verify(p), "'jti'");
}

}  // namespace synaps::auth
