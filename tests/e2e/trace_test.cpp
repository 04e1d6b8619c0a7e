// W3C trace context from submit to model call (docs/observability.md, "Trace context"), with a
// real API, worker, PostgreSQL and NATS; the model provider and the HTTP tool are fakes on
// loopback that record the headers they receive. Checked: the API answers every request with a
// `traceparent` that continues the client's trace (or starts one), the run names its trace, and
// the provider and tool requests of that run carry the same trace id under spans of their own.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/cluster.h"
#include "support/fake_openai.h"
#include "support/synaps_process.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;
using testing::FakeOpenAi;

constexpr const char* kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr const char* kClientSpan = "00f067aa0ba902b7";

std::string TraceIdOf(const std::string& traceparent) {
  return traceparent.size() == 55 ? traceparent.substr(3, 32) : "";
}
std::string SpanIdOf(const std::string& traceparent) {
  return traceparent.size() == 55 ? traceparent.substr(36, 16) : "";
}

std::string Header(const http::Response& r, const std::string& name) {
  auto it = r.headers.find(name);  // keys are lower-cased
  return it == r.headers.end() ? "" : it->second;
}

void Put(Cluster& c, const std::string& kind, const std::string& name, const json& spec) {
  auto r = c.Call("PUT", "/v1/control/" + kind + "/" + name,
                  json{{"spec", spec}, {"reason", "trace test"}}.dump());
  ASSERT_EQ(r.status / 100, 2) << r.body;
}

TEST(TraceTest, TheClientsTraceReachesTheModelProvider) {
  FakeOpenAi model([](const testing::FakeRequest&, int) {
    return FakeOpenAi::Completion("traced answer");
  });
  Cluster c;
  c.StartApi();
  c.StartWorker();
  Put(c, "routes", "default",
      {{"provider", "openai-compatible"}, {"baseUrl", model.base_url()}, {"model", "m"}});

  const std::string sent = std::string("00-") + kTraceId + "-" + kClientSpan + "-01";
  auto submitted = c.Call("POST", "/v1/commands/submit",
                          json{{"kind", "prompt"}, {"input", {{"text", "trace me"}}}}.dump(),
                          {"traceparent: " + sent, "tracestate: vendor=abc"});
  ASSERT_EQ(submitted.status, 201) << submitted.body;
  const std::string answered = Header(submitted, "traceparent");
  EXPECT_EQ(TraceIdOf(answered), kTraceId) << answered;
  EXPECT_NE(SpanIdOf(answered), kClientSpan) << "the API's span is a child of the client's";
  EXPECT_EQ(Header(submitted, "tracestate"), "vendor=abc");

  json run = c.WaitFinished(json::parse(submitted.body)["runId"]);
  ASSERT_EQ(run["status"], "succeeded") << run.dump();
  EXPECT_EQ(TraceIdOf(run["traceparent"].get<std::string>()), kTraceId) << run.dump();

  ASSERT_EQ(model.request_count(), 1);
  const auto headers = model.requests()[0].headers;
  ASSERT_TRUE(headers.contains("traceparent")) << "the provider request carries the trace";
  const std::string at_model = headers.at("traceparent");
  EXPECT_EQ(TraceIdOf(at_model), kTraceId) << at_model;
  EXPECT_NE(SpanIdOf(at_model), kClientSpan);
  EXPECT_NE(SpanIdOf(at_model), SpanIdOf(answered)) << "the model call is a span of its own";
  EXPECT_EQ(headers.count("tracestate") ? headers.at("tracestate") : "", "vendor=abc");
}

TEST(TraceTest, AnHttpToolCallCarriesTheRunsTrace) {
  FakeOpenAi weather([](const testing::FakeRequest&, int) {
    testing::FakeReply reply;
    reply.body = R"({"celsius": 21})";
    return reply;
  });
  Cluster c;
  c.StartApi();
  c.StartWorker();
  Put(c, "tools", "weather",
      {{"type", "http"},
       {"description", "Current weather of a city"},
       {"url", "http://127.0.0.1:" + std::to_string(weather.port()) + "/weather"},
       {"allowHosts", {"127.0.0.1"}},
       {"parameters",
        {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}}});
  Put(c, "routes", "agent-model",
      {{"provider", "local"},
       {"model", "echo"},
       {"weight", 0},
       {"params",
        {{"script",
          {{{"toolCalls", {{{"name", "weather"}, {"arguments", {{"city", "Oslo"}}}}}}},
           {{"text", "21 degrees"}}}}}}});
  auto submitted = c.Call("POST", "/v1/commands/submit",
                          json{{"kind", "agent"},
                               {"input", {{"text", "Weather in Oslo?"}}},
                               {"route", "agent-model"},
                               {"tools", {"weather"}}}
                              .dump());
  ASSERT_EQ(submitted.status, 201) << submitted.body;
  const std::string started = Header(submitted, "traceparent");
  ASSERT_EQ(TraceIdOf(started).size(), 32u) << "a request without traceparent starts a trace";
  json run = c.WaitFinished(json::parse(submitted.body)["runId"]);
  ASSERT_EQ(run["status"], "succeeded") << run.dump();
  EXPECT_EQ(TraceIdOf(run["traceparent"].get<std::string>()), TraceIdOf(started));
  ASSERT_EQ(weather.request_count(), 1);
  const auto headers = weather.requests()[0].headers;
  ASSERT_TRUE(headers.contains("traceparent"));
  EXPECT_EQ(TraceIdOf(headers.at("traceparent")), TraceIdOf(started));
  EXPECT_FALSE(headers.contains("tracestate")) << "none was sent, none is made up";
}

TEST(TraceTest, AMalformedTraceparentStartsANewTraceInsteadOfFailing) {
  Cluster c;
  c.StartApi();
  for (const std::string& bad : std::vector<std::string>{
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "garbage",
        std::string("00-") + kTraceId + "-" + kClientSpan + "-01-extra"}) {
    auto r = c.Call("GET", "/v1/runs", "", {"traceparent: " + bad, "tracestate: a\tb"});
    ASSERT_EQ(r.status, 200) << bad << ": " << r.body;
    const std::string answered = Header(r, "traceparent");
    ASSERT_EQ(answered.size(), 55u) << answered;
    EXPECT_NE(TraceIdOf(answered), "00000000000000000000000000000000");
    EXPECT_NE(TraceIdOf(answered), kTraceId);
    EXPECT_EQ(Header(r, "tracestate"), "") << "a tracestate with a tab is not carried";
  }
}

}  // namespace
}  // namespace synaps
