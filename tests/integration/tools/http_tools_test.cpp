// HttpTools against a real HTTP server on 127.0.0.1 (support/fake_openai.h, used here as a
// generic HTTP fake). Names under .test resolve through the test's own resolver, so a call that
// reaches the server also shows that libcurl connected to the pinned, checked address.
#include "tools/http_tools.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>
#include <stdexcept>

#include "support/fake_openai.h"

namespace synaps::tools {
namespace {

namespace asio = boost::asio;
using nlohmann::json;
using testing::FakeOpenAi;
using testing::FakeReply;
using testing::FakeRequest;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

Result<std::vector<IpAddress>> TestResolver(const std::string& host) {
  std::map<std::string, std::vector<std::string>> names = {
      {"tool.test", {"127.0.0.1"}},
      {"meta.test", {"169.254.169.254"}},
      {"mixed.test", {"127.0.0.1", "::ffff:169.254.169.254"}}};
  auto it = names.find(host);
  if (it == names.end()) return Fail(ErrorCode::kNotFound, "tool host " + host + " does not resolve");
  std::vector<IpAddress> out;
  for (const auto& a : it->second) out.push_back(*ParseIpAddress(a));
  return out;
}

class HttpToolsTest : public ::testing::Test {
 protected:
  HttpToolsTest()
      : fake_([this](const FakeRequest& r, int i) { return handler_(r, i); }) {
    options_.resolve = TestResolver;
  }

  control::Tool Tool(const std::string& url, std::vector<std::string> allow = {"tool.test"},
                     const std::string& method = "POST", int timeout_ms = 5000) {
    control::Tool t;
    t.name = "runbook-search";
    t.url = url;
    t.method = method;
    t.allow_hosts = std::move(allow);
    t.timeout_ms = timeout_ms;
    t.parameters = {{"type", "object"},
                    {"properties", {{"query", {{"type", "string"}}}, {"limit", {{"type", "integer"}}}}}};
    return t;
  }
  std::string Url(const std::string& path = "/search") {
    return "http://tool.test:" + std::to_string(fake_.port()) + path;
  }

  // Invokes and runs the loop until the callback ran; checks it ran once and not inside Invoke.
  Result<json> Run(const control::Tool& tool, const json& arguments) {
    if (!tools_) tools_ = std::make_unique<HttpTools>(io_.get_executor(), options_);
    std::optional<Result<json>> result;
    int callbacks = 0;
    bool inside_invoke = true;
    tools_->Invoke(tool, arguments, [&](Result<json> r) {
      EXPECT_FALSE(inside_invoke);
      ++callbacks;
      result = std::move(r);
    });
    inside_invoke = false;
    RunLoop([&] { return result.has_value(); }, 20s);
    RunLoop([] { return false; }, 20ms);  // a second callback would show here
    EXPECT_EQ(callbacks, 1);
    return result ? std::move(*result) : Fail(ErrorCode::kInternal, "no callback");
  }

  // Runs the loop (which otherwise stops when idle) until `done` holds or `limit` passes.
  void RunLoop(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    auto guard = asio::make_work_guard(io_);
    io_.restart();
    auto deadline = Clock::now() + limit;
    while (!done() && Clock::now() < deadline) io_.run_for(5ms);
  }

  void ExpectError(const Result<json>& r, ErrorCode code, const std::string& says) {
    ASSERT_FALSE(r) << r->dump();
    EXPECT_EQ(r.error().code, code) << r.error().message;
    EXPECT_NE(r.error().message.find(says), std::string::npos) << r.error().message;
  }

  std::function<FakeReply(const FakeRequest&, int)> handler_ = [](const FakeRequest&, int) {
    return FakeReply{.body = R"({"ok":true})"};
  };
  FakeOpenAi fake_;
  asio::io_context io_;
  HttpToolsOptions options_;
  std::unique_ptr<HttpTools> tools_;
};

TEST_F(HttpToolsTest, PostsTheArgumentsAndReturnsTheJsonAnswer) {
  handler_ = [](const FakeRequest&, int) {
    return FakeReply{.body = R"({"sections":[{"title":"Restarts","score":0.9}]})"};
  };
  auto r = Run(Tool(Url()), {{"query", "crash loop"}, {"limit", 3}});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, json::parse(R"({"sections":[{"title":"Restarts","score":0.9}]})"));
  ASSERT_EQ(fake_.request_count(), 1);
  FakeRequest sent = fake_.requests()[0];
  EXPECT_EQ(sent.method, "POST");
  EXPECT_EQ(sent.target, "/search");
  EXPECT_EQ(sent.headers["content-type"], "application/json");
  EXPECT_EQ(sent.headers["x-synaps-tool"], "runbook-search");
  EXPECT_EQ(sent.headers["host"], "tool.test:" + std::to_string(fake_.port()));
  EXPECT_EQ(sent.Json(), json({{"query", "crash loop"}, {"limit", 3}}));
}

TEST_F(HttpToolsTest, GetSendsTheArgumentsAsQueryParameters) {
  auto r = Run(Tool(Url("/search?v=2"), {"tool.test"}, "GET"),
               {{"query", "a&b=c/d"}, {"limit", 3}});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(fake_.request_count(), 1);
  FakeRequest sent = fake_.requests()[0];
  EXPECT_EQ(sent.method, "GET");
  EXPECT_EQ(sent.target, "/search?v=2&limit=3&query=a%26b%3dc%2fd");
  EXPECT_TRUE(sent.body.empty());
}

TEST_F(HttpToolsTest, TextAnswersAreWrappedAndCutAtTheLimit) {
  handler_ = [](const FakeRequest&, int i) {
    return FakeReply{.content_type = "text/plain",
                     .body = i == 0 ? "plain words" : std::string(100 * 1024, 'x')};
  };
  auto small = Run(Tool(Url()), json::object());
  ASSERT_TRUE(small) << small.error().message;
  EXPECT_EQ(*small, json({{"status", 200}, {"contentType", "text/plain"}, {"body", "plain words"}}));
  auto big = Run(Tool(Url()), json::object());
  ASSERT_TRUE(big) << big.error().message;
  EXPECT_EQ((*big)["status"], 200);
  EXPECT_EQ((*big)["body"].get<std::string>().size(), 16u * 1024);
  EXPECT_EQ((*big)["truncated"], true);
}

TEST_F(HttpToolsTest, ServerErrorsAreResultsTheModelCanRead) {
  handler_ = [](const FakeRequest&, int i) {
    if (i == 0) return FakeReply{.status = 500, .body = R"({"message":"index offline"})"};
    return FakeReply{.status = 404, .content_type = "text/html", .body = "<h1>no</h1>"};
  };
  auto r = Run(Tool(Url()), json::object());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, json({{"status", 500}, {"error", "HTTP 500"}, {"body", {{"message", "index offline"}}}}));
  auto html = Run(Tool(Url()), json::object());
  ASSERT_TRUE(html) << html.error().message;
  EXPECT_EQ(*html, json({{"status", 404}, {"error", "HTTP 404"}, {"body", "<h1>no</h1>"}}));
}

TEST_F(HttpToolsTest, TimeoutIsDeadlineExceeded) {
  handler_ = [](const FakeRequest&, int) { return FakeReply{.hang = true}; };
  auto start = Clock::now();
  auto r = Run(Tool(Url(), {"tool.test"}, "POST", 300), json::object());
  ExpectError(r, ErrorCode::kDeadlineExceeded, "tool runbook-search: no answer within 300 ms");
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST_F(HttpToolsTest, HostNotInAllowHostsIsRefusedWithoutConnecting) {
  std::string url = "http://127.0.0.1:" + std::to_string(fake_.port()) + "/search";
  auto r = Run(Tool(url, {"api.example.com"}), json::object());
  ExpectError(r, ErrorCode::kPermissionDenied, "127.0.0.1:" + std::to_string(fake_.port()) +
                                                   " is not in allowHosts (api.example.com)");
  auto other_port = Run(Tool(url, {"127.0.0.1:1"}), json::object());
  ExpectError(other_port, ErrorCode::kPermissionDenied, "not in allowHosts");
  EXPECT_EQ(fake_.request_count(), 0);
  EXPECT_EQ(fake_.open_connections(), 0);
}

TEST_F(HttpToolsTest, MetadataAddressIsRefusedInEveryForm) {
  struct Case {
    std::string url;
    std::vector<std::string> allow;
  };
  for (const Case& c : std::vector<Case>{
           {"http://169.254.169.254/latest/meta-data/", {"169.254.169.254"}},
           {"http://2852039166/latest/meta-data/", {"169.254.169.254"}},
           {"http://0xA9FEA9FE/latest/meta-data/", {"169.254.169.254"}},
           {"http://[::ffff:169.254.169.254]/", {"[::ffff:169.254.169.254]"}},
           {"http://meta.test/latest/meta-data/", {"meta.test"}},
           {"http://mixed.test:" + std::to_string(fake_.port()) + "/", {"mixed.test"}}}) {
    SCOPED_TRACE(c.url);
    ExpectError(Run(Tool(c.url, c.allow), json::object()), ErrorCode::kPermissionDenied,
                "cloud metadata address, which tools never reach");
  }
  ExpectError(Run(Tool("http://metadata.google.internal/", {"metadata.google.internal"}),
                  json::object()),
              ErrorCode::kPermissionDenied, "cloud metadata service");
  EXPECT_EQ(fake_.request_count(), 0);
}

TEST_F(HttpToolsTest, RedirectIsNotFollowed) {
  handler_ = [](const FakeRequest&, int) {
    return FakeReply{.status = 302,
                     .headers = {{"Location", "http://169.254.169.254/latest/meta-data/iam"}}};
  };
  auto r = Run(Tool(Url()), json::object());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ((*r)["status"], 302);
  EXPECT_EQ((*r)["location"], "http://169.254.169.254/latest/meta-data/iam");
  EXPECT_NE((*r)["error"].get<std::string>().find("redirect not followed"), std::string::npos);
  EXPECT_EQ(fake_.request_count(), 1);
}

TEST_F(HttpToolsTest, InternalAddressNeedsAnExactEntryAndIsRefusedUnderDenyPrivate) {
  ExpectError(Run(Tool(Url(), {"*.test"}), json::object()), ErrorCode::kPermissionDenied,
              "only hosts listed exactly in allowHosts");
  options_.policy.deny_private = true;
  tools_.reset();  // the next Run makes one with these options
  ExpectError(Run(Tool(Url()), json::object()), ErrorCode::kPermissionDenied,
              "tool.test resolves to 127.0.0.1, which is a loopback address, refused by "
              "SYNAPS_TOOLS_DENY_PRIVATE");
  EXPECT_EQ(fake_.request_count(), 0);
}

TEST_F(HttpToolsTest, ProxySettingsFromTheEnvironmentAreIgnored) {
  setenv("http_proxy", "http://127.0.0.1:1", 1);
  setenv("ALL_PROXY", "http://127.0.0.1:1", 1);
  auto r = Run(Tool(Url()), json::object());
  unsetenv("http_proxy");
  unsetenv("ALL_PROXY");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(fake_.request_count(), 1);
}

TEST_F(HttpToolsTest, BadArgumentsAreRefusedBeforeTheNetwork) {
  ExpectError(Run(Tool(Url()), {{"query", 7}}), ErrorCode::kInvalidArgument,
              "do not match its parameters");
  ExpectError(Run(Tool(Url()), json::array()), ErrorCode::kInvalidArgument, "JSON object");
  tools_ = std::make_unique<HttpTools>(io_.get_executor(), options_);
  std::optional<Result<json>> text;
  tools_->InvokeText(Tool(Url()), "{\"query\": ", [&](Result<json> r) { text = std::move(r); });
  RunLoop([&] { return text.has_value(); }, 5s);
  ASSERT_TRUE(text);
  ExpectError(*text, ErrorCode::kInvalidArgument, "not valid JSON");
  EXPECT_EQ(fake_.request_count(), 0);
}

TEST_F(HttpToolsTest, UnknownHostIsNotFound) {
  ExpectError(Run(Tool("http://nowhere.test/", {"nowhere.test"}), json::object()),
              ErrorCode::kNotFound, "nowhere.test does not resolve");
}

TEST_F(HttpToolsTest, DestructionAbortsCallsAndRunsNoCallback) {
  handler_ = [](const FakeRequest&, int) { return FakeReply{.hang = true}; };
  tools_ = std::make_unique<HttpTools>(io_.get_executor(), options_);
  int callbacks = 0;
  for (int i = 0; i < 6; ++i) {  // more than the pool's threads: some still wait
    tools_->Invoke(Tool(Url(), {"tool.test"}, "POST", 60000), json::object(),
                   [&](Result<json>) { ++callbacks; });
  }
  ASSERT_TRUE(FakeOpenAi::WaitFor([&] { return fake_.request_count() >= 4; }, 10s));
  auto start = Clock::now();
  tools_.reset();
  EXPECT_LT(Clock::now() - start, 3s);
  RunLoop([] { return false; }, 50ms);
  EXPECT_EQ(callbacks, 0);
}

}  // namespace
}  // namespace synaps::tools

namespace synaps::tools {
namespace {

// The tool pool's barrier (docs/reliability.md, "Bus and thread barriers"): a call that throws on
// a pool thread answers its caller with an internal error, and the pool serves the next calls.
TEST_F(HttpToolsTest, ACallThatThrowsFailsAloneAndThePoolGoesOn) {
  options_.threads = 1;  // the one thread that threw must be the one that serves next
  auto throws = std::make_shared<std::atomic<int>>(2);
  options_.resolve = [throws](const std::string& host) -> Result<std::vector<IpAddress>> {
    if (throws->fetch_sub(1) > 0) throw std::runtime_error("resolver bug");
    return TestResolver(host);
  };
  for (int i = 0; i < 2; ++i) {
    ExpectError(Run(Tool(Url()), {{"query", "q"}}), ErrorCode::kInternal,
                "tool runbook-search failed: resolver bug");
  }
  auto r = Run(Tool(Url()), {{"query", "after the throw"}});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, json::parse(R"({"ok":true})"));
  EXPECT_EQ(fake_.request_count(), 1);
}

}  // namespace
}  // namespace synaps::tools
