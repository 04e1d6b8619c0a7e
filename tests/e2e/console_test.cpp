// The web console (docs/console.md) through a real `synaps api`: how its embedded files are
// served (types, caching, CSP, client-route fallback that never shadows the API), the API
// additions it relies on (whoami, the tenant event feed, bulk cancel, the key list), and then
// the console itself in headless Chromium (web/e2e/console.e2e.mjs, playwright-core + axe-core).
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/process.h"
#include "support/cluster.h"
#include "support/fake_openai.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;

http::Response Get(Cluster& c, const std::string& path, std::vector<std::string> headers = {}) {
  auto r = http::Send({.method = "GET", .url = c.base_url() + path, .headers = std::move(headers)});
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : http::Response{};
}

http::Response As(Cluster& c, const std::string& token, const std::string& method,
                  const std::string& path, const std::string& body = {}) {
  http::RequestOptions req{.method = method, .url = c.base_url() + path};
  req.headers.push_back("Authorization: Bearer " + token);
  if (!body.empty()) req.headers.push_back("Content-Type: application/json");
  req.body = body;
  auto r = http::Send(req);
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : http::Response{};
}

std::string Key(Cluster& c, const std::string& tenant, const std::string& role,
                const std::string& name = "") {
  json body = {{"tenantId", tenant}, {"role", role}};
  if (!name.empty()) body["name"] = name;
  auto r = c.Call("POST", "/v1/api-keys", body.dump());
  EXPECT_EQ(r.status, 201) << r.body;
  return json::parse(r.body)["token"];
}

std::string SubmitAs(Cluster& c, const std::string& token, const json& body) {
  auto r = As(c, token, "POST", "/v1/commands/submit", body.dump());
  EXPECT_EQ(r.status, 201) << r.body;
  return json::parse(r.body, nullptr, false).value("runId", "");
}

std::string ErrorField(const http::Response& r) {
  auto j = json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("error") ? j["error"].value("field", "") : "";
}

TEST(ConsoleServingTest, FilesHaveTypesCachingCspAndClientRoutesNeverShadowTheApi) {
  Cluster c;
  c.StartApi();
  auto index = Get(c, "/");
  ASSERT_EQ(index.status, 200) << index.body;
  EXPECT_EQ(index.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_EQ(index.headers["cache-control"], "no-cache");
  std::string csp = index.headers["content-security-policy"];
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(index.headers["x-content-type-options"], "nosniff");
  EXPECT_EQ(index.body.find("<script>"), std::string::npos) << "no inline script";

  std::smatch m;
  ASSERT_TRUE(std::regex_search(index.body, m, std::regex("src=\"(/assets/[^\"]+\\.js)\"")))
      << index.body;
  std::string script = m[1];
  auto js = Get(c, script);
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.headers["content-type"], "text/javascript; charset=utf-8");
  EXPECT_EQ(js.headers["cache-control"], "public, max-age=31536000, immutable");
  EXPECT_EQ(js.headers.count("content-encoding"), 0u) << "identity unless asked";
  auto zipped = Get(c, script, {"Accept-Encoding: gzip"});
  EXPECT_EQ(zipped.headers["content-encoding"], "gzip");
  EXPECT_EQ(zipped.headers["vary"], "Accept-Encoding");
  EXPECT_LT(zipped.body.size(), js.body.size());
  std::regex css_re("href=\"(/assets/[^\"]+\\.css)\"");
  ASSERT_TRUE(std::regex_search(index.body, m, css_re));
  EXPECT_EQ(Get(c, m[1]).headers["content-type"], "text/css; charset=utf-8");

  // Client routes get index.html; API paths and missing files keep their JSON 404.
  for (const char* route : {"/runs/9b2f0c5e-0000-4000-8000-000000000000", "/approvals",
                            "/control/prompts/x"}) {
    auto r = Get(c, route);
    EXPECT_EQ(r.status, 200) << route;
    EXPECT_EQ(r.body, index.body) << route;
  }
  for (const char* api : {"/v1/nothing", "/v1", "/assets/gone-123.js", "/favicon.ico"}) {
    auto r = Get(c, api);
    EXPECT_EQ(r.status, 404) << api;
    EXPECT_EQ(r.headers["content-type"], "application/json") << api;
  }
  EXPECT_EQ(json::parse(Get(c, "/healthz").body)["status"], "ok");
  EXPECT_EQ(Get(c, "/openapi.json").headers["content-type"], "application/json");
  EXPECT_EQ(Get(c, "/v1/runs").status, 401) << "the API still wants a token";
  auto post = http::Send({.method = "POST", .url = c.base_url() + "/approvals"});
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 404) << "only GET reaches the console";
}

TEST(ConsoleApiTest, WhoAmIKeyListFiltersAndBulkCancelStayInTheTenant) {
  Cluster c(std::map<std::string, std::string>{{"SYNAPS_RATE_LIMIT_RPS", "0"}});
  c.StartApi();  // no worker: submitted runs stay queued
  std::string ops = Key(c, "acme", "operator");
  std::string admin = Key(c, "acme", "admin", "acme-admin");
  std::string viewer = Key(c, "acme", "viewer");
  std::string other = Key(c, "globex", "operator");

  auto me = json::parse(As(c, viewer, "GET", "/v1/whoami").body);
  EXPECT_EQ(me["tenantId"], "acme");
  EXPECT_EQ(me["role"], "viewer");
  EXPECT_EQ(me["may"], json({{"read", true}, {"submit", false}, {"operate", false}, {"admin", false}, {"control", false}}));

  // Keys: a tenant admin lists its tenant's keys, never a token or hash; a viewer may not.
  auto keys = As(c, admin, "GET", "/v1/api-keys");
  ASSERT_EQ(keys.status, 200) << keys.body;
  auto items = json::parse(keys.body)["items"];
  EXPECT_EQ(items.size(), 3u) << items.dump();
  for (const auto& k : items) {
    EXPECT_EQ(k["tenantId"], "acme");
    EXPECT_FALSE(k.contains("hash") || k.contains("token")) << k.dump();
  }
  EXPECT_EQ(As(c, viewer, "GET", "/v1/api-keys").status, 403);
  EXPECT_EQ(As(c, admin, "GET", "/v1/api-keys?tenantId=globex").status, 403);
  auto all = json::parse(c.Call("GET", "/v1/api-keys?tenantId=globex").body)["items"];
  EXPECT_EQ(all.size(), 1u) << "the bootstrap admin reads any tenant";

  // Filters: kind, text (any case, in the payload), tag, time.
  std::string a = SubmitAs(c, ops, {{"kind", "prompt"}, {"input", {{"text", "Invoice April"}}},
                                    {"tags", {"billing"}}});
  std::string b = SubmitAs(c, ops, {{"kind", "prompt"}, {"input", {{"text", "invoice May"}}}});
  std::string d = SubmitAs(c, ops, {{"kind", "prompt"}, {"input", {{"text", "weather"}}}});
  std::string foreign = SubmitAs(c, other, {{"kind", "prompt"}, {"input", {{"text", "invoice"}}}});
  auto list = [&](const std::string& q) {
    auto r = As(c, ops, "GET", "/v1/runs?" + q);
    EXPECT_EQ(r.status, 200) << q << ": " << r.body;
    json page = json::parse(r.body);  // named: a temporary would die before the loop body
    std::vector<std::string> ids;
    for (const auto& i : page["items"]) ids.push_back(i["id"]);
    return ids;
  };
  EXPECT_EQ(list("text=INVOICE"), (std::vector<std::string>{b, a}));
  EXPECT_EQ(list("tag=billing"), (std::vector<std::string>{a}));
  EXPECT_EQ(list("kind=agent"), std::vector<std::string>{});
  EXPECT_EQ(list("createdAfter=2999-01-01T00:00:00Z"), std::vector<std::string>{});
  EXPECT_EQ(list("createdBefore=2999-01-01T00%3A00%3A00Z&text=weather"), (std::vector<std::string>{d}));
  auto first = json::parse(As(c, ops, "GET", "/v1/runs?limit=1").body)["items"][0];
  EXPECT_EQ(first["title"], "weather");
  EXPECT_EQ(first["kind"], "prompt");
  EXPECT_EQ(first["tenantId"], "acme");
  auto bad = As(c, ops, "GET", "/v1/runs?createdAfter=yesterday");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(ErrorField(bad), "createdAfter");

  // Queue depth: the tenant's three ready items, not the other tenant's one.
  auto queues = As(c, ops, "GET", "/v1/queues");
  ASSERT_EQ(queues.status, 200) << queues.body;
  auto depth = json::parse(queues.body)["items"];
  ASSERT_EQ(depth.size(), 1u) << depth.dump();
  EXPECT_EQ(depth[0]["queue"], "default");
  EXPECT_EQ(depth[0]["ready"], 3);
  EXPECT_TRUE(depth[0]["oldestReadyAt"].is_string()) << depth.dump();
  EXPECT_EQ(As(c, viewer, "GET", "/v1/queues").status, 403);

  // Bulk cancel by filter cancels only what matches, in this tenant only.
  auto refused = As(c, viewer, "POST", "/v1/runs/cancel", R"({"filter":{"text":"invoice"}})");
  EXPECT_EQ(refused.status, 403);
  auto both = As(c, ops, "POST", "/v1/runs/cancel", R"({"filter":{},"runIds":[]})");
  EXPECT_EQ(both.status, 400);
  auto typo = As(c, ops, "POST", "/v1/runs/cancel", R"({"filter":{"colour":"red"}})");
  EXPECT_EQ(typo.status, 400);
  EXPECT_EQ(ErrorField(typo), "filter.colour");
  auto by_filter = As(c, ops, "POST", "/v1/runs/cancel", R"({"filter":{"text":"invoice"}})");
  ASSERT_EQ(by_filter.status, 200) << by_filter.body;
  auto result = json::parse(by_filter.body);
  EXPECT_EQ(result["cancelled"].size(), 2u) << result.dump();
  EXPECT_FALSE(result["more"].get<bool>());
  EXPECT_EQ(json::parse(As(c, ops, "GET", "/v1/runs/" + a).body)["status"], "cancelled");
  EXPECT_EQ(json::parse(As(c, ops, "GET", "/v1/runs/" + d).body)["status"], "queued");
  EXPECT_EQ(json::parse(As(c, other, "GET", "/v1/runs/" + foreign).body)["status"], "queued");

  // By selection: another tenant's id and a finished run are skipped, the rest cancelled.
  auto by_ids = As(c, ops, "POST", "/v1/runs/cancel",
                   json{{"runIds", {d, a, foreign}}}.dump());
  ASSERT_EQ(by_ids.status, 200) << by_ids.body;
  result = json::parse(by_ids.body);
  EXPECT_EQ(result["cancelled"], json::array({d}));
  ASSERT_EQ(result["skipped"].size(), 2u);
  EXPECT_EQ(result["skipped"][0]["code"], "conflict");
  EXPECT_EQ(result["skipped"][1]["code"], "not_found");
  EXPECT_EQ(json::parse(As(c, other, "GET", "/v1/runs/" + foreign).body)["status"], "queued");

  // Retry resubmits a finished run's command on its thread; unfinished or foreign runs refuse.
  auto retried = As(c, ops, "POST", "/v1/runs/" + a + "/retry");
  ASSERT_EQ(retried.status, 201) << retried.body;
  auto again = json::parse(retried.body);
  EXPECT_EQ(again["retryOf"], a);
  EXPECT_NE(again["runId"], a);
  auto original = json::parse(As(c, ops, "GET", "/v1/runs/" + a).body);
  EXPECT_EQ(again["threadId"], original["threadId"]);
  auto listed = json::parse(As(c, ops, "GET", "/v1/runs?limit=1").body)["items"][0];
  EXPECT_EQ(listed["title"], "Invoice April");
  EXPECT_EQ(listed["tags"], json::array({"billing"}));
  EXPECT_EQ(As(c, ops, "POST", "/v1/runs/" + again["runId"].get<std::string>() + "/retry").status,
            409);
  EXPECT_EQ(As(c, ops, "POST", "/v1/runs/" + foreign + "/retry").status, 404);
  EXPECT_EQ(As(c, viewer, "POST", "/v1/runs/" + a + "/retry").status, 403);
}

// Bulk retry resubmits finished runs by selection or by filter, in the caller's tenant only.
TEST(ConsoleApiTest, BulkRetryBySelectionAndFilterStaysInTheTenant) {
  Cluster c(std::map<std::string, std::string>{{"SYNAPS_RATE_LIMIT_RPS", "0"}});
  c.StartApi();  // no worker: submitted runs stay queued until cancelled
  std::string ops = Key(c, "acme", "operator");
  std::string viewer = Key(c, "acme", "viewer");
  std::string other = Key(c, "globex", "operator");
  std::vector<std::string> batch;
  for (int i = 0; i < 3; ++i) {
    batch.push_back(SubmitAs(c, ops,
                             {{"kind", "prompt"},
                              {"input", {{"text", "batch " + std::to_string(i)}}},
                              {"tags", {"batch"}}}));
  }
  std::string loose = SubmitAs(c, ops, {{"kind", "prompt"}, {"input", {{"text", "loose"}}}});
  std::string foreign =
      SubmitAs(c, other, {{"kind", "prompt"}, {"input", {{"text", "batch"}}}, {"tags", {"batch"}}});
  ASSERT_EQ(As(c, ops, "POST", "/v1/runs/cancel", R"({"filter":{"tag":"batch"}})").status, 200);
  ASSERT_EQ(As(c, other, "POST", "/v1/runs/cancel", R"({"filter":{"tag":"batch"}})").status, 200);

  EXPECT_EQ(As(c, viewer, "POST", "/v1/runs/retry", R"({"filter":{"tag":"batch"}})").status, 403);
  EXPECT_EQ(As(c, ops, "POST", "/v1/runs/retry", R"({"filter":{},"runIds":[]})").status, 400);
  auto typo = As(c, ops, "POST", "/v1/runs/retry", R"({"filter":{"colour":"red"}})");
  EXPECT_EQ(typo.status, 400);
  EXPECT_EQ(ErrorField(typo), "filter.colour");
  auto stray =
      As(c, ops, "POST", "/v1/runs/retry", json{{"runIds", {loose}}, {"cursor", "x"}}.dump());
  EXPECT_EQ(ErrorField(stray), "cursor") << stray.body;
  auto garbled = As(c, ops, "POST", "/v1/runs/retry", R"({"filter":{},"cursor":"nonsense"})");
  EXPECT_EQ(garbled.status, 400) << garbled.body;
  EXPECT_EQ(ErrorField(garbled), "cursor");

  // By filter: the tenant's three cancelled runs, each resubmitted once as a new queued run.
  auto by_filter = As(c, ops, "POST", "/v1/runs/retry", R"({"filter":{"tag":"batch"}})");
  ASSERT_EQ(by_filter.status, 200) << by_filter.body;
  auto result = json::parse(by_filter.body);
  ASSERT_EQ(result["retried"].size(), 3u) << result.dump();
  EXPECT_FALSE(result["more"].get<bool>());
  EXPECT_FALSE(result.contains("nextCursor"));
  EXPECT_EQ(result["skipped"], json::array());
  std::set<std::string> originals, fresh;
  for (const auto& r : result["retried"]) {
    originals.insert(r["retryOf"]);
    fresh.insert(r["runId"]);
    EXPECT_EQ(
        json::parse(As(c, ops, "GET", "/v1/runs/" + r["runId"].get<std::string>()).body)["status"],
        "queued");
  }
  EXPECT_EQ(originals, std::set<std::string>(batch.begin(), batch.end()));
  auto listed = json::parse(As(c, other, "GET", "/v1/runs?tag=batch").body)["items"];
  EXPECT_EQ(listed.size(), 1u) << "the other tenant's cancelled run was not retried";
  // `loose` is unfinished (queued) so a filter matching it retries nothing.
  auto none = As(c, ops, "POST", "/v1/runs/retry", R"({"filter":{"text":"loose"}})");
  EXPECT_EQ(json::parse(none.body)["retried"], json::array()) << none.body;

  // By selection: a finished run is retried; an unfinished and a foreign one are skipped.
  auto by_ids =
      As(c, ops, "POST", "/v1/runs/retry", json{{"runIds", {batch[0], loose, foreign}}}.dump());
  ASSERT_EQ(by_ids.status, 200) << by_ids.body;
  result = json::parse(by_ids.body);
  ASSERT_EQ(result["retried"].size(), 1u) << result.dump();
  EXPECT_EQ(result["retried"][0]["retryOf"], batch[0]);
  ASSERT_EQ(result["skipped"].size(), 2u);
  EXPECT_EQ(result["skipped"][0]["code"], "conflict");
  EXPECT_EQ(result["skipped"][1]["code"], "not_found");
  EXPECT_EQ(json::parse(As(c, other, "GET", "/v1/runs?tag=batch").body)["items"].size(), 1u);

  // A run named twice is retried once.
  auto twice = As(c, ops, "POST", "/v1/runs/retry", json{{"runIds", {batch[1], batch[1]}}}.dump());
  ASSERT_EQ(twice.status, 200) << twice.body;
  EXPECT_EQ(json::parse(twice.body)["retried"].size(), 1u) << twice.body;
}

// A client that retries a retry request (a timeout, a double click) with the same
// Idempotency-Key gets the first answer's runs back instead of retrying the runs again.
TEST(ConsoleApiTest, RetriesWithAnIdempotencyKeyAreRetriedOnce) {
  Cluster c(std::map<std::string, std::string>{{"SYNAPS_RATE_LIMIT_RPS", "0"}});
  c.StartApi();
  std::string ops = Key(c, "acme", "operator");
  std::vector<std::string> runs;
  for (int i = 0; i < 2; ++i) {
    runs.push_back(
        SubmitAs(c, ops, {{"kind", "prompt"}, {"input", {{"text", "k"}}}, {"tags", {"k"}}}));
  }
  ASSERT_EQ(As(c, ops, "POST", "/v1/runs/cancel", R"({"filter":{"tag":"k"}})").status, 200);
  auto keyed = [&](const std::string& path, const std::string& body, const std::string& key) {
    http::RequestOptions req{.method = "POST", .url = c.base_url() + path};
    req.headers = {"Authorization: Bearer " + ops, "Content-Type: application/json",
                   "Idempotency-Key: " + key};
    req.body = body;
    auto r = http::Send(req);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : http::Response{};
  };
  const std::string filter = R"({"filter":{"tag":"k","status":"cancelled"}})";
  auto first = keyed("/v1/runs/retry", filter, "retry-k");
  ASSERT_EQ(first.status, 200) << first.body;
  auto repeat = keyed("/v1/runs/retry", filter, "retry-k");
  ASSERT_EQ(repeat.status, 200) << repeat.body;
  json a = json::parse(first.body)["retried"], b = json::parse(repeat.body)["retried"];
  ASSERT_EQ(a.size(), 2u) << first.body;
  ASSERT_EQ(b.size(), 2u) << repeat.body;
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(a[i]["runId"], b[i]["runId"]);
    EXPECT_FALSE(a[i].contains("replayed"));
    EXPECT_EQ(b[i]["replayed"], true);
  }
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.runs"), 4) << "two originals, two retries";

  auto one = keyed("/v1/runs/" + runs[0] + "/retry", "", "retry-one");
  ASSERT_EQ(one.status, 201) << one.body;
  auto one_again = keyed("/v1/runs/" + runs[0] + "/retry", "", "retry-one");
  ASSERT_EQ(one_again.status, 200) << one_again.body;
  EXPECT_EQ(json::parse(one.body)["runId"], json::parse(one_again.body)["runId"]);
  // The same key for another run's retry is a conflict, not a replay of the first.
  EXPECT_EQ(keyed("/v1/runs/" + runs[1] + "/retry", "", "retry-one").status, 409);
  auto too_long = keyed("/v1/runs/retry", filter, std::string(219, 'k'));
  EXPECT_EQ(too_long.status, 400) << too_long.body;
  EXPECT_EQ(ErrorField(too_long), "Idempotency-Key");
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// Reads an event stream for `timeout` (the stream never ends by itself).
std::string ReadStream(Cluster& c, const std::string& token, const std::string& path,
                       std::chrono::milliseconds timeout) {
  std::string body;
  CURL* curl = curl_easy_init();
  std::string auth = "Authorization: Bearer " + token;
  curl_slist* list = curl_slist_append(nullptr, auth.c_str());
  std::string url = c.base_url() + path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_perform(curl);  // ends by the timeout
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return body;
}

// The installation scope (the bootstrap token here) reads every tenant's runs; an ordinary
// token learns nothing of another tenant's, whatever ids or filters it tries.
TEST(ConsoleApiTest, InstallationScopeReadsEveryTenantOthersAreRefused) {
  Cluster c(std::map<std::string, std::string>{{"SYNAPS_RATE_LIMIT_RPS", "0"}});
  c.StartApi();  // no worker: submitted runs stay queued
  std::string acme = Key(c, "acme", "operator");
  std::string globex = Key(c, "globex", "admin");
  std::string mine = SubmitAs(c, acme, {{"kind", "prompt"}, {"input", {{"text", "acme run"}}}});
  std::string theirs =
      SubmitAs(c, globex, {{"kind", "prompt"}, {"input", {{"text", "globex run"}}}});
  auto ids = [](const http::Response& r) {
    std::vector<std::string> out;
    json page = json::parse(r.body, nullptr, false);
    if (page.is_object()) {
      for (const auto& i : page["items"]) out.push_back(i["id"]);
    }
    return out;
  };
  auto one = c.Call("GET", "/v1/runs?tenant=globex");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(ids(one), std::vector<std::string>{theirs});
  EXPECT_EQ(json::parse(one.body)["items"][0]["tenantId"], "globex");
  auto every = c.Call("GET", "/v1/runs?tenant=*&text=run");
  ASSERT_EQ(every.status, 200) << every.body;
  EXPECT_EQ(ids(every), (std::vector<std::string>{theirs, mine}));
  EXPECT_EQ(ids(c.Call("GET", "/v1/runs?tenant=%2A&limit=1")), std::vector<std::string>{theirs});
  EXPECT_EQ(ids(c.Call("GET", "/v1/runs")), std::vector<std::string>{})
      << "without tenant= the bootstrap token reads its own tenant, as before";
  EXPECT_EQ(c.Call("GET", "/v1/runs?tenant=bad%20id").status, 400);
  auto run = c.Call("GET", "/v1/runs/" + theirs);
  ASSERT_EQ(run.status, 200) << run.body;
  EXPECT_EQ(json::parse(run.body)["tenantId"], "globex");
  auto stream = ReadStream(c, Cluster::kToken, "/v1/runs/" + theirs + "/events",
                           std::chrono::milliseconds(800));
  EXPECT_NE(stream.find("event: run.created"), std::string::npos) << stream;

  // An ordinary token: another tenant in the filter is 403 with a JSON error naming `tenant`;
  // another tenant's run ids are 404 (as if absent) for the run, its events and its stream.
  auto refused = As(c, acme, "GET", "/v1/runs?tenant=globex");
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_EQ(refused.headers["content-type"], "application/json");
  EXPECT_EQ(ErrorField(refused), "tenant");
  EXPECT_EQ(json::parse(refused.body)["error"]["code"], "permission_denied") << refused.body;
  EXPECT_EQ(As(c, acme, "GET", "/v1/runs?tenant=*").status, 403);
  EXPECT_EQ(As(c, acme, "GET", "/v1/runs?tenant=%67lobex").status, 403) << "encoded";
  EXPECT_EQ(ids(As(c, acme, "GET", "/v1/runs?tenant=acme")), std::vector<std::string>{mine});
  EXPECT_EQ(As(c, acme, "GET", "/v1/runs/" + theirs).status, 404);
  EXPECT_EQ(As(c, acme, "GET", "/v1/runs/" + theirs + "/events").status, 404);
  std::string leaked =
      ReadStream(c, acme, "/v1/runs/" + theirs + "/events", std::chrono::milliseconds(500));
  EXPECT_EQ(leaked.find("run.created"), std::string::npos) << leaked;
  EXPECT_EQ(As(c, globex, "GET", "/v1/runs/" + mine).status, 404);
  EXPECT_EQ(As(c, acme, "POST", "/v1/runs/" + theirs + "/cancel").status, 404);
  // A tenant-scoped admin is not the installation scope.
  EXPECT_EQ(As(c, globex, "GET", "/v1/runs?tenant=acme").status, 403);
}

TEST(ConsoleApiTest, TenantFeedCarriesOnlyTheTenantsEventsAndResumes) {
  Cluster c(std::map<std::string, std::string>{{"SYNAPS_RATE_LIMIT_RPS", "0"}});
  c.StartApi();
  c.StartWorker();
  std::string mine = Key(c, "acme", "viewer");
  std::string ops = Key(c, "acme", "operator");
  std::string other = Key(c, "globex", "operator");
  std::string run = SubmitAs(c, ops, {{"kind", "prompt"}, {"input", {{"text", "feed me"}}}});
  std::string foreign = SubmitAs(c, other, {{"kind", "prompt"}, {"input", {{"text", "not yours"}}}});
  for (auto [token, id] : {std::pair{ops, run}, std::pair{other, foreign}}) {
    EXPECT_TRUE(testing::Eventually([&, token = token, id = id] {
      auto r = json::parse(As(c, token, "GET", "/v1/runs/" + id).body, nullptr, false);
      return r.is_object() && r.value("status", "") == "succeeded";
    })) << id;
  }
  std::string feed = ReadStream(c, mine, "/v1/events?after=0", std::chrono::milliseconds(1500));
  EXPECT_NE(feed.find("event: ready"), std::string::npos) << feed;
  EXPECT_NE(feed.find("event: run.created"), std::string::npos) << feed;
  EXPECT_NE(feed.find("\"runId\":\"" + run + "\""), std::string::npos) << feed;
  EXPECT_NE(feed.find("\"runStatus\":\"succeeded\""), std::string::npos) << feed;
  EXPECT_EQ(feed.find(foreign), std::string::npos) << "another tenant's run leaked: " << feed;
  // Without a cursor the feed starts now: nothing old is replayed.
  std::string fresh = ReadStream(c, mine, "/v1/events", std::chrono::milliseconds(1200));
  EXPECT_EQ(fresh.find("run.created"), std::string::npos) << fresh;
  EXPECT_EQ(As(c, mine, "GET", "/v1/events?after=x").status, 400);

  // The installation scope follows every tenant (`*`) or one other tenant; other tokens may not.
  std::string every = ReadStream(c, Cluster::kToken, "/v1/events?after=0&tenant=*",
                                 std::chrono::milliseconds(1500));
  EXPECT_NE(every.find("\"runId\":\"" + run + "\""), std::string::npos) << every;
  EXPECT_NE(every.find("\"runId\":\"" + foreign + "\""), std::string::npos) << every;
  EXPECT_NE(every.find("\"tenantId\":\"globex\""), std::string::npos) << every;
  std::string theirs = ReadStream(c, Cluster::kToken, "/v1/events?after=0&tenant=globex",
                                  std::chrono::milliseconds(1200));
  EXPECT_NE(theirs.find(foreign), std::string::npos) << theirs;
  EXPECT_EQ(theirs.find(run), std::string::npos) << theirs;
  for (const char* path :
       {"/v1/events?tenant=*", "/v1/events?tenant=%2A", "/v1/events?tenant=globex"}) {
    auto refused = As(c, mine, "GET", path);
    EXPECT_EQ(refused.status, 403) << path << " " << refused.body;
    EXPECT_EQ(ErrorField(refused), "tenant") << path;
  }
  EXPECT_EQ(c.Call("GET", "/v1/events?tenant=bad%20id").status, 400);
}

// Search: `text` is a literal substring in any case (LIKE's % and _ are not wildcards) served by
// the trigram index, `metadata=key=value` matches a metadata value written as a string or as a
// number; both stay in the tenant.
TEST(ConsoleApiTest, RunSearchByTextAndMetadataStaysInTheTenant) {
  Cluster c(std::map<std::string, std::string>{{"SYNAPS_RATE_LIMIT_RPS", "0"}});
  c.StartApi();  // no worker: the runs stay queued
  std::string acme = Key(c, "acme", "operator");
  std::string globex = Key(c, "globex", "operator");
  std::string sale = SubmitAs(c, acme,
                              {{"kind", "prompt"},
                               {"input", {{"text", "Announce the 50%_OFF sale"}}},
                               {"metadata", {{"team", "payments"}, {"attempt", 3}}}});
  std::string near = SubmitAs(c, acme,
                              {{"kind", "prompt"},
                               {"input", {{"text", "announce the 50xyoff sale"}}},
                               {"metadata", {{"team", "search"}, {"attempt", "3"}}}});
  std::string foreign = SubmitAs(c, globex,
                                 {{"kind", "prompt"},
                                  {"input", {{"text", "announce the 50%_off sale"}}},
                                  {"metadata", {{"team", "payments"}}}});
  auto ids = [&](const std::string& query) {
    std::vector<std::string> out;
    auto r = As(c, acme, "GET", "/v1/runs?" + query);
    EXPECT_EQ(r.status, 200) << query << " " << r.body;
    json page = json::parse(r.body, nullptr, false);
    if (page.is_object()) {
      for (const auto& i : page["items"]) out.push_back(i["id"]);
    }
    return out;
  };
  using Ids = std::vector<std::string>;
  EXPECT_EQ(ids("text=50%25_off"), Ids{sale}) << "% and _ are literal";
  EXPECT_EQ(ids("text=ANNOUNCE%20THE"), (Ids{near, sale})) << "any case";
  EXPECT_EQ(ids("text=payments"), Ids{sale}) << "metadata values are text too";
  EXPECT_EQ(ids("metadata=team%3Dpayments"), Ids{sale});
  EXPECT_EQ(ids("metadata=attempt%3D3"), (Ids{near, sale})) << "3 matches 3 and \"3\"";
  EXPECT_EQ(ids("metadata=team%3Dpayments&text=50xy"), Ids{});
  EXPECT_EQ(ids("metadata=team%3Dnobody"), Ids{});
  auto bad = As(c, acme, "GET", "/v1/runs?metadata=team");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(ErrorField(bad), "metadata");
  // Bulk cancel by the same filter acts on the tenant's matching runs only.
  auto cancelled = As(c, acme, "POST", "/v1/runs/cancel",
                      json{{"filter", {{"metadata", "team=payments"}}}}.dump());
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(json::parse(cancelled.body)["cancelled"], json::array({sale}));
  EXPECT_EQ(json::parse(As(c, globex, "GET", "/v1/runs/" + foreign).body)["status"], "queued");
  // The indexes the search relies on exist (migration 0020; pg_trgm is in the test PostgreSQL).
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = 'synaps' AND indexname"
                     " IN ('commands_payload_trgm', 'commands_metadata')"),
            2);
}

// GET /v1/flow: a tenant's concurrency keys (running, waiting for the limit), the routes' rate
// limits and its threads with runs waiting for their turn; every role of the tenant may read it,
// another tenant sees none of it (its own key of the same name is its own).
TEST(ConsoleApiTest, FlowShowsTheTenantsKeysRoutesAndThreadsAndNoOtherTenants) {
  Cluster c(std::map<std::string, std::string>{{"SYNAPS_RATE_LIMIT_RPS", "0"}});
  c.StartApi();
  auto put = c.Call("PUT", "/v1/control/concurrency/per-document",
                    json{{"spec", {{"match", {{"key", "doc:*"}}}, {"maxRunning", 1}}},
                         {"reason", "console flow test"}}
                        .dump());
  ASSERT_EQ(put.status / 100, 2) << put.body;
  // A route with limits that no task uses: listed, nothing waits for it.
  put = c.Call("PUT", "/v1/control/routes/metered",
               json{{"spec",
                     {{"provider", "openai-compatible"},
                      {"baseUrl", "http://127.0.0.1:9"},
                      {"model", "m"},
                      {"weight", 0},
                      {"limits", {{"requestsPerMinute", 60}, {"tokensPerMinute", 120000}}}}},
                    {"reason", "console flow test"}}
                   .dump());
  ASSERT_EQ(put.status / 100, 2) << put.body;
  c.StartWorker({{"SYNAPS_LOCAL_LATENCY_MS", "4000"}});
  std::string ops = Key(c, "acme", "operator");
  std::string viewer = Key(c, "acme", "viewer");
  std::string other = Key(c, "globex", "operator");

  json doc = {{"kind", "prompt"}, {"input", {{"text", "edit doc 1"}}}, {"concurrencyKey", "doc:1"}};
  SubmitAs(c, ops, doc);
  SubmitAs(c, ops, doc);
  SubmitAs(c, other, doc);  // globex's doc:1 is its own key, under its own count
  // A thread busy with its first run: the second waits for its turn.
  auto first = As(c, ops, "POST", "/v1/commands/submit",
                  json{{"kind", "prompt"}, {"input", {{"text", "turn 1"}}}}.dump());
  ASSERT_EQ(first.status, 201) << first.body;
  std::string thread = json::parse(first.body)["threadId"];
  std::string holder = json::parse(first.body)["runId"];
  SubmitAs(c, ops, {{"kind", "prompt"}, {"input", {{"text", "turn 2"}}}, {"threadId", thread}});

  json flow;
  bool seen = testing::Eventually(
      [&] {
        auto r = As(c, ops, "GET", "/v1/flow");
        if (r.status != 200) return false;
        flow = json::parse(r.body);
        return flow["keys"].size() == 1 && flow["keys"][0]["running"] == 1 &&
               flow["keys"][0]["waiting"] == 1;
      },
      20);
  ASSERT_TRUE(seen) << flow.dump();
  const json& key = flow["keys"][0];
  EXPECT_EQ(key["key"], "doc:1");
  EXPECT_EQ(key["limit"], "per-document");
  EXPECT_EQ(key["maxRunning"], 1);
  EXPECT_EQ(key["strategy"], "queue");
  EXPECT_TRUE(key["oldestWaitingSince"].is_string()) << key.dump();
  ASSERT_EQ(flow["routes"].size(), 1u) << flow.dump();
  EXPECT_EQ(flow["routes"][0]["route"], "metered");
  EXPECT_EQ(flow["routes"][0]["requestsPerMinute"], 60);
  EXPECT_EQ(flow["routes"][0]["tokensPerMinute"], 120000);
  EXPECT_EQ(flow["routes"][0]["waiting"], 0);
  ASSERT_EQ(flow["threads"].size(), 1u) << flow.dump();
  EXPECT_EQ(flow["threads"][0]["threadId"], thread);
  EXPECT_EQ(flow["threads"][0]["queuedRuns"], 1);
  EXPECT_EQ(flow["threads"][0]["runId"], holder);
  EXPECT_EQ(flow["moreKeys"], false);

  // A viewer of the tenant reads the same; the thread's runs come in the thread's order.
  auto seenByViewer = As(c, viewer, "GET", "/v1/flow");
  ASSERT_EQ(seenByViewer.status, 200) << seenByViewer.body;
  EXPECT_EQ(json::parse(seenByViewer.body)["keys"][0]["key"], "doc:1");
  auto runs = json::parse(As(c, viewer, "GET", "/v1/threads/" + thread).body)["runs"];
  ASSERT_EQ(runs.size(), 2u) << runs.dump();
  EXPECT_EQ(runs[0]["id"], holder);
  EXPECT_EQ(runs[0]["threadSeq"], 1);
  EXPECT_EQ(runs[1]["threadSeq"], 2);
  EXPECT_EQ(runs[1]["title"], "turn 2");

  // The other tenant: its own doc:1 (one task, running or about to), none of acme's keys,
  // waits or threads; the shared route's limits are the route's and are listed.
  auto theirs = As(c, other, "GET", "/v1/flow");
  ASSERT_EQ(theirs.status, 200) << theirs.body;
  json them = json::parse(theirs.body);
  ASSERT_EQ(them["keys"].size(), 1u) << them.dump();
  EXPECT_EQ(them["keys"][0]["waiting"], 0) << them.dump();
  EXPECT_EQ(them["keys"][0]["running"].get<int>() + them["keys"][0]["ready"].get<int>(), 1)
      << them.dump();
  EXPECT_EQ(them["threads"], json::array()) << them.dump();
  EXPECT_EQ(them["routes"][0]["waiting"], 0);
  EXPECT_EQ(As(c, other, "GET", "/v1/threads/" + thread).status, 404);

  EXPECT_EQ(As(c, ops, "GET", "/v1/flow?tenant=globex").status, 400);
  EXPECT_EQ(ErrorField(As(c, ops, "GET", "/v1/flow?tenant=globex")), "tenant");
  EXPECT_EQ(Get(c, "/v1/flow").status, 401);
}

// The console in Chromium. Needs web/node_modules (npm ci during the build) and
// /usr/bin/chromium (scripts/install-deps).
TEST(ConsoleBrowserTest, OperatorAndViewerWorkflowsInChromium) {
  ASSERT_TRUE(std::filesystem::exists(SYNAPS_CHROMIUM)) << SYNAPS_CHROMIUM
      << " is missing: run scripts/install-deps";
  Cluster c(std::map<std::string, std::string>{{"SYNAPS_RATE_LIMIT_RPS", "0"}});
  c.StartApi();
  c.StartWorker();
  // Arbiter `human` holds every task tagged `review` for a person.
  auto put = c.Call("PUT", "/v1/control/arbiters/human",
                    json{{"spec", {{"match", {{"tags", {"review"}}}},
                                   {"checks", {{{"type", "approval"}}}},
                                   {"onFail", "fail"}}},
                         {"reason", "console test"}}
                        .dump());
  ASSERT_EQ(put.status / 100, 2) << put.body;
  // Route `slow` streams its answer, a word every 100 ms (4 s in all), for the live answer.
  testing::FakeOpenAi slow([](const testing::FakeRequest&, int) {
    std::vector<std::string> words;
    for (int i = 1; i <= 40; ++i) words.push_back("word" + std::to_string(i) + " ");
    testing::FakeReply r = testing::FakeOpenAi::Stream(words, 3, 40);
    r.event_interval = std::chrono::milliseconds(100);
    return r;
  });
  put = c.Call("PUT", "/v1/control/routes/slow",
               json{{"spec",
                     {{"provider", "openai-compatible"},
                      {"baseUrl", slow.base_url()},
                      {"model", "m"},
                      {"weight", 0}}},
                    {"reason", "console test: a streaming answer"}}
                   .dump());
  ASSERT_EQ(put.status / 100, 2) << put.body;
  // Route `slower`: a word every 250 ms (60 s; the test cancels its runs long before), with a
  // rate limit, for the flow-control page.
  testing::FakeOpenAi slower([](const testing::FakeRequest&, int) {
    std::vector<std::string> words;
    for (int i = 1; i <= 240; ++i) words.push_back("slow" + std::to_string(i) + " ");
    testing::FakeReply r = testing::FakeOpenAi::Stream(words, 3, 240);
    r.event_interval = std::chrono::milliseconds(250);
    return r;
  });
  put = c.Call("PUT", "/v1/control/routes/slower",
               json{{"spec",
                     {{"provider", "openai-compatible"},
                      {"baseUrl", slower.base_url()},
                      {"model", "m"},
                      {"weight", 0},
                      {"limits", {{"requestsPerMinute", 600}}}}},
                    {"reason", "console test: a slow, rate-limited route"}}
                   .dump());
  ASSERT_EQ(put.status / 100, 2) << put.body;
  std::string shots = std::string(SYNAPS_TEST_OUTPUT_DIR) + "/console-screenshots";
  std::map<std::string, std::string> env = {
      {"CONSOLE_URL", c.base_url()},
      {"ADMIN_TOKEN", Cluster::kToken},
      {"VIEWER_TOKEN", Key(c, "default", "viewer")},
      {"OTHER_TOKEN", Key(c, "globex", "operator")},
      {"SCREENSHOT_DIR", shots},
      {"CHROMIUM", SYNAPS_CHROMIUM},
  };
  std::string log = std::string(SYNAPS_TEST_OUTPUT_DIR) + "/console-e2e.log";
  auto node = ChildProcess::Spawn(
      {.argv = {SYNAPS_NODE, "e2e/console.e2e.mjs"}, .env = env, .log_path = log,
       .cwd = SYNAPS_WEB_DIR});
  ASSERT_TRUE(node) << node.error().message;
  auto status = node->Wait(std::chrono::minutes(6));
  ASSERT_TRUE(status.has_value()) << "the browser test did not finish in 6 minutes\n"
                                  << testing::ReadFile(log);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << testing::ReadFile(log) << "\n(screenshots in " << shots << ")";
}

// A measurement, not part of `make test` (disabled): the Runs page with 100,000 runs in the
// database (issue #14: interactive in ≤ 1 s), inserted with SQL, then timed in Chromium by
// web/e2e/runs-page.bench.mjs. Run it with
//   build/tests/console_e2e_test --gtest_also_run_disabled_tests --gtest_filter='ConsoleBench.*'
// and read the numbers in build/tests/runs-page-bench.log (docs/console.md, "Budget").
TEST(ConsoleBench, DISABLED_RunsPageWith100000Runs) {
  Cluster c(std::map<std::string, std::string>{{"SYNAPS_RATE_LIMIT_RPS", "0"}});
  c.StartApi();
  // One thread, command and succeeded run per second of the last 100,000 seconds, in the
  // bootstrap token's tenant; and 1,000 of another tenant for the every-tenant list.
  for (auto [tenant, n] :
       {std::pair{std::string("default"), 100000}, std::pair{std::string("globex"), 1000}}) {
    auto done = c.db().Exec(
        "WITH s AS (SELECT g, gen_random_uuid() AS t, gen_random_uuid() AS c,"
        "  gen_random_uuid() AS r, now() - g * interval '1 second' AS at"
        "  FROM generate_series(1, $2::integer) g),"
        " th AS (INSERT INTO synaps.threads (id, tenant_id, created_at) SELECT t, $1, at FROM s),"
        " cm AS (INSERT INTO synaps.commands (id, tenant_id, thread_id, kind, payload,"
        "  request_hash, submitted_by, created_at)"
        "  SELECT c, $1, t, 'prompt', jsonb_build_object('kind', 'prompt', 'input',"
        "  jsonb_build_object('text', 'bench run ' || g), 'tags', jsonb_build_array('bench'),"
        "  'metadata', jsonb_build_object('shard', (g % 100)::text, 'order', g)),"
        "  md5(g::text), 'bench', at FROM s)"
        " INSERT INTO synaps.runs (id, command_id, thread_id, tenant_id, status, created_at,"
        "  started_at, finished_at, thread_seq)"
        " SELECT r, c, t, $1, 'succeeded', at, at, at + interval '1 second', 1 FROM s",
        {tenant, std::to_string(n)});
    ASSERT_TRUE(done) << done.error().message;
  }
  ASSERT_TRUE(c.db().Exec("ANALYZE synaps.runs, synaps.commands, synaps.threads"));
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.runs"), 101000);
  // The API alone (no browser): GET /v1/runs?limit=50 per case, the median of 5 after a warm-up.
  for (const char* query :
       {"", "text=bench%20run%2099", "text=bench%20run%2077777", "text=no-such-words",
        "metadata=shard%3D42", "metadata=order%3D77777", "metadata=shard%3Dnone", "tenant=*"}) {
    std::vector<double> ms;
    for (int i = 0; i < 6; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      auto r = c.Call("GET", std::string("/v1/runs?limit=50&") + query);
      ASSERT_EQ(r.status, 200) << r.body;
      if (i > 0) {
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                         .count());
      }
    }
    std::sort(ms.begin(), ms.end());
    std::cout << "{\"api\":\"/v1/runs?" << query << "\",\"medianMs\":" << ms[ms.size() / 2]
              << "}" << std::endl;
  }
  std::string log = std::string(SYNAPS_TEST_OUTPUT_DIR) + "/runs-page-bench.log";
  auto node = ChildProcess::Spawn({.argv = {SYNAPS_NODE, "e2e/runs-page.bench.mjs"},
                                   .env = {{"CONSOLE_URL", c.base_url()},
                                           {"ADMIN_TOKEN", Cluster::kToken},
                                           {"CHROMIUM", SYNAPS_CHROMIUM}},
                                   .log_path = log,
                                   .cwd = SYNAPS_WEB_DIR});
  ASSERT_TRUE(node) << node.error().message;
  auto status = node->Wait(std::chrono::minutes(20));
  ASSERT_TRUE(status.has_value()) << testing::ReadFile(log);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << testing::ReadFile(log);
  std::cout << testing::ReadFile(log);
}

}  // namespace
}  // namespace synaps
