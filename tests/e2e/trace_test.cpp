// W3C trace context from submit to model call (docs/observability.md, "Trace context"), with a
// real API, worker, PostgreSQL and NATS; the model provider and the HTTP tool are fakes on
// loopback that record the headers they receive. Checked: the API answers every request with a
// `traceparent` that continues the client's trace (or starts one), the run names its trace, and
// the provider and tool requests of that run carry the same trace id under spans of their own.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "bus/nats_bus.h"
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

// Waits for run `run_id` to hold a task for approval; returns the task's id ("" on timeout).
std::string WaitHeldTask(Cluster& c, const std::string& run_id) {
  std::string task_id;
  (void)FakeOpenAi::WaitFor(
      [&] {
        json run = json::parse(c.Call("GET", "/v1/runs/" + run_id).body, nullptr, false);
        if (!run.is_object() || run.value("status", "") != "awaiting_approval") return false;
        for (const auto& e : run["events"]) {
          if (e["type"] == "task.awaiting_approval") task_id = e["taskId"];
        }
        return !task_id.empty();
      },
      std::chrono::seconds(30));
  return task_id;
}

// One agent run with a tool call and an approval: every span in the client's trace, parented
// on the submit or the attempt, with the GenAI attributes.
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
  Put(c, "arbiters", "human",
      {{"match", {{"tags", {"review"}}}}, {"checks", {{{"type", "approval"}}}}, {"onFail", "fail"}});
  const std::string sent = std::string("00-") + kTraceId + "-" + kClientSpan + "-01";
  auto submitted = c.Call("POST", "/v1/commands/submit",
                          json{{"kind", "agent"},
                               {"input", {{"text", "Weather in Oslo?"}}},
                               {"route", "agent-model"},
                               {"tools", {"weather"}},
                               {"tags", {"review"}}}
                              .dump(),
                          {"traceparent: " + sent});
  ASSERT_EQ(submitted.status, 201) << submitted.body;
  const std::string api_span = SpanIdOf(Header(submitted, "traceparent"));
  const std::string run_id = json::parse(submitted.body)["runId"];
  const std::string held = WaitHeldTask(c, run_id);
  ASSERT_FALSE(held.empty()) << "the approval arbiter holds the answer";
  auto approved = c.Call("POST", "/v1/tasks/" + held + "/approve", "");
  ASSERT_EQ(approved.status, 200) << approved.body;
  json run = c.WaitFinished(run_id);
  ASSERT_EQ(run["status"], "succeeded") << run.dump();

  std::vector<json> spans;
  ASSERT_TRUE(FakeOpenAi::WaitFor(
      [&] {
        spans = Spans(collector);
        return Named(spans, "synaps.task").size() == 1 && Named(spans, "chat ").size() == 2 &&
               Named(spans, "execute_tool").size() == 1 &&
               Named(spans, "synaps.approval.wait").size() == 1;
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
  // The worker's own steps around the attempt: queue wait, claim, upload, completion batch,
  // each a child of the submit's span, in order.
  ASSERT_TRUE(FakeOpenAi::WaitFor(
      [&] {
        spans = Spans(collector);
        return Named(spans, "synaps.complete").size() == 1;
      },
      std::chrono::seconds(10)))
      << json(spans).dump(1);
  auto start = [](const json& s) { return std::stoll(s["startTimeUnixNano"].get<std::string>()); };
  auto end = [](const json& s) { return std::stoll(s["endTimeUnixNano"].get<std::string>()); };
  std::map<std::string, json> step;
  for (const char* name : {"synaps.queue.wait", "synaps.claim", "synaps.upload", "synaps.complete"}) {
    auto found = Named(spans, name);
    ASSERT_EQ(found.size(), 1u) << name << json(spans).dump(1);
    step[name] = found[0];
    EXPECT_EQ(found[0]["traceId"], kTraceId) << name;
    EXPECT_EQ(found[0]["parentSpanId"], api_span) << name;
    EXPECT_EQ(found[0]["service"], "synaps-worker") << name;
    EXPECT_LE(start(found[0]), end(found[0])) << name;
  }
  // The item became ready (PostgreSQL's clock) before the claim that took it returned; the claim
  // may have been sent before that (it waited on its lane or ran while the submit committed).
  EXPECT_LE(start(step["synaps.queue.wait"]), end(step["synaps.claim"]));
  EXPECT_EQ(end(step["synaps.queue.wait"]), end(step["synaps.claim"]))
      << "the wait ends when the claim returns";
  EXPECT_LE(end(step["synaps.claim"]), start(attempt));
  EXPECT_LE(end(attempt), start(step["synaps.upload"]));
  EXPECT_LE(end(step["synaps.upload"]), start(step["synaps.complete"]));
  EXPECT_EQ(step["synaps.complete"]["attributes"]["synaps.complete.outcome"]["stringValue"],
            "held")
      << "the worker's batch held the answer; the approval settled it";
  json arbiter = Named(spans, "arbiter ")[0];
  EXPECT_EQ(arbiter["traceId"], kTraceId);
  EXPECT_EQ(arbiter["parentSpanId"], attempt["spanId"]);
  json wait = Named(spans, "synaps.approval.wait")[0];
  EXPECT_EQ(wait["traceId"], kTraceId);
  EXPECT_EQ(wait["parentSpanId"], api_span);
  EXPECT_GE(std::stoll(wait["startTimeUnixNano"].get<std::string>()),
            end(step["synaps.complete"]) - 1'000'000'000)
      << "the wait starts at the hold";

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

// Arbiter checks and the wait for a person are spans of the run's trace: the arbiter under the
// attempt, the approval wait (hold to decision, recorded by the API that decided) under the
// submit's span, naming the decision.
TEST(TraceTest, ArbiterChecksAndTheApprovalWaitAreSpansOfTheRunsTrace) {
  FakeOpenAi collector([](const testing::FakeRequest&, int) {
    testing::FakeReply reply;
    reply.body = "{}";
    return reply;
  });
  Cluster c({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:" + std::to_string(collector.port())}});
  c.StartApi();
  c.StartWorker();
  Put(c, "arbiters", "human",
      {{"match", {{"tags", {"review"}}}}, {"checks", {{{"type", "approval"}}}}, {"onFail", "fail"}});
  const std::string sent = std::string("00-") + kTraceId + "-" + kClientSpan + "-01";
  auto submitted = c.Call("POST", "/v1/commands/submit",
                          json{{"kind", "prompt"}, {"input", {{"text", "ship it"}}},
                               {"tags", {"review"}}}.dump(),
                          {"traceparent: " + sent});
  ASSERT_EQ(submitted.status, 201) << submitted.body;
  const std::string api_span = SpanIdOf(Header(submitted, "traceparent"));
  const std::string run_id = json::parse(submitted.body)["runId"];
  const std::string task_id = WaitHeldTask(c, run_id);
  ASSERT_FALSE(task_id.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a visible wait
  auto approved = c.Call("POST", "/v1/tasks/" + task_id + "/approve",
                         json{{"reason", "looks right"}}.dump());
  ASSERT_EQ(approved.status, 200) << approved.body;
  const std::string approve_trace = TraceIdOf(Header(approved, "traceparent"));

  std::vector<json> spans;
  ASSERT_TRUE(FakeOpenAi::WaitFor(
      [&] {
        spans = Spans(collector);
        return Named(spans, "synaps.approval.wait").size() == 1 &&
               Named(spans, "arbiter ").size() == 1 && Named(spans, "synaps.task").size() == 1;
      },
      std::chrono::seconds(15)))
      << json(spans).dump(1);
  json attempt = Named(spans, "synaps.task")[0];
  json arbiter = Named(spans, "arbiter ")[0];
  EXPECT_EQ(arbiter["name"], "arbiter human");
  EXPECT_EQ(arbiter["traceId"], kTraceId);
  EXPECT_EQ(arbiter["parentSpanId"], attempt["spanId"]);
  EXPECT_EQ(arbiter["attributes"]["synaps.arbiter.decision"]["stringValue"], "hold");
  json wait = Named(spans, "synaps.approval.wait")[0];
  EXPECT_EQ(wait["traceId"], kTraceId);
  EXPECT_EQ(wait["parentSpanId"], api_span) << "a child of the submit, beside the attempt";
  EXPECT_EQ(wait["service"], "synaps-api");
  EXPECT_EQ(wait["attributes"]["synaps.approval.decision"]["stringValue"], "approved");
  EXPECT_EQ(wait["attributes"]["synaps.approval.trace_id"]["stringValue"], approve_trace);
  EXPECT_GE(std::stoll(wait["endTimeUnixNano"].get<std::string>()) -
                std::stoll(wait["startTimeUnixNano"].get<std::string>()),
            200'000'000)
      << "the span covers the wait";
}

// The wakeup a submit publishes carries the submit's trace and its publish time as NATS
// headers; the worker measures the wakeup's delay and every model call (Prometheus), and its
// JSON log lines about the task name the trace.
TEST(TraceTest, WakeupsCarryTheTraceAndTheWorkerMeasuresThemAndItsModelCalls) {
  bus::NatsBus bus({.url = testing::TestStack::Get().nats().Url(), .name = "trace-e2e"});
  ASSERT_TRUE(testing::Eventually([&] { return bus.connected(); }));
  std::mutex mu;
  std::vector<bus::Message> got;  // guarded by mu
  auto sub = bus.SubscribeMessages("synaps.wakeup.>", [&](const bus::Message& m) {
    std::lock_guard lock(mu);
    got.push_back(m);
    return Ok();
  });
  ASSERT_TRUE(sub) << sub.error().message;

  auto probes = PickFreePort();
  ASSERT_TRUE(probes);
  Cluster c;
  c.StartApi();
  c.StartWorker({{"SYNAPS_WORKER_LISTEN", "127.0.0.1:" + std::to_string(*probes)},
                 {"SYNAPS_LOG_LEVEL", "debug"}});
  // A first run: once it is done, the worker is surely subscribed to its wakeups.
  ASSERT_EQ(c.WaitFinished(c.SubmitText("warm up")["runId"])["status"], "succeeded");
  const std::string sent = std::string("00-") + kTraceId + "-" + kClientSpan + "-01";
  auto submitted = c.Call("POST", "/v1/commands/submit",
                          json{{"kind", "prompt"}, {"input", {{"text", "wake up"}}}}.dump(),
                          {"traceparent: " + sent, "tracestate: vendor=abc"});
  ASSERT_EQ(submitted.status, 201) << submitted.body;
  const std::string api_span = SpanIdOf(Header(submitted, "traceparent"));
  json run = c.WaitFinished(json::parse(submitted.body)["runId"]);
  ASSERT_EQ(run["status"], "succeeded") << run.dump();

  ASSERT_TRUE(testing::Eventually([&] {
    std::lock_guard lock(mu);
    for (const auto& m : got) {
      if (TraceIdOf(m.header("traceparent")) == kTraceId) return true;
    }
    return false;
  }));
  {
    std::lock_guard lock(mu);
    for (const auto& m : got) {
      if (TraceIdOf(m.header("traceparent")) != kTraceId) continue;
      EXPECT_EQ(SpanIdOf(m.header("traceparent")), api_span) << "the submit request's span";
      EXPECT_EQ(m.header("tracestate"), "vendor=abc");
      int64_t at = std::stoll(m.header("Synaps-Published-At"));
      EXPECT_GT(at, 1'700'000'000'000'000'000) << "Unix nanoseconds";
    }
  }

  std::string metrics;
  ASSERT_TRUE(testing::Eventually([&] {
    auto r = http::Send({.url = "http://127.0.0.1:" + std::to_string(*probes) + "/metrics"});
    metrics = r && r->status == 200 ? r->body : "";
    return metrics.find("synaps_worker_wakeup_latency_seconds_count 0") == std::string::npos &&
           metrics.find("synaps_provider_requests_total{") != std::string::npos;
  })) << metrics;
  EXPECT_NE(metrics.find(R"(synaps_provider_requests_total{model="echo",outcome="ok",provider="local"} 2)"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find(R"(synaps_provider_request_duration_seconds_count{model="echo",provider="local"} 2)"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find(R"(synaps_provider_request_duration_seconds_bucket{model="echo",provider="local",le="+Inf"} 2)"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find(R"(synaps_worker_wakeup_latency_seconds_bucket{le="+Inf"})"),
            std::string::npos)
      << metrics;

  // The worker's JSON log lines about this work name its trace (here: the wakeup, at debug).
  bool named = false;
  std::istringstream log(testing::ReadFile(c.WorkerLog(0)));
  for (std::string line; std::getline(log, line);) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("traceId", "") == kTraceId) named = true;
  }
  EXPECT_TRUE(named) << testing::ReadFile(c.WorkerLog(0));
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
