// The JSON Schema subset: schemas are checked, values validated with the path of what failed.
#include "control/json_schema.h"

#include <gtest/gtest.h>

namespace synaps::control {
namespace {

using nlohmann::json;

const json kPerson = json::parse(R"({
  "type": "object",
  "required": ["name", "age"],
  "additionalProperties": false,
  "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[A-Z]"},
    "age": {"type": "integer", "minimum": 0, "exclusiveMaximum": 150},
    "email": {"type": ["string", "null"], "format": "email"},
    "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": true, "maxItems": 2},
    "pet": {"$ref": "#/$defs/pet"}
  },
  "$defs": {"pet": {"type": "object", "required": ["kind"],
                    "properties": {"kind": {"const": "cat"}}}}
})");

std::string FieldOf(const json& value, const json& schema = kPerson) {
  auto r = ValidateJson(value, schema);
  return r ? "ok" : r.error().field;
}

TEST(JsonSchemaTest, AcceptsAValidValue) {
  EXPECT_TRUE(CheckJsonSchema(kPerson, "schema"));
  EXPECT_EQ(FieldOf(json::parse(R"({"name":"Ada","age":36,"email":null,"tags":["a","b"],
                                    "pet":{"kind":"cat"}})")),
            "ok");
  EXPECT_EQ(FieldOf(json::parse(R"({"name":"Ada","age":36.0})")), "ok") << "36.0 is an integer";
}

TEST(JsonSchemaTest, ReportsThePathOfTheFailure) {
  EXPECT_EQ(FieldOf(json::parse(R"({"age":1})")), "$.name");
  EXPECT_EQ(FieldOf(json::parse(R"({"name":"","age":1})")), "$.name");
  EXPECT_EQ(FieldOf(json::parse(R"({"name":"Adaline","age":1})")), "$.name");
  EXPECT_EQ(FieldOf(json::parse(R"({"name":"ada","age":1})")), "$.name");
  EXPECT_EQ(FieldOf(json::parse(R"({"name":"Ada","age":1.5})")), "$.age");
  EXPECT_EQ(FieldOf(json::parse(R"({"name":"Ada","age":150})")), "$.age");
  EXPECT_EQ(FieldOf(json::parse(R"({"name":"Ada","age":-1})")), "$.age");
  EXPECT_EQ(FieldOf(json::parse(R"({"name":"Ada","age":1,"email":3})")), "$.email");
  EXPECT_EQ(FieldOf(json::parse(R"({"name":"Ada","age":1,"tags":["c"]})")), "$.tags[0]");
  EXPECT_EQ(FieldOf(json::parse(R"({"name":"Ada","age":1,"tags":["a","a"]})")), "$.tags[1]");
  EXPECT_EQ(FieldOf(json::parse(R"({"name":"Ada","age":1,"tags":["a","b","a"]})")), "$.tags");
  EXPECT_EQ(FieldOf(json::parse(R"({"name":"Ada","age":1,"pet":{"kind":"dog"}})")), "$.pet.kind");
  EXPECT_EQ(FieldOf(json::parse(R"({"name":"Ada","age":1,"extra":true})")), "$.extra");
  EXPECT_EQ(FieldOf(json::parse(R"([1])")), "$");
}

TEST(JsonSchemaTest, MessagesNameTheKeyword) {
  auto r = ValidateJson(json::parse(R"({"name":"Ada","age":200})"), kPerson);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("exclusiveMaximum"), std::string::npos) << r.error().message;
  r = ValidateJson(json::parse(R"({"name":"Ada"})"), kPerson);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "$.age: required property is missing");
}

TEST(JsonSchemaTest, Combinators) {
  json s = json::parse(R"({"oneOf":[{"type":"integer"},{"type":"number","minimum":10}]})");
  EXPECT_EQ(FieldOf(3, s), "ok");
  EXPECT_EQ(FieldOf(10.5, s), "ok");
  EXPECT_EQ(FieldOf(12, s), "$") << "matches both";
  json any = json::parse(R"({"anyOf":[{"type":"string"},{"type":"boolean"}]})");
  EXPECT_EQ(FieldOf(true, any), "ok");
  EXPECT_EQ(FieldOf(1, any), "$");
  json all = json::parse(R"({"allOf":[{"minimum":1},{"maximum":3}],"not":{"const":2}})");
  EXPECT_EQ(FieldOf(1, all), "ok");
  EXPECT_EQ(FieldOf(2, all), "$");
  EXPECT_EQ(FieldOf(4, all), "$");
  EXPECT_EQ(FieldOf(1, true), "ok");
  EXPECT_EQ(FieldOf(1, false), "$");
}

TEST(JsonSchemaTest, RecursiveRefsTerminate) {
  json tree = json::parse(R"({"$defs":{"node":{"type":"object","properties":{
      "kids":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"$ref":"#/$defs/node"})");
  ASSERT_TRUE(CheckJsonSchema(tree, "s"));
  EXPECT_EQ(FieldOf(json::parse(R"({"kids":[{"kids":[{"kids":[1]}]}]})"), tree),
            "$.kids[0].kids[0].kids[0]");
  json loop = json::parse(R"({"$ref":"#"})");
  EXPECT_EQ(FieldOf(1, loop), "$") << "a schema that only refers to itself is cut off";
}

TEST(JsonSchemaTest, CheckRefusesMalformedSchemas) {
  auto field = [](const char* schema) {
    auto r = CheckJsonSchema(json::parse(schema), "s");
    return r ? "ok" : r.error().field;
  };
  EXPECT_EQ(field(R"({"type":"object","title":"x","x-extension":1})"), "ok");
  EXPECT_EQ(field(R"(3)"), "s");
  EXPECT_EQ(field(R"({"type":"float"})"), "s.type");
  EXPECT_EQ(field(R"({"type":[]})"), "s.type");
  EXPECT_EQ(field(R"({"properties":{"a":3}})"), "s.properties.a");
  EXPECT_EQ(field(R"({"required":["a","a"]})"), "s.required");
  EXPECT_EQ(field(R"({"items":{"minLength":-1}})"), "s.items.minLength");
  EXPECT_EQ(field(R"({"anyOf":[]})"), "s.anyOf");
  EXPECT_EQ(field(R"({"anyOf":[{"pattern":"["}]})"), "s.anyOf[0].pattern");
  EXPECT_EQ(field(R"({"enum":[]})"), "s.enum");
  EXPECT_EQ(field(R"({"multipleOf":0})"), "s.multipleOf");
  EXPECT_EQ(field(R"({"$ref":"http://example.com/schema"})"), "s.$ref");
  // ValidateJson checks the schema first instead of misbehaving on a bad one.
  auto r = ValidateJson(1, json::parse(R"({"type":"float"})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().field, "schema.type");
}

}  // namespace
}  // namespace synaps::control
