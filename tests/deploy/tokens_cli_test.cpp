// `synaps tokens mint` as an operator runs it: the printed token verifies with the auth library
// (as the API does) and carries its claims where and how Hasura documents them.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "auth/base64url.h"
#include "auth/jwt.h"
#include "core/process.h"
#include "support/scratch_dir.h"

namespace synaps {
namespace {

using nlohmann::json;
using synaps::testing::MakeScratchDir;

const std::string kSecret = "tokens-cli-test-secret-0123456789abcdef";

struct CliResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

CliResult RunSynaps(const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env) {
  static const std::string dir = MakeScratchDir("tokens");
  static int runs = 0;
  std::string log = dir + "/out" + std::to_string(++runs) + ".log";
  ProcessOptions options;
  options.argv = {SYNAPS_BINARY};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.env = env;
  options.log_path = log;
  auto child = ChildProcess::Spawn(options);
  EXPECT_TRUE(child) << child.error().message;
  if (!child) return {};
  auto status = child->Wait(std::chrono::seconds(30));
  EXPECT_TRUE(status) << "synaps did not exit";
  CliResult result;
  if (status && WIFEXITED(*status)) result.exit_code = WEXITSTATUS(*status);
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  result.output = ss.str();
  return result;
}

json DecodeSegment(const std::string& token, int index) {
  size_t start = 0;
  for (int i = 0; i < index; ++i) start = token.find('.', start) + 1;
  size_t end = token.find('.', start);
  auto bytes = auth::Base64UrlDecode(token.substr(start, end - start));
  EXPECT_TRUE(bytes) << token;
  return json::parse(bytes.value_or("null"));
}

TEST(TokensCliTest, MintedTokenVerifiesAndCarriesHasuraClaims) {
  auto r = RunSynaps({"tokens", "mint", "--tenant", "acme", "--role", "operator", "--ttl", "600",
                      "--subject", "alice", "--json"},
                     {{"SYNAPS_JWT_SECRET", kSecret}});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json out = json::parse(r.output);
  std::string token = out["token"];
  EXPECT_EQ(out["tokenType"], "Bearer");
  EXPECT_EQ(out["tenantId"], "acme");
  EXPECT_EQ(out["defaultRole"], "operator");
  EXPECT_EQ(out["allowedRoles"], json({"operator", "user"}));
  EXPECT_EQ(out["expiresIn"], 600);

  // What the API does with a bearer token.
  auth::VerifyOptions options;
  options.issuer = std::string(auth::kDefaultIssuer);
  options.audience = std::string(auth::kDefaultAudience);
  auto claims = auth::Verify(token, kSecret, options);
  ASSERT_TRUE(claims) << claims.error().message;
  EXPECT_EQ(claims->tenant_id, "acme");
  EXPECT_EQ(claims->default_role, "operator");
  EXPECT_EQ(claims->subject, "alice");
  EXPECT_EQ(claims->expires_at - claims->issued_at, std::chrono::seconds(600));
  EXPECT_FALSE(auth::Verify(token, kSecret + "-other", options));

  // What Hasura reads (hasura.io/docs "Authentication using JWT"): HS256; the claims object
  // under "https://hasura.io/jwt/claims" with x-hasura-default-role, x-hasura-allowed-roles (a
  // list containing the default), and our session variables as strings; iss/aud matching the
  // chart's HASURA_GRAPHQL_JWT_SECRET.
  EXPECT_EQ(DecodeSegment(token, 0)["alg"], "HS256");
  json payload = DecodeSegment(token, 1);
  ASSERT_TRUE(payload["https://hasura.io/jwt/claims"].is_object()) << payload.dump();
  const json& hasura = payload["https://hasura.io/jwt/claims"];
  EXPECT_EQ(hasura["x-hasura-default-role"], "operator");
  ASSERT_TRUE(hasura["x-hasura-allowed-roles"].is_array());
  EXPECT_EQ(hasura["x-hasura-allowed-roles"], json({"operator", "user"}));
  EXPECT_EQ(hasura["x-hasura-tenant-id"], "acme");
  EXPECT_EQ(hasura["x-hasura-user-id"], "alice");
  for (const auto& [key, value] : hasura.items()) {
    EXPECT_EQ(key.rfind("x-hasura-", 0), 0u) << key;
    if (key != "x-hasura-allowed-roles") {
      EXPECT_TRUE(value.is_string()) << key;
    }
  }
  EXPECT_EQ(payload["iss"], "synaps");
  EXPECT_EQ(payload["aud"], "synaps");
  EXPECT_TRUE(payload["exp"].is_number_integer());
}

TEST(TokensCliTest, PrintsOnlyTheTokenByDefault) {
  auto r = RunSynaps({"tokens", "mint", "--tenant", "t1", "--role", "user"},
                     {{"SYNAPS_JWT_SECRET", kSecret}});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_FALSE(r.output.empty());
  EXPECT_EQ(r.output.back(), '\n');
  std::string token = r.output.substr(0, r.output.size() - 1);
  EXPECT_EQ(token.find_first_of(" \n"), std::string::npos) << r.output;
  auto claims = auth::Verify(token, kSecret);
  ASSERT_TRUE(claims) << claims.error().message;
  EXPECT_EQ(claims->default_role, "user");
  EXPECT_EQ(claims->allowed_roles, std::vector<std::string>{"user"});
  EXPECT_EQ(claims->expires_at - claims->issued_at, std::chrono::seconds(3600));
}

TEST(TokensCliTest, WorkerTokensCarryOnlyTheWorkerRole) {
  auto r = RunSynaps({"tokens", "mint", "--tenant", "t1", "--role", "worker", "--json"},
                     {{"SYNAPS_JWT_SECRET", kSecret}});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json::parse(r.output)["allowedRoles"], json({"worker"}));
}

TEST(TokensCliTest, MissingSecretIsAClearConfigurationError) {
  auto r = RunSynaps({"tokens", "mint", "--tenant", "t1", "--role", "viewer"},
                     {{"SYNAPS_JWT_SECRET", ""}});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("SYNAPS_JWT_SECRET is not set"), std::string::npos) << r.output;
}

TEST(TokensCliTest, ShortSecretIsRefused) {
  auto r = RunSynaps({"tokens", "mint", "--tenant", "t1", "--role", "viewer"},
                     {{"SYNAPS_JWT_SECRET", "too-short"}});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("at least 32"), std::string::npos) << r.output;
}

TEST(TokensCliTest, UnknownRoleIsRefused) {
  auto r = RunSynaps({"tokens", "mint", "--tenant", "t1", "--role", "root"},
                     {{"SYNAPS_JWT_SECRET", kSecret}});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("root"), std::string::npos) << r.output;
}

TEST(TokensCliTest, NeverMintsBeyondTheMaximumLifetime) {
  // Default SYNAPS_JWT_MAX_TTL: 24 h.
  auto r = RunSynaps({"tokens", "mint", "--tenant", "acme", "--role", "operator", "--ttl",
                      std::to_string(24 * 3600 + 1)},
                     {{"SYNAPS_JWT_SECRET", kSecret}});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("SYNAPS_JWT_MAX_TTL"), std::string::npos) << r.output;
  EXPECT_EQ(RunSynaps({"tokens", "mint", "--tenant", "acme", "--role", "operator", "--ttl",
                       std::to_string(24 * 3600)},
                      {{"SYNAPS_JWT_SECRET", kSecret}})
                .exit_code,
            0);
  auto shorter =
      RunSynaps({"tokens", "mint", "--tenant", "acme", "--role", "operator", "--ttl", "7200"},
                {{"SYNAPS_JWT_SECRET", kSecret}, {"SYNAPS_JWT_MAX_TTL", "1h"}});
  EXPECT_NE(shorter.exit_code, 0) << shorter.output;
}

}  // namespace
}  // namespace synaps
