// Prompt templates: placeholders, escapes, variable lookup and the error for a missing variable.
#include "control/template.h"

#include <gtest/gtest.h>

namespace synaps::control {
namespace {

using nlohmann::json;

TEST(TemplateTest, RendersEveryKindOfValue) {
  auto out = RenderTemplate(
      "Hi {{name}}, you are {{age}} ({{ vip }}); tags {{tags}}; {{meta}}",
      json{
          {"name", "Ada"}, {"age", 36}, {"vip", true}, {"tags", {"a", "b"}}, {"meta", {{"k", 1}}}});
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(*out, R"(Hi Ada, you are 36 (true); tags ["a","b"]; {"k":1})");
}

TEST(TemplateTest, TextWithoutPlaceholdersIsUnchanged) {
  const std::string text = "JSON like {\"a\": {\"b\": 1}} and a lone { or } stays.";
  auto out = RenderTemplate(text, nullptr);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(*out, text);
}

TEST(TemplateTest, DottedNamesPreferTheExactKeyThenWalkObjects) {
  json vars = {{"user", {{"name", "Grace"}, {"address", {{"city", "Arlington"}}}}},
               {"a.b", "exact"},
               {"a", {{"b", "nested"}}}};
  auto out = RenderTemplate("{{user.name}} of {{user.address.city}}: {{a.b}}", vars);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(*out, "Grace of Arlington: exact");
}

TEST(TemplateTest, AMissingVariableFailsNamingItAndWhatTheTemplateNeeds) {
  auto out = RenderTemplate("Dear {{name}}, about {{topic}}", json{{"name", "Ada"}});
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(out.error().field, "variables.topic");
  EXPECT_NE(out.error().message.find("missing template variable topic"), std::string::npos)
      << out.error().message;
  EXPECT_NE(out.error().message.find("needs: name, topic"), std::string::npos)
      << out.error().message;
}

TEST(TemplateTest, NullAndMissingNestedMembersAreMissingNotBlank) {
  EXPECT_EQ(RenderTemplate("{{x}}", json{{"x", nullptr}}).error().field, "variables.x");
  EXPECT_EQ(RenderTemplate("{{u.name}}", json{{"u", {{"id", 1}}}}).error().field,
            "variables.u.name");
  EXPECT_EQ(RenderTemplate("{{u.name}}", json{{"u", "text"}}).error().field, "variables.u.name");
  EXPECT_EQ(RenderTemplate("{{x}}", nullptr).error().field, "variables.x");
}

TEST(TemplateTest, EmptyStringIsAValue) {
  auto out = RenderTemplate("[{{x}}]", json{{"x", ""}});
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, "[]");
}

TEST(TemplateTest, VariablesMustBeAnObject) {
  auto out = RenderTemplate("{{x}}", json::array({1}));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().field, "variables");
}

TEST(TemplateTest, BackslashEscapesALiteralOpening) {
  auto out = RenderTemplate(R"(Use \{{name}} for {{what}})", json{{"what", "placeholders"}});
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(*out, "Use {{name}} for placeholders");
  auto vars = TemplateVariables(R"(\{{not}} {{yes}})");
  ASSERT_TRUE(vars);
  EXPECT_EQ(*vars, std::vector<std::string>{"yes"});
}

TEST(TemplateTest, VariablesAreListedOnceInOrderOfFirstUse) {
  auto vars = TemplateVariables("{{b}} {{a}} {{ b }} {{c.d}}");
  ASSERT_TRUE(vars);
  EXPECT_EQ(*vars, (std::vector<std::string>{"b", "a", "c.d"}));
  EXPECT_TRUE(TemplateVariables("none")->empty());
}

TEST(TemplateTest, MalformedPlaceholdersAreSyntaxErrorsWithTheirOffset) {
  for (const char* bad : {"x {{", "x {{}}", "x {{ 9a }}", "x {{a b}}", "x {{a-b}}", "x {{a}",
                          "x {{{a}}}", "x {{.a}}"}) {
    auto r = CheckTemplate(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().field, "template");
    EXPECT_NE(r.error().message.find("offset 2"), std::string::npos) << r.error().message;
    EXPECT_FALSE(RenderTemplate(bad, json::object())) << bad;
  }
  EXPECT_TRUE(CheckTemplate("{{ _private }} {{A9.b_c}}"));
}

}  // namespace
}  // namespace synaps::control
