#include "api/request_validation.h"

#include <gtest/gtest.h>

namespace synaps::api {
namespace {

void ExpectInvalid(const std::string& body, const std::string& field) {
  auto r = ParseSubmitRequest(body);
  ASSERT_FALSE(r) << body;
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().field, field) << r.error().message;
}

TEST(RequestValidationTest, AcceptsMinimalPrompt) {
  auto r = ParseSubmitRequest(R"({"kind":"prompt","input":{"text":"hi"}})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->kind, "prompt");
  ASSERT_EQ(r->tasks.size(), 1u);
  EXPECT_EQ(r->tasks[0].spec["input"]["text"], "hi");
  EXPECT_EQ(r->queue, "default");
  EXPECT_EQ(r->max_attempts, 3);
}

TEST(RequestValidationTest, RequestHashIgnoresKeyOrder) {
  auto a = ParseSubmitRequest(R"({"kind":"prompt","input":{"text":"hi"},"priority":2})");
  auto b = ParseSubmitRequest(R"({"priority":2,"input":{"text":"hi"},"kind":"prompt"})");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->request_hash, b->request_hash);
}

TEST(RequestValidationTest, RefusesMalformedJson) {
  ExpectInvalid(R"({"kind":)", "body");
  ExpectInvalid("", "body");
}

TEST(RequestValidationTest, RefusesNonObjects) {
  ExpectInvalid(R"([{"kind":"prompt"}])", "body");
  ExpectInvalid(R"("text")", "body");
}

TEST(RequestValidationTest, RefusesUnknownFieldsNamingThem) {
  ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},"colour":1})", "colour");
  ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi","x":1}})", "input.x");
}

TEST(RequestValidationTest, RefusesWrongTypes) {
  ExpectInvalid(R"({"kind":1,"input":{"text":"hi"}})", "kind");
  ExpectInvalid(R"({"kind":"prompt","input":[]})", "input");
  ExpectInvalid(R"({"kind":"prompt","input":{"text":5}})", "input.text");
  ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},"priority":"high"})", "priority");
  ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},"priority":1.5})", "priority");
}

TEST(RequestValidationTest, FlowKeysAreCheckedWhereTheyEnter) {
  auto r = ParseSubmitRequest(
      R"({"kind":"prompt","input":{"text":"hi"},"fairnessKey":"user:42","concurrencyKey":"doc/7@v-1.x_y"})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->fairness_key, "user:42");
  EXPECT_EQ(r->concurrency_key, "doc/7@v-1.x_y");
  for (const char* field : {"fairnessKey", "concurrencyKey"}) {
    const std::string f = field;
    ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},")" + f + R"(":""})", f);
    ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},")" + f + R"(":"a b"})", f);
    ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},")" + f + R"(":"k%"})", f);
    ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},")" + f + R"(":"k*"})", f);
    ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},")" + f + R"(":7})", f);
    ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},")" + f + R"(":")" +
                      std::string(129, 'k') + R"("})",
                  f);
  }
  EXPECT_TRUE(ParseSubmitRequest(R"({"kind":"prompt","input":{"text":"hi"},"concurrencyKey":")" +
                                 std::string(128, 'k') + R"("})"));
}

TEST(RequestValidationTest, RefusesMissingFields) {
  ExpectInvalid(R"({"input":{"text":"hi"}})", "kind");
  ExpectInvalid(R"({"kind":"prompt"})", "input");
  ExpectInvalid(R"({"kind":"prompt","input":{}})", "input.text");
  ExpectInvalid(R"({"kind":"prompt","input":{"text":""}})", "input.text");
}

TEST(RequestValidationTest, RefusesBadUuidAndRanges) {
  ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},"threadId":"nope"})", "threadId");
  ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},"priority":5000})", "priority");
  // Beyond int64: must not wrap around into the allowed range.
  ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},"priority":18446744073709551615})",
                "priority");
  ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},"maxAttempts":18446744073709551615})",
                "maxAttempts");
  ExpectInvalid(R"({"kind":"agent","input":{"text":"hi"},"maxSteps":18446744073709551615})",
                "maxSteps");
  ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},"maxSteps":3})", "maxSteps");
  ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},"tools":["x"]})", "tools");
  ExpectInvalid(R"({"kind":"agent","input":{"text":"hi"},"tools":["Bad Name"]})", "tools");
  ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},"queue":"Bad Queue"})", "queue");
  ExpectInvalid(R"({"kind":"prompt","input":{"text":"hi"},"notBefore":"tomorrow"})", "notBefore");
}

// The exact words of each refusal a person reads, and the values just inside each bound.
TEST(RequestValidationTest, RefusalsSayWhatIsAllowed) {
  auto message = [](const std::string& extra) {
    auto r = ParseSubmitRequest(R"({"kind":"agent","input":{"text":"hi"},)" + extra + "}");
    return r ? std::string("accepted") : r.error().message;
  };
  EXPECT_EQ(message(R"("priority":1001)"), "priority: must be within -1000..1000");
  EXPECT_EQ(message(R"("priority":"1")"), "priority: must be an integer");
  EXPECT_EQ(message(R"("maxAttempts":0)"), "maxAttempts: must be within 1..100");
  EXPECT_EQ(message(R"("maxSteps":101)"), "maxSteps: must be within 1..100");
  EXPECT_EQ(message(R"("maxSteps":1.5)"), "maxSteps: must be an integer");
  EXPECT_EQ(message(R"("tags":"a")"), "tags: must be an array of at most 16 strings");
  EXPECT_EQ(message(R"("tags":[""])"), "tags: tags are strings of 1 to 64 characters");
  EXPECT_EQ(message(R"("tags":[")" + std::string(65, 'x') + R"("])"),
            "tags: tags are strings of 1 to 64 characters");
  EXPECT_EQ(message(R"("tags":[1])"), "tags: tags are strings of 1 to 64 characters");
  EXPECT_EQ(message(R"("tools":{})"), "tools: must be an array of at most 32 tool names");
  EXPECT_EQ(message(R"("tools":["Bad"])"), "tools: tool names match [a-z0-9][a-z0-9_.-]{0,63}");
  std::string seventeen = R"("tags":[)";
  for (int i = 0; i < 17; ++i) seventeen += std::string(i ? "," : "") + "\"t\"";
  EXPECT_EQ(message(seventeen + "]"), "tags: must be an array of at most 16 strings");

  auto r = ParseSubmitRequest(
      R"({"kind":"agent","input":{"text":"hi"},"priority":-1000,"maxAttempts":100,)"
      R"("maxSteps":1,"tags":["a\nb",")" +
      std::string(64, 'x') + R"("],"tools":["web.search"]})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->priority, -1000);
  EXPECT_EQ(r->max_attempts, 100);
  EXPECT_EQ(r->tasks[0].spec["maxSteps"], 1);
  EXPECT_EQ(r->tasks[0].spec["tags"][0], "a\nb");
  EXPECT_EQ(r->tasks[0].spec["tools"][0], "web.search");
}

TEST(RequestValidationTest, RefusesInvalidUtf8) {
  std::string body = "{\"kind\":\"prompt\",\"input\":{\"text\":\"\xff\xfe\"}}";
  ExpectInvalid(body, "body");
}

TEST(RequestValidationTest, RefusesDeepNesting) {
  std::string deep = R"({"kind":"prompt","input":{"text":"hi"},"metadata":)";
  for (int i = 0; i < 100; ++i) deep += "{\"a\":";
  deep += "1";
  for (int i = 0; i < 100; ++i) deep += "}";
  deep += "}";
  ExpectInvalid(deep, "body");
}

TEST(RequestValidationTest, ContentType) {
  EXPECT_TRUE(IsJsonContentType("application/json"));
  EXPECT_TRUE(IsJsonContentType("Application/JSON; charset=utf-8"));
  EXPECT_FALSE(IsJsonContentType("text/plain"));
  EXPECT_FALSE(IsJsonContentType(""));
}

}  // namespace
}  // namespace synaps::api

namespace synaps::api {
namespace {

TEST(RequestValidationTest, AcceptsControlReferences) {
  auto r = ParseSubmitRequest(
      R"({"kind":"prompt","prompt":"greet","variables":{"name":"Ada"},"skill":"support","route":"fast","tags":["eu"]})");
  ASSERT_TRUE(r) << r.error().message;
  const auto& spec = r->tasks[0].spec;
  EXPECT_EQ(spec["prompt"], "greet");
  EXPECT_EQ(spec["variables"]["name"], "Ada");
  EXPECT_EQ(spec["skill"], "support");
  EXPECT_EQ(spec["route"], "fast");
  EXPECT_EQ(spec["tags"][0], "eu");
  EXPECT_FALSE(spec.contains("input"));
  EXPECT_TRUE(ParseSubmitRequest(R"({"kind":"agent","input":{"text":"look around"}})"));
}

TEST(RequestValidationTest, RefusesBadControlReferences) {
  ExpectInvalid(R"({"kind":"prompt","prompt":"Bad Name"})", "prompt");
  ExpectInvalid(R"({"kind":"prompt","input":{"text":"x"},"variables":{"a":1}})", "variables");
  ExpectInvalid(R"({"kind":"prompt","prompt":"p","variables":[1]})", "variables");
  ExpectInvalid(R"({"kind":"prompt","input":{"text":"x"},"tags":"eu"})", "tags");
  ExpectInvalid(R"({"kind":"prompt","input":{"text":"x"},"skill":7})", "skill");
  ExpectInvalid(R"({"kind":"robot","input":{"text":"x"}})", "kind");
}

}  // namespace
}  // namespace synaps::api
