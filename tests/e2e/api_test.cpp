// The Control API through a real `synaps api` process: keys and tenants, JWTs, hostile input
// (nothing written), rate limits, listing and paging, threads, live events, metrics.
#include <curl/curl.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "auth/base64url.h"
#include "auth/jwt.h"
#include "support/cluster.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;

constexpr const char* kJwtSecret = "an-hs256-secret-of-at-least-32-bytes!!";

http::Response As(Cluster& c, const std::string& token, const std::string& method,
                  const std::string& path, const std::string& body = {},
                  std::vector<std::string> headers = {}) {
  http::RequestOptions req{.method = method, .url = c.base_url() + path};
  if (!token.empty()) req.headers.push_back("Authorization: Bearer " + token);
  if (!body.empty()) req.headers.push_back("Content-Type: application/json");
  for (auto& h : headers) req.headers.push_back(h);
  req.body = body;
  auto r = http::Send(req);
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : http::Response{};
}

std::string ErrorCode(const http::Response& r) {
  auto j = json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

json CreateKey(Cluster& c, const std::string& tenant, const std::string& role) {
  auto r = c.Call("POST", "/v1/api-keys", json{{"tenantId", tenant}, {"role", role}}.dump());
  EXPECT_EQ(r.status, 201) << r.body;
  return json::parse(r.body);
}

json WaitAs(Cluster& c, const std::string& token, const std::string& run) {
  json out;
  EXPECT_TRUE(testing::Eventually([&] {
    out = json::parse(As(c, token, "GET", "/v1/runs/" + run).body, nullptr, false);
    std::string s = out.is_object() ? out.value("status", "") : "";
    return s == "succeeded" || s == "failed" || s == "cancelled";
  })) << out.dump();
  return out;
}

std::string SubmitAs(Cluster& c, const std::string& token, const std::string& text) {
  auto r = As(c, token, "POST", "/v1/commands/submit",
              json{{"kind", "prompt"}, {"input", {{"text", text}}}}.dump());
  EXPECT_EQ(r.status, 201) << r.body;
  return json::parse(r.body)["runId"];
}

class ApiTest : public ::testing::Test {
 protected:
  ApiTest() : c_({{"SYNAPS_JWT_SECRET", kJwtSecret}, {"SYNAPS_RATE_LIMIT_RPS", "0"}}) {}
  void SetUp() override {
    c_.StartApi();
    c_.StartWorker();
  }
  Cluster c_;
};

TEST_F(ApiTest, TenantsCannotSeeEachOthersRunsEventsOrArtifacts) {
  std::string alice = CreateKey(c_, "alice", "operator")["token"];
  std::string bob = CreateKey(c_, "bob", "operator")["token"];
  std::string run = SubmitAs(c_, alice, "alice's secret");
  json done = WaitAs(c_, alice, run);
  ASSERT_EQ(done["status"], "succeeded");
  std::string artifact = done["artifacts"][0]["id"];
  std::string thread = done["threadId"];

  EXPECT_EQ(As(c_, alice, "GET", "/v1/runs/" + run).status, 200);
  EXPECT_EQ(As(c_, bob, "GET", "/v1/runs/" + run).status, 404);
  EXPECT_EQ(As(c_, bob, "GET", "/v1/runs/" + run + "/events").status, 404);
  EXPECT_EQ(As(c_, bob, "GET", "/v1/threads/" + thread).status, 404);
  EXPECT_EQ(As(c_, bob, "GET", "/v1/artifacts/" + artifact + "/versions/1/content").status, 404);
  EXPECT_EQ(As(c_, bob, "POST", "/v1/runs/" + run + "/cancel").status, 404);
  auto bobs = json::parse(As(c_, bob, "GET", "/v1/runs").body);
  EXPECT_TRUE(bobs["items"].empty());
  // Continuing another tenant's thread is refused too.
  auto steal = As(c_, bob, "POST", "/v1/commands/submit",
                  json{{"kind", "prompt"}, {"input", {{"text", "x"}}}, {"threadId", thread}}.dump());
  EXPECT_EQ(steal.status, 404);
  auto body = As(c_, alice, "GET", "/v1/artifacts/" + artifact + "/versions/1/content");
  EXPECT_EQ(body.body, "alice's secret");
}

TEST_F(ApiTest, KeysAreShownOnceStoredHashedRoleLimitedAndRevocable) {
  json viewer = CreateKey(c_, "acme", "viewer");
  std::string token = viewer["token"];
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.api_keys WHERE hash = $1", {token}), 0)
      << "the token itself must not be stored";
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.audit_log WHERE action = 'api_key.create'"), 1);
  EXPECT_EQ(As(c_, token, "GET", "/v1/runs").status, 200);
  auto denied = As(c_, token, "POST", "/v1/commands/submit",
                   json{{"kind", "prompt"}, {"input", {{"text", "no"}}}}.dump());
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(ErrorCode(denied), "permission_denied");
  EXPECT_EQ(As(c_, token, "POST", "/v1/api-keys", R"({"role":"admin"})").status, 403);
  // A tenant admin may not mint keys for another tenant.
  std::string acme_admin = CreateKey(c_, "acme", "admin")["token"];
  EXPECT_EQ(As(c_, acme_admin, "POST", "/v1/api-keys", R"({"role":"viewer","tenantId":"other"})")
                .status,
            403);
  auto revoked = c_.Call("DELETE", "/v1/api-keys/" + viewer["id"].get<std::string>());
  EXPECT_EQ(revoked.status, 200) << revoked.body;
  auto after = As(c_, token, "GET", "/v1/runs");
  EXPECT_EQ(after.status, 401);
  EXPECT_NE(after.headers["www-authenticate"].find("Bearer"), std::string::npos);
  EXPECT_EQ(c_.Call("DELETE", "/v1/api-keys/" + viewer["id"].get<std::string>()).status, 404);
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM synaps.audit_log WHERE action = 'api_key.revoke'"), 1);
}

TEST_F(ApiTest, TokensOnlyFromTheAuthorizationHeader) {
  auto r = As(c_, "", "GET", std::string("/v1/runs?access_token=") + Cluster::kToken);
  EXPECT_EQ(r.status, 401) << "a token in the query string is never read";
  auto r2 = As(c_, "", "GET", "/v1/runs", "", {std::string("X-Api-Key: ") + Cluster::kToken});
  EXPECT_EQ(r2.status, 401);
  EXPECT_EQ(As(c_, "", "GET", "/v1/runs", "", {"Authorization: Basic abc"}).status, 401);
}

std::string Jwt(const std::string& tenant, const std::string& role, std::chrono::seconds ttl,
                const std::string& secret = kJwtSecret) {
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  auto claims = auth::NewClaims(tenant, role, "tester", ttl, now);
  auto t = auth::Mint(claims, secret);
  EXPECT_TRUE(t) << t.error().message;
  return *t;
}

TEST_F(ApiTest, JwtsWithHasuraClaimsAreAcceptedAndBadOnesRefused) {
  std::string good = Jwt("jwt-tenant", "operator", std::chrono::seconds(300));
  std::string run = SubmitAs(c_, good, "via jwt");
  EXPECT_EQ(WaitAs(c_, good, run)["status"], "succeeded");
  // The JWT's tenant owns the run: the bootstrap admin (tenant "default") lists it only when
  // it asks for that tenant (the installation scope reads every tenant's runs, docs/api.md).
  auto own = json::parse(c_.Call("GET", "/v1/runs").body)["items"];
  for (const auto& i : own) EXPECT_NE(i["id"], run);
  auto owner = c_.Call("GET", "/v1/runs/" + run);
  ASSERT_EQ(owner.status, 200) << owner.body;
  EXPECT_EQ(json::parse(owner.body)["tenantId"], "jwt-tenant");

  std::string expired = Jwt("jwt-tenant", "operator", std::chrono::seconds(-10));
  EXPECT_EQ(As(c_, expired, "GET", "/v1/runs").status, 401);
  std::string wrong_key = Jwt("jwt-tenant", "operator", std::chrono::seconds(300),
                              "another-secret-that-is-32-bytes-long!!");
  EXPECT_EQ(As(c_, wrong_key, "GET", "/v1/runs").status, 401);
  // alg:none with the same payload and no signature.
  std::string payload = good.substr(good.find('.') + 1);
  payload = payload.substr(0, payload.find('.'));
  std::string none = auth::Base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." + payload + ".";
  EXPECT_EQ(As(c_, none, "GET", "/v1/runs").status, 401);
  std::string hs512 = auth::Base64UrlEncode(R"({"alg":"HS512","typ":"JWT"})") + "." + payload +
                      "." + good.substr(good.rfind('.') + 1);
  EXPECT_EQ(As(c_, hs512, "GET", "/v1/runs").status, 401);
  // Wrong audience and issuer.
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  auto claims = auth::NewClaims("jwt-tenant", "operator", "x", std::chrono::seconds(300), now);
  claims.audience = {"someone-else"};
  EXPECT_EQ(As(c_, *auth::Mint(claims, kJwtSecret), "GET", "/v1/runs").status, 401);
  claims = auth::NewClaims("jwt-tenant", "operator", "x", std::chrono::seconds(300), now);
  claims.issuer = "evil";
  EXPECT_EQ(As(c_, *auth::Mint(claims, kJwtSecret), "GET", "/v1/runs").status, 401);
}

TEST_F(ApiTest, HostileInputIsRefusedAndWritesNothing) {
  std::string submit = "/v1/commands/submit";
  std::vector<std::pair<std::string, int>> bodies = {
      {R"({"kind":"prompt","input":{"text":"x"}})" + std::string(1, '}'), 400},
      {R"([1,2,3])", 400},
      {R"({"kind":"prompt","input":{"text":"x"},"evil":true})", 400},
      {R"({"kind":"prompt","input":{"text":7}})", 400},
      {R"({"kind":"prompt","input":{"text":"x"},"threadId":"123"})", 400},
      {"{\"kind\":\"prompt\",\"input\":{\"text\":\"\xc3\x28\"}}", 400},
      {R"({"kind":"prompt","input":{"text":"x\u0000y"}})", 400},
      {std::string(300, '[') + std::string(300, ']'), 400},
      {R"({"kind":"prompt","tasks":[{"name":"a","input":{"text":"1"},"dependsOn":["a"]}]})", 400},
  };
  for (const auto& [body, status] : bodies) {
    auto r = c_.Call("POST", submit, body);
    EXPECT_EQ(r.status, status) << body << " -> " << r.body;
    EXPECT_FALSE(ErrorCode(r).empty()) << r.body;
  }
  EXPECT_EQ(c_.Call("POST", submit, std::string(1 << 21, ' ')).status, 413);
  EXPECT_EQ(c_.Call("POST", submit, "kind=prompt", {"Content-Type: application/x-www-form-urlencoded"})
                .status,
            415);
  EXPECT_EQ(c_.Call("PUT", submit, "{}").status, 405);
  EXPECT_EQ(c_.Call("GET", "/v1/nope").status, 404);
  EXPECT_EQ(c_.Call("GET", "/v1/runs?limit=abc").status, 400);
  EXPECT_EQ(c_.Call("GET", "/v1/runs?status=sleeping").status, 400);
  EXPECT_EQ(c_.Call("GET", "/v1/runs?cursor=garbage").status, 400);
  EXPECT_EQ(c_.Call("POST", "/v1/queue/claim", R"({"limit":100000})").status, 400);
  EXPECT_EQ(c_.Call("POST", "/v1/queue/items/1/complete", R"({"leaseEpoch":"1"})").status, 400);
  EXPECT_EQ(c_.Call("POST", "/v1/api-keys", R"({"role":"god"})").status, 400);
  for (const char* table : {"commands", "runs", "threads", "tasks", "queue_items", "outbox",
                            "ledger_events", "api_keys"}) {
    EXPECT_EQ(c_.Scalar(std::string("SELECT count(*) FROM synaps.") + table), 0)
        << table << " was written by a refused request";
  }
}

TEST(ApiRateLimitTest, PerTokenLimitAnswers429WithRetryAfter) {
  Cluster c({{"SYNAPS_RATE_LIMIT_RPS", "1"}, {"SYNAPS_RATE_LIMIT_BURST", "3"}});
  c.StartApi();
  int limited = 0;
  std::string retry_after;
  for (int i = 0; i < 6; ++i) {
    auto r = c.Call("GET", "/v1/runs");
    if (r.status == 429) {
      ++limited;
      retry_after = r.headers["retry-after"];
      EXPECT_EQ(ErrorCode(r), "rate_limited");
    }
  }
  EXPECT_GE(limited, 2);
  EXPECT_FALSE(retry_after.empty());
  EXPECT_GE(std::stoi(retry_after), 1);
  // Probes are not rate limited.
  EXPECT_EQ(c.Call("GET", "/readyz").status, 200);
}

TEST_F(ApiTest, ListsPageWithCursorsAndFilter) {
  std::vector<std::string> runs;
  for (int i = 0; i < 7; ++i) runs.push_back(c_.SubmitText("page " + std::to_string(i))["runId"]);
  for (const auto& r : runs) c_.WaitFinished(r);
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    std::string path = "/v1/runs?limit=3&status=succeeded";
    if (!cursor.empty()) path += "&cursor=" + cursor;
    auto page = json::parse(c_.Call("GET", path).body);
    for (const auto& r : page["items"]) {
      EXPECT_EQ(r["status"], "succeeded");
      EXPECT_TRUE(seen.insert(r["id"]).second) << "a run appeared on two pages";
    }
    cursor = page.value("nextCursor", "");
    // Cursor values contain characters that need percent-encoding in a query.
    std::string enc;
    for (char ch : cursor) {
      if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.') {
        enc += ch;
      } else {
        char buf[4];
        snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(ch));
        enc += buf;
      }
    }
    cursor = enc;
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(pages, 3);

  json first = c_.WaitFinished(runs[0]);
  std::string thread = first["threadId"];
  json again = c_.Submit({{"kind", "prompt"}, {"input", {{"text", "same thread"}}}, {"threadId", thread}});
  c_.WaitFinished(again["runId"]);
  auto t = json::parse(c_.Call("GET", "/v1/threads/" + thread).body);
  ASSERT_EQ(t["runs"].size(), 2u);
  EXPECT_EQ(t["runs"][1]["id"], again["runId"]);
  auto by_thread = json::parse(c_.Call("GET", "/v1/runs?threadId=" + thread).body);
  EXPECT_EQ(by_thread["items"].size(), 2u);
}

// Reads an SSE stream until it ends or `timeout` passes (keeping what arrived); returns the
// (seq, type) of each event.
size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::vector<std::pair<int64_t, std::string>> ReadEvents(Cluster& c, const std::string& path,
                                                        const std::vector<std::string>& headers,
                                                        std::chrono::milliseconds timeout) {
  std::string body;
  CURL* curl = curl_easy_init();
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  std::string auth = std::string("Authorization: Bearer ") + Cluster::kToken;
  list = curl_slist_append(list, auth.c_str());
  std::string url = c.base_url() + path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_perform(curl);  // a timeout is expected for the first, cut-off connection
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  std::vector<std::pair<int64_t, std::string>> out;
  size_t pos = 0;
  int64_t id = -1;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    if (end == std::string::npos) break;
    std::string line = body.substr(pos, end - pos);
    if (line.starts_with("id: ")) id = std::stoll(line.substr(4));
    if (line.starts_with("event: ") && id >= 0) {
      out.emplace_back(id, line.substr(7));
      id = -1;
    }
    pos = end + 1;
  }
  return out;
}

TEST(ApiEventsTest, EventStreamDeliversEveryEventOnceAcrossAReconnect) {
  Cluster c;
  c.StartApi();
  c.StartWorker({{"SYNAPS_LOCAL_LATENCY_MS", "1500"}});
  std::string run = c.SubmitText("watch me")["runId"];
  // First connection: cut off by the client's timeout while the task is still running.
  auto first = ReadEvents(c, "/v1/runs/" + run + "/events", {}, std::chrono::milliseconds(700));
  ASSERT_FALSE(first.empty());
  int64_t last = first.back().first;
  // Reconnect with Last-Event-ID and follow to the end.
  auto rest = ReadEvents(c, "/v1/runs/" + run + "/events",
                         {"Last-Event-ID: " + std::to_string(last)}, std::chrono::seconds(30));
  std::vector<std::pair<int64_t, std::string>> all = first;
  all.insert(all.end(), rest.begin(), rest.end());
  json final_run = json::parse(c.Call("GET", "/v1/runs/" + run).body);
  ASSERT_EQ(final_run["status"], "succeeded");
  ASSERT_EQ(all.size(), final_run["events"].size());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].first, static_cast<int64_t>(i + 1)) << "gap or duplicate at " << i;
    EXPECT_EQ(all[i].second, final_run["events"][i]["type"]);
  }
  // ?after= works the same, and a finished run's stream ends by itself.
  auto tail = ReadEvents(c, "/v1/runs/" + run + "/events?after=3", {}, std::chrono::seconds(10));
  ASSERT_FALSE(tail.empty());
  EXPECT_EQ(tail.front().first, 4);
}

TEST_F(ApiTest, MetricsExposeRequestsLatencyQueueAndRuns) {
  std::string run = c_.SubmitText("measure me")["runId"];
  c_.WaitFinished(run);
  auto m = http::Send({.url = c_.base_url() + "/metrics"});
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  for (const char* needle :
       {"synaps_http_requests_total{", "route=\"/v1/commands/submit\"", "status=\"201\"",
        "synaps_http_request_duration_seconds_bucket", "synaps_queue_items{state=\"ready\"}",
        "synaps_outbox_lag_seconds", "synaps_runs{status=\"succeeded\"} 1",
        "synaps_queue_claim_duration_seconds"}) {
    EXPECT_NE(m->body.find(needle), std::string::npos) << needle << "\n" << m->body;
  }
}

TEST(ApiMetricsTest, OldestReadyAgeGrowsWhileNoWorkerClaims) {
  Cluster c;
  c.StartApi();
  auto gauge = [&] {
    auto m = http::Send({.url = c.base_url() + "/metrics"});
    const std::string name = "synaps_queue_oldest_ready_age_seconds ";
    size_t at = m ? m->body.find("\n" + name) : std::string::npos;
    return at == std::string::npos ? -1.0 : std::stod(m->body.substr(at + 1 + name.size()));
  };
  EXPECT_EQ(gauge(), 0.0) << "nothing waits";
  c.SubmitText("nobody claims me");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_GE(gauge(), 1.0);
  // An item not yet available does not count as waiting.
  c.Submit({{"kind", "prompt"}, {"input", {{"text", "later"}}}, {"notBefore", "2099-01-01T00:00:00Z"}});
  EXPECT_LT(gauge(), 60.0);
}

}  // namespace
}  // namespace synaps
