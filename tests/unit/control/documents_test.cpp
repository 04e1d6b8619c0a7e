// YAML control documents: parsing and validation of a multi-document file, YAML scalars as JSON
// types, YAML written back, and line diffs.
#include "control/documents.h"

#include <gtest/gtest.h>

namespace synaps::control {
namespace {

using nlohmann::json;

TEST(DocumentsTest, ParsesSeveralDocuments) {
  auto docs = ParseDocuments(R"(
kind: prompts
name: greet
reason: first version
spec:
  template: |
    Hello {{name}},
    welcome.
---
# a comment-only document between is fine
---
kind: routes
name: default
spec:
  provider: local
  model: echo
  weight: 5
  params: {temperature: 0.2, stream: false, stop: ~}
---
kind: tools
name: k8s.pods
spec:
  type: builtin
  description: "Pods in the namespace"
  parameters:
    type: object
    properties:
      selector: {type: string}
)");
  ASSERT_TRUE(docs) << docs.error().message;
  ASSERT_EQ(docs->size(), 3u);
  EXPECT_EQ((*docs)[0].kind, "prompts");
  EXPECT_EQ((*docs)[0].name, "greet");
  EXPECT_EQ((*docs)[0].reason, "first version");
  EXPECT_EQ((*docs)[0].spec["template"], "Hello {{name}},\nwelcome.\n");
  EXPECT_EQ((*docs)[1].spec["weight"], 5);
  EXPECT_TRUE((*docs)[1].spec["weight"].is_number_integer());
  EXPECT_EQ((*docs)[1].spec["params"]["temperature"], 0.2);
  EXPECT_EQ((*docs)[1].spec["params"]["stream"], false);
  EXPECT_TRUE((*docs)[1].spec["params"]["stop"].is_null());
  EXPECT_TRUE((*docs)[1].reason.empty());
  EXPECT_EQ((*docs)[2].spec["parameters"]["properties"]["selector"]["type"], "string");
}

TEST(DocumentsTest, ErrorsNameTheDocumentAndTheField) {
  auto r = ParseDocuments(
      "kind: prompts\nname: a\nspec: {template: x}\n---\n"
      "kind: routes\nname: r\nspec: {provider: local, model: m, weight: 2000}\n");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().field, "spec.weight");
  EXPECT_EQ(r.error().message, "document 2 (routes/r): spec.weight: must be within 0..1000");

  r = ParseDocuments("kind: prompt\nname: a\nspec: {template: x}\n");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().field, "kind");
  EXPECT_TRUE(r.error().message.starts_with("document 1: kind:")) << r.error().message;

  r = ParseDocuments("kind: prompts\nname: a\nspec: {template: x}\nmetadata: {}\n");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().field, "metadata");

  r = ParseDocuments("kind: prompts\nname: a\n");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().field, "spec");

  r = ParseDocuments(
      "kind: prompts\nname: a\nspec: {template: x}\n---\n"
      "kind: prompts\nname: a\nspec: {template: y}\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("prompts/a appears twice"), std::string::npos);

  r = ParseDocuments("kind: prompts\nname: a\nspec: {template: [unclosed\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("line"), std::string::npos) << r.error().message;

  r = ParseDocuments("- just\n- a list\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("must be a map"), std::string::npos);

  r = ParseDocuments("kind: prompts\nname: a\nspec:\n  template: x\n  template: y\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("repeats"), std::string::npos) << r.error().message;
}

TEST(DocumentsTest, ScalarsFollowTheCoreSchema) {
  auto v = YamlToJson(R"(
int: 42
neg: -7
hex: 0x1f
float: 1.5e3
yes: true
no: FALSE
nul: null
tilde: ~
empty:
quoted_int: "42"
quoted_bool: 'true'
word: yes
version: 1.2.3
tagged: !!str 12
)");
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ((*v)["int"], 42);
  EXPECT_EQ((*v)["neg"], -7);
  EXPECT_EQ((*v)["hex"], 31);
  EXPECT_EQ((*v)["float"], 1500.0);
  EXPECT_EQ((*v)["yes"], true);
  EXPECT_EQ((*v)["no"], false);
  EXPECT_TRUE((*v)["nul"].is_null());
  EXPECT_TRUE((*v)["tilde"].is_null());
  EXPECT_TRUE((*v)["empty"].is_null());
  EXPECT_EQ((*v)["quoted_int"], "42");
  EXPECT_EQ((*v)["quoted_bool"], "true");
  EXPECT_EQ((*v)["word"], "yes") << "YAML 1.2: yes is a string";
  EXPECT_EQ((*v)["version"], "1.2.3");
  EXPECT_EQ((*v)["tagged"], "12");
}

TEST(DocumentsTest, YamlRoundTripsToTheSameJson) {
  json values = json::parse(R"({
    "template": "Hello {{name}},\nwelcome.\n",
    "noNewline": "line one\nline two",
    "indented": "  leading\n  spaces\n",
    "looksLikeBool": "true", "looksLikeNull": "null", "looksLikeNumber": "0.5",
    "empty": "", "colon": "a: b", "hash": "# not a comment", "dash": "- item", "quote": "it's \"x\"",
    "unicode": "caf\u00e9 \u2603", "number": 0.1, "int": -3, "big": 12345678901234,
    "bool": false, "null": null, "list": [1, "two", [3], {"k": "v"}], "emptyList": [],
    "emptyMap": {}, "nested": {"deep": {"deeper": ["x"]}}, "123": "numeric key", "true": 1
  })");
  std::string yaml = JsonToYaml(values);
  auto back = YamlToJson(yaml);
  ASSERT_TRUE(back) << back.error().message << "\n" << yaml;
  EXPECT_EQ(*back, values) << yaml;
  EXPECT_NE(yaml.find("template: |"), std::string::npos) << "multi-line text as a block:\n" << yaml;
}

TEST(DocumentsTest, LineDiffShowsChangesWithContext) {
  EXPECT_EQ(LineDiff("a\nb\n", "a\nb\n"), "");
  EXPECT_EQ(LineDiff("a\nb\nc\n", "a\nB\nc\n"), "  a\n- b\n+ B\n  c\n");
  EXPECT_EQ(LineDiff("", "x\n"), "+ x\n");
  std::string before;
  std::string after;
  for (int i = 0; i < 20; ++i) {
    before += "line" + std::to_string(i) + "\n";
    after += (i == 10 ? std::string("changed\n") : "line" + std::to_string(i) + "\n");
  }
  EXPECT_EQ(LineDiff(before, after, 2),
            "  ...\n  line8\n  line9\n- line10\n+ changed\n  line11\n  line12\n  ...\n");
}

}  // namespace
}  // namespace synaps::control
