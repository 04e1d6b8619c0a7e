#include "otel/exporter.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace synaps::otel {
namespace {

using nlohmann::json;

TEST(OtelEncodeTest, WritesOtlpJsonWithHexIdsAndStringInts) {
  Span s;
  s.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  s.span_id = "00f067aa0ba902b7";
  s.parent_span_id = "1111111111111111";
  s.name = "chat echo";
  s.kind = SpanKind::kClient;
  s.start_unix_nano = 1700000000000000000;
  s.end_unix_nano = 1700000000500000000;
  s.attributes = {{"gen_ai.request.model", "echo"},
                  {"gen_ai.usage.input_tokens", 12},
                  {"ratio", 0.5},
                  {"ok", true},
                  {"list", json::array({"stop"})}};
  s.error = true;
  s.status_message = "boom";
  json body = Exporter::Encode({s}, {{"service.name", "synaps-worker"}});
  const json& rs = body["resourceSpans"][0];
  EXPECT_EQ(rs["resource"]["attributes"][0],
            json({{"key", "service.name"}, {"value", {{"stringValue", "synaps-worker"}}}}));
  const json& span = rs["scopeSpans"][0]["spans"][0];
  EXPECT_EQ(span["traceId"], s.trace_id);
  EXPECT_EQ(span["parentSpanId"], "1111111111111111");
  EXPECT_EQ(span["kind"], 3);
  EXPECT_EQ(span["startTimeUnixNano"], "1700000000000000000");
  EXPECT_EQ(span["attributes"][1]["value"], json({{"intValue", "12"}}));
  EXPECT_EQ(span["attributes"][2]["value"], json({{"doubleValue", 0.5}}));
  EXPECT_EQ(span["attributes"][3]["value"], json({{"boolValue", true}}));
  EXPECT_EQ(span["attributes"][4]["value"], json({{"stringValue", "[\"stop\"]"}}));
  EXPECT_EQ(span["status"], json({{"code", 2}, {"message", "boom"}}));
  s.parent_span_id.clear();
  EXPECT_FALSE(Exporter::Encode({s}, {})["resourceSpans"][0]["scopeSpans"][0]["spans"][0].contains(
      "parentSpanId"));
}

// Names, messages and attribute values may carry anything a model, a tool or an input said: the
// body stays valid JSON, with the text escaped and invalid UTF-8 replaced.
TEST(OtelEncodeTest, HostileTextStaysValidJson) {
  Span s;
  s.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  s.span_id = "00f067aa0ba902b7";
  s.name = std::string("execute_tool \"q\\\n\x01") + "\xff\xfe";
  s.attributes = {{"text\t", std::string("a\0b", 3)}, {"big", 1e308 * 10}};
  s.error = true;
  s.status_message = "bad \xc3";
  std::string text = Exporter::EncodeText({s, s}, {{"service.name", "x\"y"}});
  json body = json::parse(text, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << text;
  const json& span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][1];
  EXPECT_EQ(span["name"].get<std::string>().substr(0, 18), "execute_tool \"q\\\n\x01");
  EXPECT_EQ(span["attributes"][0]["key"], "text\t");
  EXPECT_EQ(span["attributes"][0]["value"]["stringValue"], std::string("a\0b", 3));
  EXPECT_EQ(span["attributes"][1]["value"]["doubleValue"], 0) << "infinity is not JSON";
  EXPECT_EQ(body["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"], "x\"y");
}

TEST(OtelSamplerTest, ParsesTheStandardSamplers) {
  auto def = SamplerConfig::Parse("", "");
  ASSERT_TRUE(def);
  EXPECT_TRUE(def->parent_based);
  EXPECT_TRUE(def->SampleRoot("4bf92f3577b34da6a3ce929d0e0e4736"));
  EXPECT_FALSE(def->SampleChild(false, "4bf92f3577b34da6a3ce929d0e0e4736"));
  auto off = SamplerConfig::Parse("always_off", "");
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->SampleChild(true, "4bf92f3577b34da6a3ce929d0e0e4736"));
  auto ratio = SamplerConfig::Parse("traceidratio", "0.5");
  ASSERT_TRUE(ratio);
  EXPECT_TRUE(ratio->SampleRoot("00000000000000000000000000000001"));
  EXPECT_FALSE(ratio->SampleRoot("0000000000000000ffffffffffffffff"));
  EXPECT_FALSE(SamplerConfig::Parse("traceidratio", "2"));
  EXPECT_FALSE(SamplerConfig::Parse("traceidratio", "half"));
  EXPECT_FALSE(SamplerConfig::Parse("sometimes", ""));
}

TEST(OtelEnvironmentTest, OffWithoutAnEndpointAndRefusesHeadersThatWouldSplitARequest) {
  unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
  unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  auto none = Exporter::FromEnvironment("svc");
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, nullptr);

  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", 1);
  setenv("OTEL_EXPORTER_OTLP_HEADERS", "bad header=x", 1);
  EXPECT_FALSE(Exporter::FromEnvironment("svc"));
  setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-key=a%0D%0AX-Injected: 1", 1);
  EXPECT_FALSE(Exporter::FromEnvironment("svc")) << "a decoded CR LF is refused";
  setenv("OTEL_EXPORTER_OTLP_HEADERS", "novalue", 1);
  EXPECT_FALSE(Exporter::FromEnvironment("svc"));
  unsetenv("OTEL_EXPORTER_OTLP_HEADERS");
  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector", 1);
  EXPECT_FALSE(Exporter::FromEnvironment("svc"));
  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", 1);
  setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
  EXPECT_FALSE(Exporter::FromEnvironment("svc")) << "only http/json is spoken";
  unsetenv("OTEL_EXPORTER_OTLP_PROTOCOL");
  setenv("OTEL_TRACES_EXPORTER", "none", 1);
  auto disabled = Exporter::FromEnvironment("svc");
  ASSERT_TRUE(disabled);
  EXPECT_EQ(*disabled, nullptr);
  unsetenv("OTEL_TRACES_EXPORTER");
  setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "100", 1);
  auto on = Exporter::FromEnvironment("svc");
  ASSERT_TRUE(on) << on.error().message;
  ASSERT_NE(*on, nullptr);
  // Nothing listens on port 1: the span is counted as dropped, Export never blocks.
  (*on)->Export(Span{.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736", .span_id = "00f067aa0ba902b7"});
  on->reset();
  unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
  unsetenv("OTEL_EXPORTER_OTLP_TIMEOUT");
}

TEST(OtelExporterTest, AFullQueueDropsAndCounts) {
  ExporterOptions o;
  o.url = "http://127.0.0.1:1/v1/traces";
  o.max_queue = 3;
  o.max_batch = 100;
  o.interval = std::chrono::seconds(60);
  o.timeout = std::chrono::milliseconds(100);
  Exporter e(o);
  for (int i = 0; i < 10; ++i) e.Export(Span{});
  EXPECT_EQ(e.dropped(), 7u);
}

}  // namespace
}  // namespace synaps::otel
