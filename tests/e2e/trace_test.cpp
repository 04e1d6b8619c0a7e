// W3C trace context from submit to model call (docs/observability.md, "Trace context"), with a
// real API, worker, PostgreSQL and NATS; the model provider and the HTTP tool are fakes on
// loopback that record the headers they receive. Checked: the API answers every request with a
// `traceparent` that continues the client's trace (or starts one), the run names its trace, and
// the provider and tool requests of that run carry the same trace id under spans of their own.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <thread>

#include "support/cluster.h"
#include "support/fake_openai.h"
#include "support/synaps_process.h"
#include "support/test_stack.h"

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

// An http tool `weather` served by `weather`, and a scripted route `agent-model` that calls it
// once and then answers.
void PutWeatherAgent(Cluster& c, const FakeOpenAi& weather) {
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
  PutWeatherAgent(c, weather);
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

// Every span the collector received, flattened: {name, traceId, spanId, parentSpanId?, kind,
// attributes: {key: value as JSON}, service}.
std::vector<json> Spans(const FakeOpenAi& collector) {
  std::vector<json> out;
  for (const auto& r : collector.requests()) {
    json body = r.Json();
    if (!body.is_object()) continue;
    for (const auto& rs : body["resourceSpans"]) {
      std::string service;
      for (const auto& a : rs["resource"]["attributes"]) {
        if (a["key"] == "service.name") service = a["value"]["stringValue"];
      }
      for (const auto& ss : rs["scopeSpans"]) {
        for (json span : ss["spans"]) {
          json attrs = json::object();
          for (const auto& a : span["attributes"]) attrs[a["key"].get<std::string>()] = a["value"];
          span["attributes"] = attrs;
          span["service"] = service;
          out.push_back(span);
        }
      }
    }
  }
  return out;
}

std::vector<json> Named(const std::vector<json>& spans, const std::string& prefix) {
  std::vector<json> out;
  for (const auto& s : spans) {
    if (s["name"].get<std::string>().rfind(prefix, 0) == 0) out.push_back(s);
  }
  return out;
}

TEST(TraceTest, SpansOfAnAgentRunReachTheCollectorAsOneTrace) {
  FakeOpenAi collector([](const testing::FakeRequest&, int) {
    testing::FakeReply reply;
    reply.body = "{}";
    return reply;
  });
  FakeOpenAi weather([](const testing::FakeRequest&, int) {
    testing::FakeReply reply;
    reply.body = R"({"celsius": 21})";
    return reply;
  });
  Cluster c({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:" + std::to_string(collector.port())},
             {"OTEL_EXPORTER_OTLP_HEADERS", "x-collector-key=secret%20value"},
             {"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test"}});
  c.StartApi();
  c.StartWorker();
  PutWeatherAgent(c, weather);
  const std::string sent = std::string("00-") + kTraceId + "-" + kClientSpan + "-01";
  auto submitted = c.Call("POST", "/v1/commands/submit",
                          json{{"kind", "agent"},
                               {"input", {{"text", "Weather in Oslo?"}}},
                               {"route", "agent-model"},
                               {"tools", {"weather"}}}
                              .dump(),
                          {"traceparent: " + sent});
  ASSERT_EQ(submitted.status, 201) << submitted.body;
  const std::string api_span = SpanIdOf(Header(submitted, "traceparent"));
  json run = c.WaitFinished(json::parse(submitted.body)["runId"]);
  ASSERT_EQ(run["status"], "succeeded") << run.dump();

  std::vector<json> spans;
  ASSERT_TRUE(FakeOpenAi::WaitFor(
      [&] {
        spans = Spans(collector);
        return Named(spans, "synaps.task").size() == 1 && Named(spans, "chat ").size() == 2 &&
               Named(spans, "execute_tool").size() == 1;
      },
      std::chrono::seconds(15)))
      << json(spans).dump(1);
  const auto headers = collector.requests()[0].headers;
  EXPECT_EQ(headers.count("x-collector-key") ? headers.at("x-collector-key") : "", "secret value");
  EXPECT_EQ(collector.requests()[0].target, "/v1/traces");

  auto submit = Named(spans, "POST /v1/commands/submit");
  ASSERT_EQ(submit.size(), 1u) << json(spans).dump(1);
  EXPECT_EQ(submit[0]["traceId"], kTraceId);
  EXPECT_EQ(submit[0]["spanId"], api_span);
  EXPECT_EQ(submit[0]["parentSpanId"], kClientSpan) << "the client's span is the parent";
  EXPECT_EQ(submit[0]["kind"], 2);
  EXPECT_EQ(submit[0]["service"], "synaps-api");
  EXPECT_EQ(submit[0]["attributes"]["http.response.status_code"]["intValue"], "201");

  json attempt = Named(spans, "synaps.task")[0];
  EXPECT_EQ(attempt["traceId"], kTraceId);
  EXPECT_EQ(attempt["parentSpanId"], api_span) << "the attempt is a child of the submit";
  EXPECT_EQ(attempt["service"], "synaps-worker");
  EXPECT_EQ(attempt["attributes"]["synaps.run.id"]["stringValue"], run["id"]);
  for (const auto& call : Named(spans, "chat ")) {
    EXPECT_EQ(call["traceId"], kTraceId);
    EXPECT_EQ(call["parentSpanId"], attempt["spanId"]);
    EXPECT_EQ(call["kind"], 3);
    EXPECT_EQ(call["attributes"]["gen_ai.system"]["stringValue"], "local");
    EXPECT_EQ(call["attributes"]["gen_ai.request.model"]["stringValue"], "echo");
    EXPECT_TRUE(call["attributes"].contains("gen_ai.usage.input_tokens")) << call.dump();
    EXPECT_TRUE(call["attributes"].contains("gen_ai.usage.output_tokens")) << call.dump();
  }
  json tool = Named(spans, "execute_tool")[0];
  EXPECT_EQ(tool["parentSpanId"], attempt["spanId"]);
  EXPECT_EQ(tool["attributes"]["gen_ai.tool.name"]["stringValue"], "weather");
  ASSERT_EQ(weather.request_count(), 1);
  EXPECT_EQ(SpanIdOf(weather.requests()[0].headers.at("traceparent")), tool["spanId"])
      << "the tool request carries the tool span";
  for (const auto& s : spans) {
    if (s["traceId"] != kTraceId) continue;
    EXPECT_TRUE(s.contains("startTimeUnixNano") && s.contains("endTimeUnixNano"));
  }

  // A trace the client did not sample is not recorded.
  auto unsampled = c.Call("GET", "/v1/runs", "",
                          {std::string("traceparent: 00-") + kTraceId + "-" + kClientSpan + "-00"});
  ASSERT_EQ(unsampled.status, 200);
  EXPECT_TRUE(Header(unsampled, "traceparent").ends_with("-00"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  for (const auto& s : Spans(collector)) {
    if (s["name"] != "GET /v1/runs") continue;
    EXPECT_NE(s["parentSpanId"], kClientSpan) << "an unsampled request was exported";
  }
}

TEST(TraceTest, AnUnreachableCollectorCostsNothingButSpans) {
  auto dead = PickFreePort();
  ASSERT_TRUE(dead);
  Cluster c({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:" + std::to_string(*dead)},
             {"OTEL_EXPORTER_OTLP_TIMEOUT", "200"}});
  c.StartApi();
  c.StartWorker();
  for (int i = 0; i < 5; ++i) {
    json run = c.WaitFinished(c.SubmitText("still works " + std::to_string(i))["runId"]);
    EXPECT_EQ(run["status"], "succeeded") << run.dump();
  }
}

TEST(TraceTest, AMalformedOtelSettingStopsTheProcessWithAClearMessage) {
  Cluster c;
  const std::string log = testing::TestStack::Get().TempDir("otel") + "/api.log";
  auto api = testing::StartSynaps("api", {{"SYNAPS_DATABASE_URL", c.database_url()},
                                          {"SYNAPS_LISTEN", "127.0.0.1:0"},
                                          {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"},
                                          {"OTEL_TRACES_SAMPLER", "sometimes"}},
                                  log);
  auto status = api.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(status) << "the API did not exit";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0);
  EXPECT_NE(testing::ReadFile(log).find("OTEL_TRACES_SAMPLER: one of always_on"),
            std::string::npos)
      << testing::ReadFile(log);
}

}  // namespace
}  // namespace synaps
