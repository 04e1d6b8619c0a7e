// The Kubernetes client and the agents' k8s tools against a fake API server over TLS
// (tests/support/fake_kube.h). No cluster runs where the tests run, so the API server is a fake;
// the TLS (a CA made per test, which the client must verify the server against), the bearer
// token read from a kubelet-style service-account directory, and the HTTP are real.
#include "k8s/kube_client.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>

#include "k8s/builtin_tools.h"
#include "support/fake_kube.h"

namespace synaps::k8s {
namespace {

using nlohmann::json;
using testing::FakeKube;
using testing::FakeServiceAccount;
using testing::KubeReply;
using testing::KubeRequest;
using testing::KubeTlsIdentity;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kNamespace = "agents";

json PodList() {
  return json::parse(R"json({
    "kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "123"},
    "items": [
      {"metadata": {"name": "web-1", "namespace": "agents",
                    "creationTimestamp": "2024-05-01T11:00:00Z"},
       "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "nginx:1.25"}]},
       "status": {"phase": "Running", "containerStatuses": [
         {"name": "app", "ready": true, "restartCount": 1, "state": {"running": {}},
          "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}},
      {"metadata": {"name": "worker-2", "namespace": "agents",
                    "creationTimestamp": "2024-05-01T11:58:00Z"},
       "spec": {"nodeName": "node-b", "containers": [{"name": "w", "image": "synaps:0.1.0"}]},
       "status": {"phase": "Running", "containerStatuses": [
         {"name": "w", "ready": false, "restartCount": 4,
          "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}]})json");
}

json EventList() {
  auto event = [](const std::string& name, const std::string& type, const std::string& reason,
                  const std::string& last) {
    return json{{"metadata", {{"name", name}, {"namespace", "agents"}}},
                {"involvedObject", {{"kind", "Pod"}, {"name", name.substr(0, name.find('.'))}}},
                {"type", type},
                {"reason", reason},
                {"message", reason + " happened"},
                {"count", 3},
                {"lastTimestamp", last}};
  };
  return {{"kind", "EventList"},
          {"apiVersion", "v1"},
          {"metadata", json::object()},
          {"items",
           {event("web-1.17c1", "Normal", "Pulled", "2024-05-01T11:00:00Z"),
            event("worker-2.17c2", "Warning", "BackOff", "2024-05-01T11:59:00Z"),
            event("worker-2.17c3", "Normal", "Scheduled", "2024-05-01T11:58:00Z")}}};
}

class KubeClientTest : public ::testing::Test {
 protected:
  KubeClientTest()
      : identity(testing::MakeKubeTlsIdentity()),
        account("token-1", identity.ca_pem, kNamespace),
        fake(identity, [this](const KubeRequest& r) { return Handle(r); }) {}

  // Answers like an API server that accepts the tokens in `valid_tokens` and lets them list
  // pods and events in "agents" only; `override_reply`, when set, answers instead.
  KubeReply Handle(const KubeRequest& r) {
    std::lock_guard<std::mutex> lock(mu);
    if (override_reply) return *override_reply;
    if (!valid_tokens.contains(r.BearerToken())) {
      return FakeKube::Status(401, "Unauthorized", "Unauthorized");
    }
    if (r.method != "GET") return FakeKube::Status(405, "MethodNotAllowed", "no");
    if (r.path == "/api/v1/namespaces/agents/pods") return FakeKube::Json(PodList());
    if (r.path == "/api/v1/namespaces/agents/events") return FakeKube::Json(EventList());
    return FakeKube::Status(403, "Forbidden", "forbidden: " + r.path);
  }

  void Answer(KubeReply reply) {
    std::lock_guard<std::mutex> lock(mu);
    override_reply = std::move(reply);
  }
  void AcceptTokens(std::set<std::string> tokens) {
    std::lock_guard<std::mutex> lock(mu);
    valid_tokens = std::move(tokens);
  }

  InClusterConfig Config() {
    InClusterSources sources;
    sources.service_account_dir = account.dir();
    sources.env = [this](const char* name) -> std::optional<std::string> {
      std::string n = name;
      if (n == "KUBERNETES_SERVICE_HOST") return "127.0.0.1";
      if (n == "KUBERNETES_SERVICE_PORT") return std::to_string(fake.port());
      return std::nullopt;
    };
    auto config = LoadInClusterConfig(sources);
    EXPECT_TRUE(config) << config.error().message;
    return *config;
  }

  KubeClientOptions Options() {
    KubeClientOptions o;
    o.connect_timeout = 2s;
    o.request_timeout = 5s;
    return o;
  }

  KubeClient& Client() {
    if (!client) client = std::make_unique<KubeClient>(io.get_executor(), Config(), Options());
    return *client;
  }

  void RunUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline = 20s) {
    io.restart();
    auto until = Clock::now() + deadline;
    while (!done() && Clock::now() < until) io.run_one_for(20ms);
  }

  Result<json> ListPods(ListQuery query = {}) {
    std::optional<Result<json>> result;
    int calls = 0;
    Client().ListPods(query, [&](Result<json> r) {
      ++calls;
      result = std::move(r);
    });
    EXPECT_FALSE(result.has_value()) << "the callback ran inside ListPods()";
    started = Clock::now();
    RunUntil([&] { return result.has_value(); });
    elapsed = Clock::now() - started;
    io.run_for(20ms);
    EXPECT_EQ(calls, 1);
    if (!result) return Fail(ErrorCode::kInternal, "test: no callback before the deadline");
    return std::move(*result);
  }

  Result<json> Tool(BuiltinTools& tools, std::string_view name, const json& arguments) {
    std::optional<Result<json>> result;
    tools.Invoke(name, arguments, [&](Result<json> r) { result = std::move(r); });
    RunUntil([&] { return result.has_value(); });
    if (!result) return Fail(ErrorCode::kInternal, "test: no callback before the deadline");
    return std::move(*result);
  }

  static void ExpectError(const Result<json>& r, ErrorCode code,
                          std::initializer_list<std::string> words) {
    ASSERT_FALSE(r) << r->dump();
    EXPECT_EQ(r.error().code, code) << r.error().message;
    for (const auto& w : words) {
      EXPECT_NE(r.error().message.find(w), std::string::npos)
          << "'" << w << "' not in: " << r.error().message;
    }
  }

  KubeTlsIdentity identity;
  FakeServiceAccount account;
  std::mutex mu;
  std::set<std::string> valid_tokens{"token-1"};  // guarded by mu
  std::optional<KubeReply> override_reply;        // guarded by mu
  FakeKube fake;
  boost::asio::io_context io;
  std::unique_ptr<KubeClient> client;
  Clock::time_point started;
  Clock::duration elapsed{};
};

TEST_F(KubeClientTest, ListsPodsWithTheBearerToken) {
  auto r = ListPods({20, "app=web", ""});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ((*r)["kind"], "PodList");
  EXPECT_EQ((*r)["items"].size(), 2u);

  auto seen = fake.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].path, "/api/v1/namespaces/agents/pods");
  EXPECT_EQ(seen[0].query,
            (std::map<std::string, std::string>{{"limit", "20"}, {"labelSelector", "app=web"}}));
  EXPECT_EQ(seen[0].headers["authorization"], "Bearer token-1");
  EXPECT_EQ(seen[0].headers["accept"], "application/json");
}

TEST_F(KubeClientTest, ToolsSummarizePodsAndEvents) {
  BuiltinToolsOptions options;
  options.now = [] { return *ParseTimestamp("2024-05-01T12:00:00Z"); };
  BuiltinTools tools(io.get_executor(),
                     std::make_unique<KubeClient>(io.get_executor(), Config(), Options()), options);
  ASSERT_TRUE(tools.available());

  auto pods = Tool(tools, "k8s_pods", {{"labelSelector", "app in (web,worker)"}});
  ASSERT_TRUE(pods) << pods.error().message;
  EXPECT_EQ((*pods)["namespace"], "agents");
  EXPECT_EQ((*pods)["count"], 2);
  EXPECT_EQ((*pods)["pods"][0], json::parse(R"json({
      "name": "web-1", "status": "Running", "phase": "Running", "ready": "1/1", "restarts": 1,
      "node": "node-a", "age": "60m",
      "containers": [{"name": "app", "image": "nginx:1.25", "ready": true, "restarts": 1,
                      "state": "running", "lastState": "terminated: OOMKilled (exit code 137)"}]})json"));
  EXPECT_EQ((*pods)["pods"][1]["status"], "CrashLoopBackOff");

  auto events = Tool(tools, "k8s.events", {{"limit", 2}, {"fieldSelector", "type=Warning"}});
  ASSERT_TRUE(events) << events.error().message;
  EXPECT_EQ((*events)["count"], 2);
  EXPECT_EQ((*events)["more"], true);
  EXPECT_EQ((*events)["events"][0], json::parse(R"json({
      "type": "Warning", "reason": "BackOff", "object": "Pod/worker-2",
      "message": "BackOff happened", "count": 3, "last": "2024-05-01T11:59:00Z", "age": "60s"})json"));
  EXPECT_EQ((*events)["events"][1]["reason"], "Scheduled");

  auto seen = fake.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].query["labelSelector"], "app in (web,worker)");
  EXPECT_EQ(seen[0].query["limit"], "20");
  EXPECT_EQ(seen[1].path, "/api/v1/namespaces/agents/events");
  EXPECT_EQ(seen[1].query["fieldSelector"], "type=Warning");
  EXPECT_EQ(seen[1].query["limit"], "500");  // scanned, then the newest 2 kept
  for (const auto& request : seen) EXPECT_EQ(request.method, "GET");
}

TEST_F(KubeClientTest, PicksUpARotatedToken) {
  ASSERT_TRUE(ListPods());
  ASSERT_TRUE(ListPods());
  EXPECT_EQ(Client().token_reads(), 1);  // unchanged file, read once

  // The kubelet rotates the bound token; the API server stops accepting the old one.
  account.Rotate("token-2");
  AcceptTokens({"token-2"});
  auto r = ListPods();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(Client().token_reads(), 2);
  auto seen = fake.requests();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[1].BearerToken(), "token-1");
  EXPECT_EQ(seen[2].BearerToken(), "token-2");
}

TEST_F(KubeClientTest, RefusesAServerNotSignedByTheClusterCa) {
  KubeTlsIdentity other = testing::MakeKubeTlsIdentity();
  account.WriteCa(other.ca_pem);
  auto r = ListPods();
  ExpectError(r, ErrorCode::kUnavailable,
              {"TLS with the API server at https://127.0.0.1:", "could not be verified",
               account.dir() + "/ca.crt", "nothing was sent"});
  EXPECT_TRUE(fake.requests().empty()) << "the token went to an unverified server";
  EXPECT_TRUE(FakeKube::WaitFor([&] { return fake.failed_handshakes() > 0; }, 5s));
}

TEST_F(KubeClientTest, RefusesACertificateForAnotherName) {
  KubeTlsIdentity wrong_name = testing::MakeKubeTlsIdentity({"DNS:kubernetes.default.svc"});
  FakeKube impostor(wrong_name, [](const KubeRequest&) { return FakeKube::Json(PodList()); });
  account.WriteCa(wrong_name.ca_pem);
  InClusterConfig config = Config();
  config.server = "https://127.0.0.1:" + std::to_string(impostor.port());
  client = std::make_unique<KubeClient>(io.get_executor(), config, Options());
  auto r = ListPods();
  ExpectError(r, ErrorCode::kUnavailable, {"could not be verified"});
  EXPECT_TRUE(impostor.requests().empty());
}

TEST_F(KubeClientTest, UnauthorizedIsAClearError) {
  AcceptTokens({});
  auto r = ListPods();
  ExpectError(r, ErrorCode::kUnauthenticated,
              {"kubernetes: GET /api/v1/namespaces/agents/pods: HTTP 401: Unauthorized",
               "refused the service-account token in " + account.dir() + "/token"});
  EXPECT_EQ(r.error().message.find("token-1"), std::string::npos) << "the token leaked";
}

TEST_F(KubeClientTest, ForbiddenNamesTheMissingRole) {
  Answer(FakeKube::Status(403, "Forbidden",
                          "pods is forbidden: User \"system:serviceaccount:agents:synaps-worker\" "
                          "cannot list resource \"pods\" in API group \"\" in the namespace "
                          "\"agents\""));
  auto r = ListPods();
  ExpectError(r, ErrorCode::kPermissionDenied,
              {"HTTP 403: pods is forbidden: User \"system:serviceaccount:agents:synaps-worker\"",
               "needs a Role with get, list and watch on pods and events in namespace agents",
               "worker.kubernetesAccess"});
}

TEST_F(KubeClientTest, MissingNamespaceIsNotFound) {
  Answer(FakeKube::Status(404, "NotFound", "namespaces \"agents\" not found"));
  auto r = ListPods();
  ExpectError(r, ErrorCode::kNotFound, {"HTTP 404: namespaces \"agents\" not found"});
}

TEST_F(KubeClientTest, BadSelectorKeepsTheServersMessage) {
  Answer(FakeKube::Status(400, "BadRequest",
                          "unable to parse requirement: found '=', expected: identifier"));
  BuiltinTools tools(io.get_executor(),
                     std::make_unique<KubeClient>(io.get_executor(), Config(), Options()));
  auto r = Tool(tools, "k8s.pods", {{"labelSelector", "=web"}});
  ExpectError(r, ErrorCode::kInvalidArgument, {"HTTP 400: unable to parse requirement"});
}

TEST_F(KubeClientTest, ServerErrorsAreRetryable) {
  Answer(FakeKube::Status(503, "ServiceUnavailable", "etcdserver: leader changed"));
  auto r = ListPods();
  ExpectError(r, ErrorCode::kUnavailable, {"HTTP 503: etcdserver: leader changed"});
  EXPECT_TRUE(r.error().retryable());

  KubeReply html;
  html.status = 502;
  html.content_type = "text/html";
  html.body = "<html>bad gateway</html>";
  Answer(html);
  r = ListPods();
  ExpectError(r, ErrorCode::kUnavailable, {"HTTP 502: <html>bad gateway</html>"});
}

TEST_F(KubeClientTest, TimesOut) {
  KubeReply hang;
  hang.hang = true;
  Answer(hang);
  KubeClientOptions options = Options();
  options.request_timeout = 300ms;
  client = std::make_unique<KubeClient>(io.get_executor(), Config(), options);
  auto r = ListPods();
  ExpectError(r, ErrorCode::kDeadlineExceeded, {"no answer from the API server"});
  EXPECT_TRUE(r.error().retryable());
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 3s);
}

TEST_F(KubeClientTest, TruncatedAnswerIsAnError) {
  KubeReply cut = FakeKube::Json(PodList());
  cut.cut_after = 40;
  Answer(cut);
  auto r = ListPods();
  ExpectError(r, ErrorCode::kUnavailable, {"broke before the whole answer arrived"});
}

TEST_F(KubeClientTest, InvalidJsonIsAnError) {
  KubeReply prefix;
  prefix.body = PodList().dump().substr(0, 60);  // complete as sent, but not a whole document
  Answer(prefix);
  auto r = ListPods();
  ExpectError(r, ErrorCode::kInternal, {"not valid JSON (60 bytes)"});

  Answer(FakeKube::Json({{"kind", "Status"}, {"status", "Success"}}));
  r = ListPods();
  ExpectError(r, ErrorCode::kInternal, {"not a PodList"});
}

TEST_F(KubeClientTest, RefusesAnAnswerLargerThanTheLimit) {
  KubeClientOptions options = Options();
  options.max_response_bytes = 100;
  client = std::make_unique<KubeClient>(io.get_executor(), Config(), options);
  auto r = ListPods();
  ExpectError(r, ErrorCode::kResourceExhausted, {"larger than 100 bytes"});
}

TEST_F(KubeClientTest, ConnectionRefusedIsUnavailable) {
  InClusterConfig config = Config();
  {
    FakeKube gone(identity, [](const KubeRequest&) { return KubeReply{}; });
    config.server = "https://127.0.0.1:" + std::to_string(gone.port());
  }
  client = std::make_unique<KubeClient>(io.get_executor(), config, Options());
  auto r = ListPods();
  ExpectError(r, ErrorCode::kUnavailable, {"cannot connect to the API server at"});
}

TEST_F(KubeClientTest, TokenRemovedIsUnauthenticatedWithoutARequest) {
  ASSERT_TRUE(ListPods());
  std::filesystem::remove(account.dir() + "/..data/token");
  auto r = ListPods();
  ExpectError(r, ErrorCode::kUnauthenticated, {"cannot read the service-account token"});
  EXPECT_EQ(fake.requests().size(), 1u);
}

int ThreadCount() {
  int n = 0;
  DIR* d = opendir("/proc/self/task");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n;
}

TEST_F(KubeClientTest, ManyRequestsInFlightOnOneThread) {
  KubeReply slow = FakeKube::Json(PodList());
  slow.delay = 300ms;
  Answer(slow);
  int threads_before = ThreadCount();
  constexpr int kRequests = 40;
  int ok = 0;
  int max_threads = 0;
  for (int i = 0; i < kRequests; ++i) {
    Client().ListPods({}, [&](Result<json> r) { ok += r ? 1 : 0; });
  }
  EXPECT_EQ(Client().requests_in_flight(), static_cast<size_t>(kRequests));
  started = Clock::now();
  io.restart();
  auto until = Clock::now() + 20s;
  while (ok < kRequests && Clock::now() < until) {
    io.run_one_for(20ms);
    max_threads = std::max(max_threads, ThreadCount());
  }
  elapsed = Clock::now() - started;
  EXPECT_EQ(ok, kRequests);
  EXPECT_EQ(Client().requests_in_flight(), 0u);
  EXPECT_LT(elapsed, 5s) << "the requests did not run concurrently";
  EXPECT_LE(max_threads, threads_before) << "a thread was started for the requests";
  for (const auto& request : fake.requests()) EXPECT_EQ(request.method, "GET");
}

TEST_F(KubeClientTest, DestroyingTheClientAbandonsRequests) {
  KubeReply hang;
  hang.hang = true;
  Answer(hang);
  int calls = 0;
  Client().ListPods({}, [&](Result<json>) { ++calls; });
  RunUntil([&] { return !fake.requests().empty(); }, 5s);
  ASSERT_EQ(fake.requests().size(), 1u);
  client.reset();
  io.restart();
  io.run_for(100ms);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace synaps::k8s
