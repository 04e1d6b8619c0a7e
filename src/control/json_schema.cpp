#include "control/json_schema.h"

#include "control/pattern.h"

#include <cmath>
#include <set>

namespace synaps::control {

using nlohmann::json;

namespace {

// Deepest nesting of subschemas (and of $ref hops while validating) accepted.
constexpr int kMaxDepth = 64;

const std::set<std::string>& TypeNames() {
  static const std::set<std::string> kNames = {"object",  "array",   "string", "number",
                                               "integer", "boolean", "null"};
  return kNames;
}

std::unexpected<Error> Bad(const std::string& field, const std::string& message) {
  return Fail(ErrorCode::kInvalidArgument, field + ": " + message, field);
}

bool IsNonNegativeInteger(const json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

// Resolves a local reference ("#", "#/$defs/x") against the root schema; nullptr when it does
// not resolve.
const json* ResolveRef(const json& root, const std::string& ref) {
  if (ref == "#") return &root;
  if (!ref.starts_with("#/")) return nullptr;
  try {
    json::json_pointer ptr(ref.substr(1));
    if (!root.contains(ptr)) return nullptr;
    return &root.at(ptr);
  } catch (const json::exception&) {
    return nullptr;
  }
}

Status CompilePattern(const std::string& pattern, const std::string& field) {
  if (Status ok = CheckPattern(pattern); !ok) {
    return Bad(field, "pattern " + ok.error().message);
  }
  return Ok();
}

class SchemaChecker {
 public:
  explicit SchemaChecker(const json& root) : root_(root) {}

  Status Check(const json& s, const std::string& path, int depth) {
    if (depth > kMaxDepth) return Bad(path, "schema nested too deeply");
    if (s.is_boolean()) return Ok();
    if (!s.is_object()) return Bad(path, "a schema must be an object or a boolean");
    for (auto it = s.begin(); it != s.end(); ++it) {
      RETURN_IF_ERROR(Keyword(it.key(), it.value(), path + "." + it.key(), depth));
    }
    return Ok();
  }

 private:
  Status Keyword(const std::string& key, const json& v, const std::string& path, int depth) {
    if (key == "type") {
      auto one = [&](const json& t) -> Status {
        if (!t.is_string() || !TypeNames().contains(t.get<std::string>())) {
          return Bad(path, "must be one of object, array, string, number, integer, boolean, null");
        }
        return Ok();
      };
      if (v.is_array()) {
        if (v.empty()) return Bad(path, "must not be empty");
        for (const auto& t : v) RETURN_IF_ERROR(one(t));
        return Ok();
      }
      return one(v);
    }
    if (key == "properties" || key == "$defs" || key == "definitions" ||
        key == "patternProperties") {
      if (!v.is_object()) return Bad(path, "must be an object of schemas");
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (key == "patternProperties") RETURN_IF_ERROR(CompilePattern(it.key(), path));
        RETURN_IF_ERROR(Check(it.value(), path + "." + it.key(), depth + 1));
      }
      return Ok();
    }
    if (key == "required") {
      if (!v.is_array()) return Bad(path, "must be an array of property names");
      std::set<std::string> seen;
      for (const auto& n : v) {
        if (!n.is_string()) return Bad(path, "must be an array of property names");
        if (!seen.insert(n.get<std::string>()).second) {
          return Bad(path, "names " + n.get<std::string>() + " twice");
        }
      }
      return Ok();
    }
    if (key == "additionalProperties" || key == "items" || key == "not" || key == "contains" ||
        key == "propertyNames") {
      return Check(v, path, depth + 1);
    }
    if (key == "prefixItems" || key == "allOf" || key == "anyOf" || key == "oneOf") {
      if (!v.is_array() || v.empty()) return Bad(path, "must be a non-empty array of schemas");
      for (size_t i = 0; i < v.size(); ++i) {
        RETURN_IF_ERROR(Check(v[i], path + "[" + std::to_string(i) + "]", depth + 1));
      }
      return Ok();
    }
    if (key == "enum") {
      if (!v.is_array() || v.empty()) return Bad(path, "must be a non-empty array");
      return Ok();
    }
    if (key == "minimum" || key == "maximum" || key == "exclusiveMinimum" ||
        key == "exclusiveMaximum") {
      if (!v.is_number()) return Bad(path, "must be a number");
      return Ok();
    }
    if (key == "multipleOf") {
      if (!v.is_number() || v.get<double>() <= 0) return Bad(path, "must be a number above 0");
      return Ok();
    }
    if (key == "minLength" || key == "maxLength" || key == "minItems" || key == "maxItems" ||
        key == "minProperties" || key == "maxProperties") {
      if (!IsNonNegativeInteger(v)) return Bad(path, "must be a non-negative integer");
      return Ok();
    }
    if (key == "uniqueItems") {
      if (!v.is_boolean()) return Bad(path, "must be a boolean");
      return Ok();
    }
    if (key == "pattern") {
      if (!v.is_string()) return Bad(path, "must be a string");
      return CompilePattern(v.get<std::string>(), path);
    }
    if (key == "$ref") {
      if (!v.is_string()) return Bad(path, "must be a string");
      if (ResolveRef(root_, v.get<std::string>()) == nullptr) {
        return Bad(path, "only local references (#/...) that resolve are supported");
      }
      return Ok();
    }
    // Annotations and keywords outside the subset are accepted and ignored.
    return Ok();
  }

  const json& root_;
};

std::string TypeOf(const json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number_float()) {
    double d = v.get<double>();
    return std::isfinite(d) && d == std::floor(d) ? "integer" : "number";
  }
  return v.type_name();
}

bool HasType(const json& v, const std::string& type) {
  std::string actual = TypeOf(v);
  if (type == "number") return actual == "number" || actual == "integer";
  return actual == type;
}

bool JsonEqual(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

std::string Key(const std::string& path, const std::string& key) { return path + "." + key; }
std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

class Validator {
 public:
  explicit Validator(const json& root) : root_(root) {}

  Status Validate(const json& v, const json& s, const std::string& path, int depth) {
    if (depth > kMaxDepth) return Bad(path, "schema references nest too deeply");
    if (s.is_boolean()) {
      if (!s.get<bool>()) return Bad(path, "no value is allowed here (schema false)");
      return Ok();
    }
    if (!s.is_object()) return Ok();
    if (s.contains("$ref")) {
      const json* target = ResolveRef(root_, s["$ref"].get<std::string>());
      if (target == nullptr) return Bad(path, "unresolvable $ref " + s["$ref"].dump());
      RETURN_IF_ERROR(Validate(v, *target, path, depth + 1));
    }
    if (s.contains("type")) {
      const json& t = s["type"];
      bool ok = false;
      if (t.is_array()) {
        for (const auto& one : t) ok = ok || HasType(v, one.get<std::string>());
      } else {
        ok = HasType(v, t.get<std::string>());
      }
      if (!ok)
        return Bad(path, "type: expected " + (t.is_string() ? t.get<std::string>() : t.dump()) +
                             ", got " + TypeOf(v));
    }
    if (s.contains("enum")) {
      bool found = false;
      for (const auto& e : s["enum"]) found = found || JsonEqual(v, e);
      if (!found) return Bad(path, "enum: must be one of " + s["enum"].dump());
    }
    if (s.contains("const") && !JsonEqual(v, s["const"])) {
      return Bad(path, "const: must be " + s["const"].dump());
    }
    if (v.is_number()) RETURN_IF_ERROR(Number(v.get<double>(), s, path));
    if (v.is_string()) RETURN_IF_ERROR(String(v.get<std::string>(), s, path));
    if (v.is_array()) RETURN_IF_ERROR(Array(v, s, path, depth));
    if (v.is_object()) RETURN_IF_ERROR(Object(v, s, path, depth));
    if (s.contains("allOf")) {
      for (const auto& sub : s["allOf"]) RETURN_IF_ERROR(Validate(v, sub, path, depth + 1));
    }
    if (s.contains("anyOf")) {
      bool any = false;
      for (const auto& sub : s["anyOf"]) any = any || Validate(v, sub, path, depth + 1).has_value();
      if (!any) return Bad(path, "anyOf: matches none of the schemas");
    }
    if (s.contains("oneOf")) {
      int matched = 0;
      for (const auto& sub : s["oneOf"]) matched += Validate(v, sub, path, depth + 1) ? 1 : 0;
      if (matched != 1) {
        return Bad(path, "oneOf: matches " + std::to_string(matched) + " schemas, not exactly one");
      }
    }
    if (s.contains("not") && Validate(v, s["not"], path, depth + 1)) {
      return Bad(path, "not: must not match the schema");
    }
    return Ok();
  }

 private:
  static Status Number(double d, const json& s, const std::string& path) {
    if (s.contains("minimum") && d < s["minimum"].get<double>()) {
      return Bad(path, "minimum: must be >= " + s["minimum"].dump());
    }
    if (s.contains("maximum") && d > s["maximum"].get<double>()) {
      return Bad(path, "maximum: must be <= " + s["maximum"].dump());
    }
    if (s.contains("exclusiveMinimum") && d <= s["exclusiveMinimum"].get<double>()) {
      return Bad(path, "exclusiveMinimum: must be > " + s["exclusiveMinimum"].dump());
    }
    if (s.contains("exclusiveMaximum") && d >= s["exclusiveMaximum"].get<double>()) {
      return Bad(path, "exclusiveMaximum: must be < " + s["exclusiveMaximum"].dump());
    }
    if (s.contains("multipleOf")) {
      double q = d / s["multipleOf"].get<double>();
      if (std::fabs(q - std::round(q)) > 1e-9) {
        return Bad(path, "multipleOf: must be a multiple of " + s["multipleOf"].dump());
      }
    }
    return Ok();
  }

  static size_t CodePoints(const std::string& str) {
    size_t n = 0;
    for (unsigned char c : str) n += (c & 0xC0) != 0x80 ? 1 : 0;
    return n;
  }

  static Status String(const std::string& str, const json& s, const std::string& path) {
    size_t len = CodePoints(str);
    if (s.contains("minLength") && len < s["minLength"].get<uint64_t>()) {
      return Bad(path, "minLength: must be at least " + s["minLength"].dump() + " characters");
    }
    if (s.contains("maxLength") && len > s["maxLength"].get<uint64_t>()) {
      return Bad(path, "maxLength: must be at most " + s["maxLength"].dump() + " characters");
    }
    if (s.contains("pattern")) {
      if (!PatternFound(s["pattern"].get<std::string>(), str)) {
        return Bad(path, "pattern: must match " + s["pattern"].get<std::string>());
      }
    }
    return Ok();
  }

  Status Array(const json& v, const json& s, const std::string& path, int depth) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<uint64_t>()) {
      return Bad(path, "minItems: must hold at least " + s["minItems"].dump() + " items");
    }
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<uint64_t>()) {
      return Bad(path, "maxItems: must hold at most " + s["maxItems"].dump() + " items");
    }
    if (s.value("uniqueItems", false)) {
      for (size_t i = 0; i < v.size(); ++i) {
        for (size_t j = i + 1; j < v.size(); ++j) {
          if (JsonEqual(v[i], v[j])) return Bad(Index(path, j), "uniqueItems: repeats an item");
        }
      }
    }
    size_t prefix = 0;
    if (s.contains("prefixItems")) {
      prefix = s["prefixItems"].size();
      for (size_t i = 0; i < v.size() && i < prefix; ++i) {
        RETURN_IF_ERROR(Validate(v[i], s["prefixItems"][i], Index(path, i), depth + 1));
      }
    }
    if (s.contains("items")) {
      for (size_t i = prefix; i < v.size(); ++i) {
        RETURN_IF_ERROR(Validate(v[i], s["items"], Index(path, i), depth + 1));
      }
    }
    if (s.contains("contains")) {
      bool any = false;
      for (const auto& item : v)
        any = any || Validate(item, s["contains"], path, depth + 1).has_value();
      if (!any) return Bad(path, "contains: no item matches");
    }
    return Ok();
  }

  Status Object(const json& v, const json& s, const std::string& path, int depth) {
    if (s.contains("minProperties") && v.size() < s["minProperties"].get<uint64_t>()) {
      return Bad(path,
                 "minProperties: must have at least " + s["minProperties"].dump() + " members");
    }
    if (s.contains("maxProperties") && v.size() > s["maxProperties"].get<uint64_t>()) {
      return Bad(path,
                 "maxProperties: must have at most " + s["maxProperties"].dump() + " members");
    }
    if (s.contains("required")) {
      for (const auto& r : s["required"]) {
        if (!v.contains(r.get<std::string>())) {
          return Bad(Key(path, r.get<std::string>()), "required property is missing");
        }
      }
    }
    const json empty = json::object();
    const json& props = s.contains("properties") ? s["properties"] : empty;
    const json& patterns = s.contains("patternProperties") ? s["patternProperties"] : empty;
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string child = Key(path, it.key());
      bool covered = false;
      if (auto p = props.find(it.key()); p != props.end()) {
        covered = true;
        RETURN_IF_ERROR(Validate(it.value(), *p, child, depth + 1));
      }
      for (auto pp = patterns.begin(); pp != patterns.end(); ++pp) {
        if (PatternFound(pp.key(), it.key())) {
          covered = true;
          RETURN_IF_ERROR(Validate(it.value(), pp.value(), child, depth + 1));
        }
      }
      if (s.contains("propertyNames")) {
        RETURN_IF_ERROR(Validate(json(it.key()), s["propertyNames"], child, depth + 1));
      }
      if (!covered && s.contains("additionalProperties")) {
        const json& ap = s["additionalProperties"];
        if (ap.is_boolean() && !ap.get<bool>()) {
          return Bad(child, "additionalProperties: property is not allowed");
        }
        RETURN_IF_ERROR(Validate(it.value(), ap, child, depth + 1));
      }
    }
    return Ok();
  }

  const json& root_;
};

}  // namespace

Status CheckJsonSchema(const json& schema, const std::string& path) {
  return SchemaChecker(schema).Check(schema, path, 0);
}

Status ValidateJson(const json& value, const json& schema) {
  RETURN_IF_ERROR(CheckJsonSchema(schema, "schema"));
  return Validator(schema).Validate(value, schema, "$", 0);
}

}  // namespace synaps::control
