// Control documents as `synaps control apply -f` reads them: a YAML stream of documents
// `{kind, name, spec, reason?}` separated by `---`, and the text helpers the CLI shows them
// with (YAML out, line diffs). Pure functions, no I/O.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace synaps::control {

struct Document {
  std::string kind;
  std::string name;
  nlohmann::json spec;
  std::string reason;  // empty: the caller's default
};

// Parses every document of `yaml` (empty documents are skipped) and validates kind, name and
// spec (ValidateSpec). A (kind, name) given twice is refused. Errors are kInvalidArgument whose
// message starts with "document N (kind/name)" and whose field is the path in the document
// ("spec.template"). YAML scalars follow the YAML 1.2 core schema: unquoted true/false, null/~,
// integers and floats become JSON booleans, null and numbers; quoted and block scalars stay
// strings.
Result<std::vector<Document>> ParseDocuments(const std::string& yaml);

// One YAML value as JSON, by the rules above. kInvalidArgument for a YAML error.
Result<nlohmann::json> YamlToJson(const std::string& yaml);

// JSON as block-style YAML that YamlToJson reads back to the same JSON (strings that would read
// as something else are quoted; multi-line strings are literal blocks).
std::string JsonToYaml(const nlohmann::json& value);

// A line diff of `before` and `after`: lines prefixed "- ", "+ " or "  "; runs of more than
// 2 * `context` unchanged lines are cut to `context` lines each side of "  ...". Empty when the
// texts are equal.
std::string LineDiff(const std::string& before, const std::string& after, int context = 3);

}  // namespace synaps::control
