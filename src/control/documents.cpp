#include "control/documents.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>
#include <sstream>

#include "control/spec.h"

namespace synaps::control {

using nlohmann::json;

namespace {

constexpr int kMaxDepth = 64;

// What an unquoted YAML 1.2 core-schema scalar means.
json PlainScalar(const std::string& s) {
  static const std::regex kInt("[-+]?[0-9]+");
  static const std::regex kHex("0x[0-9a-fA-F]+");
  static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (std::regex_match(s, kInt)) {
    try {
      size_t used = 0;
      long long v = std::stoll(s, &used, 10);
      if (used == s.size()) return v;
    } catch (const std::exception&) {
      // Too large for an int64: fall through to a float.
    }
  }
  if (std::regex_match(s, kHex)) {
    try {
      return std::stoll(s.substr(2), nullptr, 16);
    } catch (const std::exception&) {
      return s;
    }
  }
  if (std::regex_match(s, kFloat)) {
    try {
      double d = std::stod(s);
      if (std::isfinite(d)) return d;
    } catch (const std::exception&) {
      return s;
    }
  }
  return s;
}

Result<json> Convert(const YAML::Node& node, int depth) {
  if (depth > kMaxDepth) {
    return Fail(ErrorCode::kInvalidArgument, "YAML nested deeper than 64 levels");
  }
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json(nullptr);
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      const std::string& tag = node.Tag();
      if (tag == "?") return PlainScalar(s);
      if (tag == "!" || tag == "tag:yaml.org,2002:str") return json(s);
      if (tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float" ||
          tag == "tag:yaml.org,2002:bool" || tag == "tag:yaml.org,2002:null") {
        json v = PlainScalar(s);
        if (v.is_string()) {
          return Fail(ErrorCode::kInvalidArgument, "value " + s + " does not fit its tag " + tag);
        }
        return v;
      }
      return Fail(ErrorCode::kInvalidArgument, "unsupported YAML tag " + tag);
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) {
        ASSIGN_OR_RETURN(json v, Convert(item, depth + 1));
        out.push_back(std::move(v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return Fail(ErrorCode::kInvalidArgument, "map keys must be strings");
        }
        const std::string key = kv.first.Scalar();
        if (out.contains(key)) return Fail(ErrorCode::kInvalidArgument, "key " + key + " repeats");
        ASSIGN_OR_RETURN(json v, Convert(kv.second, depth + 1));
        out[key] = std::move(v);
      }
      return out;
    }
  }
  return json(nullptr);
}

std::string YamlError(const YAML::Exception& e) {
  return "YAML: " + e.msg + " at line " + std::to_string(e.mark.line + 1) + ", column " +
         std::to_string(e.mark.column + 1);
}

void Emit(YAML::Emitter& out, const json& v) {
  if (v.is_object()) {
    if (v.empty()) {
      out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
      return;
    }
    out << YAML::BeginMap;
    for (auto it = v.begin(); it != v.end(); ++it) {
      out << YAML::Key;
      if (PlainScalar(it.key()).is_string()) {
        out << it.key();
      } else {
        out << YAML::DoubleQuoted << it.key();
      }
      out << YAML::Value;
      Emit(out, it.value());
    }
    out << YAML::EndMap;
  } else if (v.is_array()) {
    if (v.empty()) {
      out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
      return;
    }
    out << YAML::BeginSeq;
    for (const auto& item : v) Emit(out, item);
    out << YAML::EndSeq;
  } else if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    // A literal block reads back exactly when the text ends in one newline and has no line
    // starting with a space (block indentation) or carriage returns.
    bool literal = s.find('\n') != std::string::npos && s.ends_with("\n") && !s.ends_with("\n\n") &&
                   s.find('\r') == std::string::npos && s.find("\n ") == std::string::npos &&
                   !s.starts_with(" ") && s.find('\t') == std::string::npos;
    if (literal) {
      out << YAML::Literal << s;
    } else if (s.find('\n') != std::string::npos || !PlainScalar(s).is_string()) {
      // yaml-cpp quotes what is not a valid plain scalar by itself; these it would not.
      out << YAML::DoubleQuoted << s;
    } else {
      out << s;
    }
  } else if (v.is_null()) {
    out << YAML::Null;
  } else {
    out << v.dump();  // numbers and booleans, as JSON writes them (plain YAML scalars)
  }
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

}  // namespace

Result<json> YamlToJson(const std::string& yaml) {
  try {
    return Convert(YAML::Load(yaml), 0);
  } catch (const YAML::Exception& e) {
    return Fail(ErrorCode::kInvalidArgument, YamlError(e));
  }
}

Result<std::vector<Document>> ParseDocuments(const std::string& yaml) {
  std::vector<YAML::Node> nodes;
  try {
    nodes = YAML::LoadAll(yaml);
  } catch (const YAML::Exception& e) {
    return Fail(ErrorCode::kInvalidArgument, YamlError(e));
  }
  std::vector<Document> docs;
  std::set<std::string> seen;
  int index = 0;
  for (const auto& node : nodes) {
    ++index;
    std::string where = "document " + std::to_string(index);
    auto bad = [&](const std::string& field, const std::string& message) {
      return Fail(ErrorCode::kInvalidArgument,
                  where + ": " + (field.empty() ? "" : field + ": ") + message, field);
    };
    if (node.IsNull()) continue;
    auto converted = Convert(node, 0);
    if (!converted) return bad("", converted.error().message);
    const json& doc = *converted;
    if (!doc.is_object()) return bad("", "must be a map with kind, name and spec");
    for (auto it = doc.begin(); it != doc.end(); ++it) {
      if (it.key() != "kind" && it.key() != "name" && it.key() != "spec" && it.key() != "reason") {
        return bad(it.key(), "unknown field (known: kind, name, spec, reason)");
      }
    }
    Document d;
    if (!doc.contains("kind") || !doc["kind"].is_string()) return bad("kind", "required string");
    if (!doc.contains("name") || !doc["name"].is_string()) return bad("name", "required string");
    d.kind = doc["kind"].get<std::string>();
    d.name = doc["name"].get<std::string>();
    if (IsKind(d.kind) && IsValidName(d.name)) where += " (" + d.kind + "/" + d.name + ")";
    if (doc.contains("reason")) {
      if (!doc["reason"].is_string()) return bad("reason", "must be a string");
      d.reason = doc["reason"].get<std::string>();
    }
    if (!doc.contains("spec")) return bad("spec", "required");
    d.spec = doc["spec"];
    if (auto valid = ValidateSpec(d.kind, d.name, d.spec); !valid) {
      return Fail(ErrorCode::kInvalidArgument, where + ": " + valid.error().message,
                  valid.error().field);
    }
    if (!seen.insert(d.kind + "/" + d.name).second) {
      return bad("", d.kind + "/" + d.name + " appears twice in the file");
    }
    docs.push_back(std::move(d));
  }
  return docs;
}

std::string JsonToYaml(const json& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  Emit(out, value);
  std::string s = out.c_str();
  if (!s.ends_with("\n")) s += "\n";
  return s;
}

std::string LineDiff(const std::string& before, const std::string& after, int context) {
  if (before == after) return {};
  std::vector<std::string> a = Lines(before);
  std::vector<std::string> b = Lines(after);
  // (marker, line) in order, from a longest common subsequence of lines.
  std::vector<std::pair<char, std::string>> ops;
  const size_t n = a.size();
  const size_t m = b.size();
  if (n * m > 4'000'000) {
    for (const auto& l : a) ops.push_back({'-', l});
    for (const auto& l : b) ops.push_back({'+', l});
  } else {
    std::vector<std::vector<int>> lcs(n + 1, std::vector<int>(m + 1, 0));
    for (size_t i = n; i-- > 0;) {
      for (size_t j = m; j-- > 0;) {
        lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    size_t i = 0;
    size_t j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[i] == b[j]) {
        ops.push_back({' ', a[i]});
        ++i;
        ++j;
      } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
        ops.push_back({'-', a[i++]});  // removals first, as diff(1) shows them
      } else {
        ops.push_back({'+', b[j++]});
      }
    }
  }
  std::string out;
  const size_t keep = static_cast<size_t>(std::max(context, 0));
  size_t k = 0;
  while (k < ops.size()) {
    if (ops[k].first != ' ') {
      out += std::string(1, ops[k].first) + " " + ops[k].second + "\n";
      ++k;
      continue;
    }
    size_t end = k;
    while (end < ops.size() && ops[end].first == ' ') ++end;
    const size_t run = end - k;
    const bool at_start = k == 0;
    const bool at_end = end == ops.size();
    const size_t head = at_start ? 0 : keep;  // lines kept after a change
    const size_t tail = at_end ? 0 : keep;    // lines kept before a change
    if (run <= head + tail + 1) {
      for (size_t x = k; x < end; ++x) out += "  " + ops[x].second + "\n";
    } else {
      for (size_t x = k; x < k + head; ++x) out += "  " + ops[x].second + "\n";
      out += "  ...\n";
      for (size_t x = end - tail; x < end; ++x) out += "  " + ops[x].second + "\n";
    }
    k = end;
  }
  return out;
}

}  // namespace synaps::control
