// Issue #19 items 1, 4 and 5 and the API items of #12 against a real `synaps api`: response
// splitting through an artifact's content type, artifact download headers, strict request
// parsing, floods of invalid tokens, connection and stream caps, JWT lifetimes, claims and
// revocation, PostgreSQL errors kept from clients, EMFILE, graceful stop and shared run feeds.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "auth/base64url.h"
#include "auth/jwt.h"
#include "support/cluster.h"
#include "support/raw_http.h"
#include "support/synaps_process.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;
using testing::CountStatusLines;
using testing::FirstStatus;
using testing::PortOf;
using testing::RawConnection;
using testing::RawExchange;
using Env = std::map<std::string, std::string>;

constexpr const char* kJwtSecret = "an-hs256-secret-of-at-least-32-bytes!!";

json Parse(const http::Response& r) { return json::parse(r.body, nullptr, false); }

std::string ErrorCode(const http::Response& r) {
  auto j = Parse(r);
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

http::Response As(const std::string& base, const std::string& token, const std::string& method,
                  const std::string& path, const std::string& body = {}) {
  return testing::ApiCall(method, base + path, token, body);
}

std::string CreateKey(Cluster& c, const std::string& tenant, const std::string& role) {
  auto r = c.Call("POST", "/v1/api-keys", json{{"tenantId", tenant}, {"role", role}}.dump());
  EXPECT_EQ(r.status, 201) << r.body;
  return Parse(r).value("token", "");
}

// The value of one sample of /metrics ("name{labels}" exactly as rendered); 0 when absent.
double Metric(const std::string& base, const std::string& sample) {
  auto m = http::Send({.url = base + "/metrics"});
  if (!m || m->status != 200) return -1;
  size_t at = m->body.find("\n" + sample + " ");
  if (at == std::string::npos) return 0;
  return std::stod(m->body.substr(at + sample.size() + 2));
}

std::string RawGet(const std::string& base, const std::string& path, const std::string& token) {
  return RawExchange(PortOf(base), "GET " + path +
                                       " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                       "Authorization: Bearer " +
                                       token + "\r\n\r\n");
}

std::string HeaderOf(const std::string& raw, const std::string& name) {
  std::string head = raw.substr(0, raw.find("\r\n\r\n"));
  std::string lowered = head;
  for (auto& ch : lowered) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string want = "\r\n" + name + ": ";
  for (auto& ch : want) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  size_t at = lowered.find(want);
  if (at == std::string::npos) return {};
  size_t start = at + want.size();
  return head.substr(start, head.find("\r\n", start) - start);
}

std::string HmacSha256(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string Jwt(const std::string& tenant, const std::string& role, const std::string& subject,
                std::chrono::seconds ttl, std::string jti = {}) {
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  auto claims = auth::NewClaims(tenant, role, subject, ttl, now);
  if (!jti.empty()) claims.token_id = jti;
  auto t = auth::Mint(claims, kJwtSecret);
  EXPECT_TRUE(t) << t.error().message;
  return t.value_or("");
}

// A queue item claimed by a worker key of the admin's tenant; returns {itemId, leaseEpoch}.
std::pair<int64_t, int64_t> ClaimOne(Cluster& c, const std::string& worker) {
  c.SubmitText("an item for a remote worker");
  auto r = As(c.base_url(), worker, "POST", "/v1/queue/claim", R"({"leaseSeconds":300})");
  EXPECT_EQ(r.status, 200) << r.body;
  json items = Parse(r)["items"];
  EXPECT_EQ(items.size(), 1u) << r.body;
  if (items.empty()) return {0, 0};
  return {items[0]["itemId"].get<int64_t>(), items[0]["leaseEpoch"].get<int64_t>()};
}

http::Response CompleteWith(Cluster& c, const std::string& worker, std::pair<int64_t, int64_t> item,
                            const json& artifacts) {
  return As(c.base_url(), worker, "POST",
            "/v1/queue/items/" + std::to_string(item.first) + "/complete",
            json{{"leaseEpoch", item.second}, {"output", {{"text", "x"}}}, {"artifacts", artifacts}}
                .dump());
}

TEST(ApiGuardTest, AnArtifactContentTypeCannotSplitTheResponse) {
  Cluster c(Env{{"SYNAPS_RATE_LIMIT_RPS", "0"}});
  c.StartApi();
  std::string worker = CreateKey(c, "default", "worker");
  std::string viewer = CreateKey(c, "default", "viewer");
  auto item = ClaimOne(c, worker);
  // The attacks of the issue: refused when stored, naming the field, writing nothing.
  for (const char* type :
       {"text/plain\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n"
        "X-Smuggled: 1\r\n",
        "text/html\r\nSet-Cookie: pwned=1", "text/plain\n", "text/plain\x7f", "a"}) {
    auto r = CompleteWith(c, worker, item,
                          json::array({{{"name", "evil.txt"},
                                        {"contentType", type},
                                        {"content", "<script>alert(1)</script>"}}}));
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(Parse(r)["error"].value("field", ""), "artifacts[0].contentType") << r.body;
  }
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.artifacts"), 0);

  auto done = CompleteWith(
      c, worker, item,
      json::array({{{"name", "page.html"},
                    {"contentType", "text/html; charset=utf-8"},
                    {"content", "<script>document.cookie</script>"}},
                   {{"name", "pic.svg"}, {"contentType", "image/svg+xml"}, {"content", "<svg/>"}},
                   {{"name", "notes.txt"}, {"contentType", "text/plain"}, {"content", "plain"}}}));
  ASSERT_EQ(done.status, 200) << done.body;
  auto artifact = [&](const std::string& name) {
    auto r = c.db().Exec("SELECT id::text FROM synaps.artifacts WHERE name = $1", {name});
    EXPECT_TRUE(r && r->rows() == 1) << name;
    return r && r->rows() == 1 ? r->GetString(0, 0) : std::string();
  };
  for (const char* name : {"page.html", "pic.svg"}) {
    std::string raw =
        RawGet(c.base_url(), "/v1/artifacts/" + artifact(name) + "/versions/1/content", viewer);
    EXPECT_EQ(CountStatusLines(raw), 1) << raw;
    EXPECT_EQ(FirstStatus(raw), 200) << raw;
    EXPECT_EQ(HeaderOf(raw, "X-Content-Type-Options"), "nosniff") << raw;
    EXPECT_EQ(HeaderOf(raw, "Content-Security-Policy"), "sandbox") << raw;
    EXPECT_EQ(HeaderOf(raw, "Content-Disposition"),
              std::string("attachment; filename=\"") + name + "\"")
        << raw;
  }
  std::string plain = RawGet(
      c.base_url(), "/v1/artifacts/" + artifact("notes.txt") + "/versions/1/content", viewer);
  EXPECT_EQ(HeaderOf(plain, "Content-Type"), "text/plain") << plain;
  EXPECT_EQ(HeaderOf(plain, "Content-Disposition"), "") << "text/plain is shown inline";
  EXPECT_EQ(HeaderOf(plain, "Content-Security-Policy"), "sandbox") << plain;

  // PostgreSQL refuses such a type too (migration 0013), and a row written before the check
  // is served as bytes, never echoed.
  EXPECT_FALSE(
      c.db().Exec("UPDATE synaps.artifacts SET content_type = 'text/html' || chr(13) ||"
                  " chr(10) || 'Set-Cookie: pwned=1' WHERE name = 'notes.txt'"));
  ASSERT_TRUE(
      c.db().Exec("ALTER TABLE synaps.artifacts DROP CONSTRAINT "
                  "artifacts_content_type_is_media_type"));
  ASSERT_TRUE(
      c.db().Exec("UPDATE synaps.artifacts SET content_type = 'text/html' || chr(13) ||"
                  " chr(10) || 'Set-Cookie: pwned=1' WHERE name = 'notes.txt'"));
  std::string legacy = RawGet(
      c.base_url(), "/v1/artifacts/" + artifact("notes.txt") + "/versions/1/content", viewer);
  EXPECT_EQ(CountStatusLines(legacy), 1) << legacy;
  EXPECT_EQ(HeaderOf(legacy, "Set-Cookie"), "") << legacy;
  EXPECT_EQ(HeaderOf(legacy, "Content-Type"), "application/octet-stream") << legacy;
  EXPECT_EQ(HeaderOf(legacy, "Content-Disposition"), "attachment; filename=\"notes.txt\"");
}

TEST(ApiGuardTest, RequestsAreParsedStrictly) {
  Cluster c(Env{{"SYNAPS_RATE_LIMIT_RPS", "0"}});
  c.StartApi();
  const uint16_t port = PortOf(c.base_url());
  const std::string auth = std::string("Authorization: Bearer ") + Cluster::kToken + "\r\n";
  auto send = [&](const std::string& raw) { return RawExchange(port, raw); };
  EXPECT_EQ(FirstStatus(
                send("GET /v1/runs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth + "\r\n")),
            200);
  // The first character of the target is not dropped: Xv1/runs is not /v1/runs.
  std::string x = send("GET Xv1/runs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth + "\r\n");
  EXPECT_EQ(FirstStatus(x), 400) << x;
  EXPECT_EQ(FirstStatus(send("GET /v1/runs HTTP/1.1\r\nConnection: close\r\n" + auth + "\r\n")),
            400)
      << "HTTP/1.1 without Host";
  std::string smuggle = send(
      "POST /v1/commands/submit HTTP/1.1\r\nHost: x\r\n" + auth +
      "Content-Type: application/json\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n"
      "{}\r\nGET /v1/runs HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(FirstStatus(smuggle), 400) << smuggle;
  EXPECT_EQ(CountStatusLines(smuggle), 1) << "nothing after the refused request is served";
  EXPECT_EQ(FirstStatus(send("POST /v1/commands/submit HTTP/1.1\r\nHost: x\r\n" + auth +
                             "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")),
            501);
  // Refused from the declared length, before the body: the submit route allows a batch body up
  // to SYNAPS_BATCH_BODY_LIMIT_BYTES (16 MiB), every other route SYNAPS_BODY_LIMIT_BYTES.
  std::string big = send("POST /v1/commands/submit HTTP/1.1\r\nHost: x\r\n" + auth +
                         "Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n{");
  EXPECT_EQ(FirstStatus(big), 413) << big;
  EXPECT_NE(big.find("\"code\":\"payload_too_large\""), std::string::npos) << big;
  std::string big_other =
      send("POST /v1/runs/cancel HTTP/1.1\r\nHost: x\r\n" + auth +
           "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{");
  EXPECT_EQ(FirstStatus(big_other), 413) << big_other;
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.commands"), 0);
}

TEST(ApiGuardTest, LargeBodiesNeedCredentialsAndAreCapped) {
  Cluster c(Env{{"SYNAPS_RATE_LIMIT_RPS", "0"}, {"SYNAPS_API_MAX_LARGE_BODIES", "2"}});
  c.StartApi();
  const uint16_t port = PortOf(c.base_url());
  const std::string auth = std::string("Authorization: Bearer ") + Cluster::kToken + "\r\n";
  const std::string large_head =
      "POST /v1/commands/submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 3000000\r\n";
  // Without credentials the batch route's larger limit is not granted: refused before the body.
  std::string anonymous = RawExchange(port, large_head + "\r\n{");
  EXPECT_EQ(FirstStatus(anonymous), 401) << anonymous;
  EXPECT_NE(anonymous.find("\"code\":\"unauthenticated\""), std::string::npos) << anonymous;
  // Two large bodies may be read at once; the third waits for neither and is told to retry.
  RawConnection first(port), second(port);
  ASSERT_TRUE(first.Send(large_head + auth + "\r\n{\"commands\": ["));
  ASSERT_TRUE(second.Send(large_head + auth + "\r\n{\"commands\": ["));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::string third = RawExchange(port, large_head + auth + "\r\n{");
  EXPECT_EQ(FirstStatus(third), 503) << third;
  EXPECT_NE(third.find("too_many_large_requests"), std::string::npos) << third;
  // A small body on the same route is not held back by the cap.
  std::string small_body = R"({"commands":[]})";
  std::string small =
      RawExchange(port, "POST /v1/commands/submit HTTP/1.1\r\nHost: x\r\n" + auth +
                            "Connection: close\r\nContent-Type: application/json\r\n"
                            "Content-Length: " +
                            std::to_string(small_body.size()) + "\r\n\r\n" + small_body);
  EXPECT_NE(FirstStatus(small), 503) << small;
  // A closed connection frees its slot.
  first.Close();
  EXPECT_TRUE(testing::Eventually([&] {
    RawConnection again(port);
    again.Send(large_head + auth + "\r\n{");
    return FirstStatus(again.ReadUntil("\r\n", std::chrono::milliseconds(500))) != 503;
  }));
}

TEST(ApiGuardTest, PostgresErrorsNeverReachTheClient) {
  Cluster c(Env{{"SYNAPS_RATE_LIMIT_RPS", "0"}});
  c.StartApi();
  int reached_postgres = 0;
  for (const char* query : {"/v1/runs?text=a%00b", "/v1/runs?createdAfter=2026-02-30T00:00:00Z",
                            "/v1/runs?createdAfter=99999-01-01T00:00:00Z", "/v1/runs?tag=%C3%28"}) {
    auto r = c.Call("GET", query);
    if (r.status == 200) continue;
    for (const char* leak : {"SQLSTATE", "UTF8", "invalid byte", "PostgreSQL", "22P05", "22008",
                             "22021", "out of range", "syntax"}) {
      EXPECT_EQ(r.body.find(leak), std::string::npos)
          << query << " leaked " << leak << ": " << r.body;
    }
    if (r.body.find("(request ") != std::string::npos) ++reached_postgres;
  }
  EXPECT_GE(reached_postgres, 1) << "no case reached PostgreSQL: the test proves nothing";
  EXPECT_NE(testing::ReadFile(c.api_log()).find("failed in PostgreSQL"), std::string::npos)
      << "the detail is logged with the request id";
}

TEST(ApiGuardTest, AFloodOfInvalidTokensIsLimitedByAddressAndCostsNoLookups) {
  Cluster c(Env{{"SYNAPS_RATE_LIMIT_RPS", "0"},
                {"SYNAPS_API_ADDRESS_RPS", "2"},
                {"SYNAPS_API_ADDRESS_BURST", "20"}});
  c.StartApi();
  int limited = 0, unauthorized = 0;
  for (int i = 0; i < 120; ++i) {
    auto r = As(c.base_url(), "sk_" + std::to_string(i) + "_not_a_key", "GET", "/v1/runs");
    if (r.status == 429) {
      ++limited;
      EXPECT_EQ(ErrorCode(r), "rate_limited");
      EXPECT_FALSE(r.headers["retry-after"].empty());
    }
    unauthorized += r.status == 401;
  }
  EXPECT_GE(limited, 90);
  EXPECT_LE(unauthorized, 30);
  EXPECT_LE(Metric(c.base_url(), "synaps_api_authentications_total{via=\"database\"}"), 30)
      << "tokens refused by the address limit cost no lookup";
  EXPECT_GE(Metric(c.base_url(), "synaps_api_refused_total{reason=\"rate_address\"}"), 90);
}

TEST(ApiGuardTest, ARepeatedInvalidTokenIsLookedUpOnce) {
  Cluster c(Env{{"SYNAPS_RATE_LIMIT_RPS", "0"}, {"SYNAPS_API_ADDRESS_RPS", "0"}});
  c.StartApi();
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(As(c.base_url(), "sk_the_same_bad_token", "GET", "/v1/runs").status, 401);
  }
  EXPECT_EQ(Metric(c.base_url(), "synaps_api_authentications_total{via=\"database\"}"), 1);
  EXPECT_EQ(Metric(c.base_url(), "synaps_api_authentications_total{via=\"negative_cache\"}"), 49);
}

TEST(ApiGuardTest, RateLimitsArePerTenantAndSubject) {
  Cluster c(Env{{"SYNAPS_JWT_SECRET", kJwtSecret},
                {"SYNAPS_RATE_LIMIT_RPS", "1"},
                {"SYNAPS_RATE_LIMIT_BURST", "3"}});
  c.StartApi();
  auto hits = [&](const std::string& token) {
    int limited = 0;
    for (int i = 0; i < 5; ++i) limited += As(c.base_url(), token, "GET", "/v1/runs").status == 429;
    return limited;
  };
  // carol of tenant ta does not throttle carol of tenant tb.
  EXPECT_GE(hits(Jwt("ta", "viewer", "carol", std::chrono::seconds(300))), 2);
  EXPECT_EQ(
      As(c.base_url(), Jwt("tb", "viewer", "carol", std::chrono::seconds(300)), "GET", "/v1/runs")
          .status,
      200);
  // Tokens without sub share their tenant and role's bucket: a fresh jti is no fresh bucket.
  EXPECT_GE(hits(Jwt("tc", "viewer", "", std::chrono::seconds(300))), 2);
  EXPECT_EQ(As(c.base_url(), Jwt("tc", "viewer", "", std::chrono::seconds(300)), "GET", "/v1/runs")
                .status,
            429);
}

TEST(ApiGuardTest, ConnectionsAreCappedPerAddressAndInTotal) {
  Cluster c(Env{{"SYNAPS_API_MAX_CONNECTIONS_PER_ADDRESS", "3"}});
  c.StartApi();
  const uint16_t port = PortOf(c.base_url());
  {
    // The readiness probe's connection may still be closing: hold three once all are admitted.
    std::vector<std::unique_ptr<RawConnection>> held;
    ASSERT_TRUE(testing::Eventually([&] {
      held.clear();
      bool admitted = true;
      for (int i = 0; i < 3; ++i) {
        held.push_back(std::make_unique<RawConnection>(port));
        held.back()->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        admitted = FirstStatus(held.back()->ReadUntil("\"ok\"")) == 200 && admitted;
      }
      return admitted;
    }));
    std::string refused = RawExchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(FirstStatus(refused), 429) << refused;
    EXPECT_NE(refused.find("too_many_connections"), std::string::npos) << refused;
  }
  // Closed connections free their slots; the refusal was counted.
  EXPECT_TRUE(testing::Eventually(
      [&] {
        return Metric(c.base_url(),
                      "synaps_api_refused_total{reason=\"connections_per_address\"}") >= 1;
      },
      10));

  Cluster t(Env{{"SYNAPS_API_MAX_CONNECTIONS", "2"}});
  t.StartApi();
  const uint16_t tport = PortOf(t.base_url());
  // The readiness probe's connection may still be closing: hold two once both are admitted.
  std::unique_ptr<RawConnection> a, b;
  ASSERT_TRUE(testing::Eventually(
      [&] {
        a = std::make_unique<RawConnection>(tport);
        b = std::make_unique<RawConnection>(tport);
        a->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        b->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        return FirstStatus(a->ReadUntil("\r\n\r\n")) == 200 &&
               FirstStatus(b->ReadUntil("\r\n\r\n")) == 200;
      },
      10));
  std::string full = RawExchange(tport, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(FirstStatus(full), 503) << full;
}

TEST(ApiGuardTest, EventStreamsAreCappedPerPrincipalAndFreedWhenClosed) {
  Cluster c(Env{{"SYNAPS_RATE_LIMIT_RPS", "0"}, {"SYNAPS_API_MAX_STREAMS_PER_PRINCIPAL", "2"}});
  c.StartApi();  // no worker: the run stays queued, its stream open
  std::string run = c.SubmitText("followed")["runId"];
  const uint16_t port = PortOf(c.base_url());
  const std::string request = "GET /v1/runs/" + run + "/events HTTP/1.1\r\nHost: x\r\n" +
                              "Authorization: Bearer " + Cluster::kToken + "\r\n\r\n";
  auto first = std::make_unique<RawConnection>(port);
  RawConnection second(port);
  ASSERT_TRUE(first->Send(request));
  ASSERT_TRUE(second.Send(request));
  EXPECT_EQ(FirstStatus(first->ReadUntil("event: ")), 200);
  EXPECT_EQ(FirstStatus(second.ReadUntil("event: ")), 200);
  std::string third = RawExchange(port, request, std::chrono::seconds(3));
  EXPECT_EQ(FirstStatus(third), 429) << third;
  EXPECT_NE(third.find("too_many_streams"), std::string::npos) << third;
  // Another principal is not affected.
  std::string viewer = CreateKey(c, "default", "viewer");
  RawConnection other(port);
  ASSERT_TRUE(other.Send("GET /v1/runs/" + run + "/events HTTP/1.1\r\nHost: x\r\n" +
                         "Authorization: Bearer " + viewer + "\r\n\r\n"));
  EXPECT_EQ(FirstStatus(other.ReadUntil("event: ")), 200);
  // A closed stream gives its slot back at once, not at its next write.
  first.reset();
  std::string again;
  EXPECT_TRUE(testing::Eventually(
      [&] {
        RawConnection retry(port);
        retry.Send(request);
        again = retry.ReadUntil("\r\n\r\n", std::chrono::seconds(2));
        return FirstStatus(again) == 200;
      },
      2))
      << again;
  EXPECT_GE(Metric(c.base_url(), "synaps_api_refused_total{reason=\"streams_per_principal\"}"), 1);
}

TEST(ApiGuardTest, JwtLifetimesAndClaimsAreBounded) {
  Cluster c(Env{{"SYNAPS_JWT_SECRET", kJwtSecret}, {"SYNAPS_RATE_LIMIT_RPS", "0"}});
  c.StartApi();
  auto status = [&](const std::string& token) {
    return As(c.base_url(), token, "GET", "/v1/runs").status;
  };
  EXPECT_EQ(status(Jwt("ta", "viewer", "a", std::chrono::hours(24))), 200);
  auto too_long =
      As(c.base_url(), Jwt("ta", "viewer", "a", std::chrono::hours(25)), "GET", "/v1/runs");
  EXPECT_EQ(too_long.status, 401);
  EXPECT_NE(too_long.body.find("SYNAPS_JWT_MAX_TTL"), std::string::npos) << too_long.body;
  EXPECT_EQ(status(Jwt("ta", "viewer", "a", std::chrono::hours(24 * 365 * 100))), 401);
  // exp of INT64_MAX, and exp far away without iat.
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  std::string payload = R"({"sub":"a","iss":"synaps","aud":"synaps","exp":9223372036854775807,)"
                        R"("https://hasura.io/jwt/claims":{"x-hasura-default-role":"viewer",)"
                        R"("x-hasura-allowed-roles":["viewer"],"x-hasura-tenant-id":"ta"}})";
  auto sign = [&](const std::string& body) {
    // Mint cannot write these payloads: sign by hand, as an attacker holding no secret cannot,
    // but a careless issuer could.
    auto header = auth::Base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})");
    auto p = auth::Base64UrlEncode(body);
    return header + "." + p + "." + auth::Base64UrlEncode(HmacSha256(kJwtSecret, header + "." + p));
  };
  EXPECT_EQ(status(sign(payload)), 401);
  std::string far = payload;
  far.replace(far.find("9223372036854775807"), 19,
              std::to_string(now.time_since_epoch().count() + 100 * 86400));
  EXPECT_EQ(status(sign(far)), 401) << "no iat, exp 100 days away";
  // A tenant claim with NUL does not act as its prefix; roles and tenants follow the key grammar.
  EXPECT_EQ(status(Jwt(std::string("ta\0zzz", 6), "viewer", "a", std::chrono::seconds(60))), 401);
  EXPECT_EQ(status(Jwt("ta tb", "viewer", "a", std::chrono::seconds(60))), 401);
  std::string good = far;
  good.replace(good.find(std::to_string(now.time_since_epoch().count() + 100 * 86400)), 10,
               std::to_string(now.time_since_epoch().count() + 600));
  EXPECT_EQ(status(sign(good)), 200) << "the hand-signed form itself is accepted";
  std::string role = good;
  role.replace(role.find(R"("x-hasura-default-role":"viewer")"), 32,
               R"("x-hasura-default-role":"god")");
  role.replace(role.find(R"(["viewer"])"), 10, R"(["god"])");
  EXPECT_EQ(status(sign(role)), 401);

  // A lower SYNAPS_JWT_MAX_TTL on another API process.
  std::string strict = c.StartExtraApi({{"SYNAPS_JWT_MAX_TTL", "1h"}});
  EXPECT_EQ(As(strict, Jwt("ta", "viewer", "a", std::chrono::hours(2)), "GET", "/v1/runs").status,
            401);
  EXPECT_EQ(
      As(strict, Jwt("ta", "viewer", "a", std::chrono::minutes(59)), "GET", "/v1/runs").status,
      200);
}

TEST(ApiGuardTest, RevokedJwtsAreRefusedEverywhere) {
  Cluster c(Env{{"SYNAPS_JWT_SECRET", kJwtSecret},
                {"SYNAPS_RATE_LIMIT_RPS", "0"},
                {"SYNAPS_API_REVOCATION_REFRESH_MS", "300"}});
  c.StartApi();
  std::string other = c.StartExtraApi();
  std::string token = Jwt("ta", "operator", "mallory", std::chrono::hours(1), "jti-to-revoke");
  EXPECT_EQ(As(c.base_url(), token, "GET", "/v1/runs").status, 200);
  EXPECT_EQ(As(other, token, "GET", "/v1/runs").status, 200);
  // Only an installation admin may revoke.
  std::string tenant_admin = CreateKey(c, "ta", "admin");
  auto denied =
      As(c.base_url(), tenant_admin, "POST", "/v1/auth/revocations", R"({"jti":"jti-to-revoke"})");
  EXPECT_EQ(denied.status, 403) << denied.body;
  EXPECT_EQ(
      As(c.base_url(), token, "POST", "/v1/auth/revocations", R"({"jti":"jti-to-revoke"})").status,
      403);
  auto exp = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count() +
             3600;
  auto revoked = c.Call("POST", "/v1/auth/revocations",
                        json{{"jti", "jti-to-revoke"}, {"exp", exp}, {"reason", "leaked"}}.dump());
  ASSERT_EQ(revoked.status, 201) << revoked.body;
  auto refused = As(c.base_url(), token, "GET", "/v1/runs");
  EXPECT_EQ(refused.status, 401) << "at once on the process that revoked it";
  EXPECT_NE(refused.body.find("revoked"), std::string::npos) << refused.body;
  EXPECT_TRUE(
      testing::Eventually([&] { return As(other, token, "GET", "/v1/runs").status == 401; }, 5))
      << "and within the refresh on every other";
  // Other tokens are untouched; the audit log names the revocation.
  EXPECT_EQ(
      As(c.base_url(), Jwt("ta", "operator", "mallory", std::chrono::hours(1)), "GET", "/v1/runs")
          .status,
      200);
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.audit_log WHERE action = 'token.revoke'"), 1);
  EXPECT_EQ(c.Call("POST", "/v1/auth/revocations", R"({"jti":""})").status, 400);
  // Entries past their token's expiry are deleted by the next process that loads the list.
  ASSERT_TRUE(
      c.db().Exec("INSERT INTO synaps.revoked_tokens (jti, expires_at, revoked_by)"
                  " VALUES ('long-gone', now() - interval '1 hour', 'test')"));
  std::string third = c.StartExtraApi();
  EXPECT_EQ(As(third, Jwt("ta", "viewer", "x", std::chrono::hours(1)), "GET", "/v1/runs").status,
            200);
  EXPECT_TRUE(testing::Eventually(
      [&] {
        return c.Scalar("SELECT count(*) FROM synaps.revoked_tokens WHERE jti = 'long-gone'") == 0;
      },
      10));
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.revoked_tokens"), 1);
}

// CPU seconds (user + system) the process has used so far.
double CpuSeconds(pid_t pid) {
  std::string stat = testing::ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

TEST(ApiGuardTest, RunningOutOfFileDescriptorsBacksOffAndRecovers) {
  Cluster c(Env{{"SYNAPS_RATE_LIMIT_RPS", "0"},
                {testing::kNofileLimitEnv, "96"},
                {"SYNAPS_DB_POOL_SIZE", "2"}});
  c.StartApi();
  const uint16_t port = PortOf(c.base_url());
  std::vector<std::unique_ptr<RawConnection>> flood;
  for (int i = 0; i < 200; ++i) {
    flood.push_back(std::make_unique<RawConnection>(port));
    ASSERT_TRUE(flood.back()->connected()) << "connection " << i;
  }
  // The server has hit EMFILE with connections still waiting in the backlog: without a pause
  // accept() fails at once, forever, and the loop spins a core.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  double before = CpuSeconds(c.api().pid());
  std::this_thread::sleep_for(std::chrono::seconds(3));
  double used = CpuSeconds(c.api().pid()) - before;
  EXPECT_LT(used, 0.6) << "the API used " << used << " s of CPU in 3 s while out of descriptors";
  flood.clear();
  // Recovers by itself once descriptors are free again.
  testing::WaitUntilReady(c.base_url(), 20);
  EXPECT_GE(Metric(c.base_url(), "synaps_api_accept_errors_total"), 1);
  EXPECT_NE(testing::ReadFile(c.api_log()).find("accept failed"), std::string::npos);
}

TEST(ApiGuardTest, SigtermFinishesResponsesInFlight) {
  Cluster c(Env{{"SYNAPS_RATE_LIMIT_RPS", "0"}, {"SYNAPS_API_DRAIN_MS", "10000"}});
  c.StartApi();
  std::string key = CreateKey(c, "default", "viewer");
  // Hold the API key table so the request's authentication waits in PostgreSQL.
  ASSERT_TRUE(c.db().Exec("BEGIN"));
  ASSERT_TRUE(c.db().Exec("LOCK TABLE synaps.api_keys IN ACCESS EXCLUSIVE MODE"));
  auto inflight = std::async(std::launch::async, [&] {
    return RawExchange(
        PortOf(c.base_url()),
        "GET /v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key + "\r\n\r\n",
        std::chrono::seconds(20));
  });
  EXPECT_TRUE(testing::Eventually(
      [&] {
        // pg_locks is read live (pg_stat_activity would be a snapshot inside this transaction).
        return c.Scalar("SELECT count(*) FROM pg_locks WHERE NOT granted") > 0;
      },
      10));
  c.api().Signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_TRUE(c.api().running()) << "stopped before its response in flight was written";
  ASSERT_TRUE(c.db().Exec("COMMIT"));
  std::string out = inflight.get();
  EXPECT_EQ(FirstStatus(out), 200) << out;
  EXPECT_NE(out.find("Connection: close"), std::string::npos) << out;
  auto code = c.api().Wait(std::chrono::seconds(15));
  ASSERT_TRUE(code.has_value()) << "the API did not exit after draining";
  EXPECT_EQ(*code, 0);
}

TEST(ApiGuardTest, FollowersOfARunShareOneFeed) {
  Cluster c(Env{{"SYNAPS_RATE_LIMIT_RPS", "0"}, {"SYNAPS_API_MAX_STREAMS_PER_PRINCIPAL", "1000"}});
  c.StartApi();
  c.StartWorker({{"SYNAPS_LOCAL_LATENCY_MS", "3000"}});
  const uint16_t port = PortOf(c.base_url());
  auto follow = [&](int followers) {
    std::string run = c.SubmitText("followed by " + std::to_string(followers))["runId"];
    std::string request = "GET /v1/runs/" + run + "/events HTTP/1.1\r\nHost: x\r\n" +
                          "Authorization: Bearer " + Cluster::kToken + "\r\n\r\n";
    double before = Metric(c.base_url(), "synaps_api_event_feed_queries_total");
    std::vector<std::unique_ptr<RawConnection>> streams;
    for (int i = 0; i < followers; ++i) {
      streams.push_back(std::make_unique<RawConnection>(port));
      EXPECT_TRUE(streams.back()->Send(request));
    }
    int ended = 0;
    for (auto& s : streams) {
      ended += s->ReadUntil("event: end", std::chrono::seconds(60)).find("event: end") !=
               std::string::npos;
    }
    EXPECT_EQ(ended, followers);
    return Metric(c.base_url(), "synaps_api_event_feed_queries_total") - before;
  };
  double one = follow(1);
  double many = follow(200);
  EXPECT_GE(one, 5) << "a 3 s run polled every 200 ms";
  EXPECT_LE(many, one * 2 + 10) << "200 followers made " << many << " queries, one made " << one;
}

TEST(ApiGuardTest, FollowersOfATenantFeedShareIt) {
  Cluster c(Env{{"SYNAPS_RATE_LIMIT_RPS", "0"}, {"SYNAPS_API_MAX_STREAMS_PER_PRINCIPAL", "1000"}});
  c.StartApi();
  c.StartWorker({{"SYNAPS_LOCAL_LATENCY_MS", "1500"}});
  const uint16_t port = PortOf(c.base_url());
  auto watch = [&](int followers) {
    double before = Metric(c.base_url(), "synaps_api_event_feed_queries_total");
    std::vector<std::unique_ptr<RawConnection>> streams;
    for (int i = 0; i < followers; ++i) {
      streams.push_back(std::make_unique<RawConnection>(port));
      EXPECT_TRUE(
          streams.back()->Send("GET /v1/events HTTP/1.1\r\nHost: x\r\n"
                               "Authorization: Bearer " +
                               std::string(Cluster::kToken) + "\r\n\r\n"));
    }
    for (auto& s : streams)
      EXPECT_NE(s->ReadUntil("event: ready").find("event: ready"), std::string::npos);
    std::string run = c.SubmitText("watched by " + std::to_string(followers))["runId"];
    int saw = 0;
    for (auto& s : streams) {
      std::string got = s->ReadUntil("\"runStatus\":\"succeeded\"", std::chrono::seconds(30));
      saw += got.find(run) != std::string::npos &&
             got.find("\"runStatus\":\"succeeded\"") != std::string::npos;
    }
    EXPECT_EQ(saw, followers);
    return Metric(c.base_url(), "synaps_api_event_feed_queries_total") - before;
  };
  double one = watch(1);
  double many = watch(100);
  EXPECT_GE(one, 2);
  EXPECT_LE(many, one * 3 + 10) << "100 followers made " << many << " queries, one made " << one;
}

}  // namespace
}  // namespace synaps
