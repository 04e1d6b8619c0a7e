// The agents' k8s tools without a server: names, definitions, argument validation and the
// not-in-a-cluster error. tests/integration/k8s runs them against a fake API server.
#include "k8s/builtin_tools.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <cctype>
#include <optional>

namespace synaps::k8s {
namespace {

using nlohmann::json;

// OpenAI's rule for function names: ^[a-zA-Z0-9_-]{1,64}$.
bool ValidFunctionName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

TEST(BuiltinToolsNamesTest, WireNamesAreWhatProvidersAccept) {
  const auto& definitions = BuiltinTools::Definitions();
  ASSERT_EQ(definitions.size(), 2u);
  EXPECT_EQ(definitions[0].name, "k8s_pods");
  EXPECT_EQ(definitions[1].name, "k8s_events");
  for (const auto& d : definitions) {
    EXPECT_TRUE(ValidFunctionName(d.name)) << d.name;
    EXPECT_FALSE(d.description.empty());
    EXPECT_EQ(d.parameters["type"], "object");
    EXPECT_EQ(d.parameters["additionalProperties"], false);
    EXPECT_EQ(d.parameters["properties"]["limit"]["type"], "integer");
    EXPECT_EQ(d.parameters["properties"]["limit"]["maximum"], 100);
    EXPECT_EQ(d.parameters["properties"]["labelSelector"]["type"], "string");
    EXPECT_EQ(d.parameters["properties"]["fieldSelector"]["type"], "string");
  }
  EXPECT_EQ(BuiltinTools::Names(), (std::vector<std::string>{"k8s.pods", "k8s.events"}));
}

TEST(BuiltinToolsNamesTest, MapsBetweenCanonicalAndWireNames) {
  EXPECT_EQ(BuiltinTools::CanonicalName("k8s.pods"), "k8s.pods");
  EXPECT_EQ(BuiltinTools::CanonicalName("k8s_pods"), "k8s.pods");
  EXPECT_EQ(BuiltinTools::CanonicalName("k8s_events"), "k8s.events");
  EXPECT_EQ(BuiltinTools::CanonicalName("k8s.delete_pod"), std::nullopt);
  EXPECT_EQ(BuiltinTools::CanonicalName("K8S_PODS"), std::nullopt);
  EXPECT_EQ(BuiltinTools::WireName("k8s.pods"), "k8s_pods");
  EXPECT_EQ(BuiltinTools::WireName("weather.get/v2 now"), "weather_get_v2_now");
  EXPECT_EQ(BuiltinTools::WireName(std::string(80, 'a')), std::string(64, 'a'));
  EXPECT_EQ(BuiltinTools::WireName(""), "_");
  EXPECT_TRUE(ValidFunctionName(BuiltinTools::WireName("a.b c/é")));
  EXPECT_FALSE(ValidFunctionName("k8s.pods"));
}

TEST(BuiltinToolsNamesTest, ErrorResultForTheModel) {
  json r = BuiltinTools::ErrorResult(
      Error{ErrorCode::kPermissionDenied, "kubernetes: GET ...: HTTP 403", {}});
  EXPECT_EQ(r, json::parse(R"({"error":{"code":"permission_denied",
                                         "message":"kubernetes: GET ...: HTTP 403"}})"));
  r = BuiltinTools::ErrorResult(Error{ErrorCode::kInvalidArgument, "bad", "arguments.limit"});
  EXPECT_EQ(r["error"]["field"], "arguments.limit");
}

// Tools without a cluster: arguments are still validated first, so a model learns about its
// mistakes before it learns that the tool cannot run here.
class BuiltinToolsTest : public ::testing::Test {
 protected:
  Result<json> Run(std::string_view name, const json& arguments) {
    std::optional<Result<json>> result;
    int calls = 0;
    tools.Invoke(name, arguments, [&](Result<json> r) {
      ++calls;
      result = std::move(r);
    });
    EXPECT_FALSE(result.has_value()) << "the callback ran inside Invoke()";
    io.restart();
    io.run();
    EXPECT_EQ(calls, 1);
    if (!result) return Fail(ErrorCode::kInternal, "no callback");
    return std::move(*result);
  }

  void ExpectInvalid(std::string_view name, const json& arguments, const std::string& field,
                     const std::string& words) {
    auto r = Run(name, arguments);
    ASSERT_FALSE(r) << arguments.dump();
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << arguments.dump();
    EXPECT_EQ(r.error().field, field) << arguments.dump();
    EXPECT_NE(r.error().message.find(words), std::string::npos)
        << arguments.dump() << ": " << r.error().message;
  }

  boost::asio::io_context io;
  BuiltinTools tools{io.get_executor(),
                     Error{ErrorCode::kNotFound, "not running in a Kubernetes cluster: test", {}}};
};

TEST_F(BuiltinToolsTest, ValidatesArguments) {
  ExpectInvalid("k8s.pods", json::array(), "arguments", "must be a JSON object");
  ExpectInvalid("k8s.pods", "limit=5", "arguments", "must be a JSON object");
  ExpectInvalid("k8s.pods", {{"limit", 0}}, "arguments.limit", "from 1 to 100");
  ExpectInvalid("k8s.pods", {{"limit", 101}}, "arguments.limit", "from 1 to 100");
  ExpectInvalid("k8s.pods", {{"limit", -3}}, "arguments.limit", "from 1 to 100");
  ExpectInvalid("k8s_pods", {{"limit", "20"}}, "arguments.limit", "not \"20\"");
  ExpectInvalid("k8s.events", {{"limit", 2.5}}, "arguments.limit", "integer");
  ExpectInvalid("k8s.events", {{"limit", true}}, "arguments.limit", "integer");
  ExpectInvalid("k8s.events", {{"limit", 1e300}}, "arguments.limit", "from 1 to 100");
  ExpectInvalid("k8s.events", {{"limit", 18446744073709551615ULL}}, "arguments.limit",
                "from 1 to 100");
  ExpectInvalid("k8s.events", {{"limit", std::string(500, '9')}}, "arguments.limit", "...");
  ExpectInvalid("k8s.pods", {{"labelSelector", 5}}, "arguments.labelSelector", "must be a string");
  ExpectInvalid("k8s.pods", {{"labelSelector", "app=web&x=1"}}, "arguments.labelSelector",
                "contains '&'");
  ExpectInvalid("k8s.pods", {{"fieldSelector", "a=b\nc"}}, "arguments.fieldSelector",
                "a control character");
  ExpectInvalid("k8s.pods", {{"fieldSelector", std::string(257, 'a')}}, "arguments.fieldSelector",
                "longer than 256");
  ExpectInvalid("k8s.events", {{"namespace", "kube-system"}}, "arguments.namespace",
                "only the worker's own namespace");
  ExpectInvalid(
      "k8s.events", {{"verb", "delete"}}, "arguments.verb",
      "unknown argument 'verb'; the arguments are limit, labelSelector and fieldSelector");
}

TEST_F(BuiltinToolsTest, UnknownToolIsNotFound) {
  auto r = Run("k8s.delete", json::object());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_NE(r.error().message.find("no builtin tool 'k8s.delete'"), std::string::npos);
}

TEST_F(BuiltinToolsTest, ValidCallsWithoutAClusterReportWhy) {
  EXPECT_FALSE(tools.available());
  for (const json& args : {json(), json::object(), json{{"limit", 5.0}},
                           json{{"limit", 100},
                                {"labelSelector", "app in (web, api),!canary"},
                                {"fieldSelector", "status.phase!=Running,spec.nodeName=n-1"}}}) {
    auto r = Run("k8s_pods", args);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
    EXPECT_EQ(r.error().message, "k8s.pods: not running in a Kubernetes cluster: test");
  }
}

TEST_F(BuiltinToolsTest, ArgumentsAsTheModelWroteThem) {
  std::optional<Result<json>> result;
  tools.InvokeText("k8s_events", "{\"limit\": 5", [&](Result<json> r) { result = std::move(r); });
  io.run();
  ASSERT_TRUE(result && !*result);
  EXPECT_EQ(result->error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(result->error().message.find("not valid JSON"), std::string::npos);

  result.reset();
  tools.InvokeText("k8s_events", "  ", [&](Result<json> r) { result = std::move(r); });
  io.restart();
  io.run();
  ASSERT_TRUE(result && !*result);
  EXPECT_EQ(result->error().code, ErrorCode::kNotFound);  // valid ({}), but no cluster
}

TEST_F(BuiltinToolsTest, NoCallbackAfterDestruction) {
  int calls = 0;
  {
    BuiltinTools doomed(io.get_executor(), Error{ErrorCode::kNotFound, "x", {}});
    doomed.Invoke("k8s.pods", json::object(), [&](Result<json>) { ++calls; });
  }
  io.run();
  EXPECT_EQ(calls, 0);
}

TEST(BuiltinToolsEnvironmentTest, NotInAClusterFromTheEnvironment) {
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  boost::asio::io_context io;
  auto tools = BuiltinTools::FromEnvironment(io.get_executor());
  ASSERT_NE(tools, nullptr);
  EXPECT_FALSE(tools->available());
  ASSERT_TRUE(tools->unavailable_reason());
  EXPECT_EQ(tools->unavailable_reason()->code, ErrorCode::kNotFound);

  std::optional<Result<json>> result;
  tools->Invoke("k8s.events", json::object(), [&](Result<json> r) { result = std::move(r); });
  io.run();
  ASSERT_TRUE(result && !*result);
  EXPECT_EQ(result->error().code, ErrorCode::kNotFound);
  EXPECT_NE(result->error().message.find(
                "k8s.events: not running in a Kubernetes cluster: KUBERNETES_SERVICE_HOST is "
                "not set"),
            std::string::npos)
      << result->error().message;
}

}  // namespace
}  // namespace synaps::k8s
