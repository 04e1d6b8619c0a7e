// A subset of JSON Schema (draft 2020-12 keywords; the ones tool parameters and output checks
// use): type, properties, required, additionalProperties, items, prefixItems, enum, const,
// minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf, minLength, maxLength,
// pattern, minItems, maxItems, uniqueItems, minProperties, maxProperties, allOf, anyOf, oneOf,
// not, and local $ref ("#/$defs/x", "#/definitions/x", any "#/..." pointer). Annotation
// keywords (title, description, default, examples, format, $schema, $id, $comment, ...) are
// accepted and ignored. Pure functions, no I/O.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace synaps::control {

// Checks that `schema` is a well-formed schema (an object or a boolean), that the keywords above
// have the right types, that patterns compile and that local $refs resolve. kInvalidArgument
// with `field` = `path` plus the JSON path of the bad keyword.
Status CheckJsonSchema(const nlohmann::json& schema, const std::string& path);

// Validates `value` against `schema` (which must pass CheckJsonSchema). kInvalidArgument with
// `field` = the JSON path in `value` ("$" for the root, "$.items[2].name") and a message naming
// the keyword that failed.
Status ValidateJson(const nlohmann::json& value, const nlohmann::json& schema);

}  // namespace synaps::control
