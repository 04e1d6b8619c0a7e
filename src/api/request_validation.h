// Parsing and validation of request bodies: pure functions over bytes, no I/O, so they are
// fuzzed directly (tests/fuzz). Errors are kInvalidArgument with `field` naming the JSON path.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "store/run_store.h"

namespace synaps::api {

// Deepest nesting of arrays/objects accepted in a body.
inline constexpr int kMaxJsonDepth = 32;

// True for application/json (any case, with or without parameters such as charset).
bool IsJsonContentType(const std::string& content_type);

// Parses `body` as a JSON object: malformed JSON, invalid UTF-8, nesting deeper than
// kMaxJsonDepth and non-objects are refused.
Result<nlohmann::json> ParseJsonObject(const std::string& body);

// Validates a submit body and turns it into a store request (tenant and actor left empty).
// Unknown fields, wrong types and out-of-range values are refused, naming the field.
Result<store::SubmitRequest> ParseSubmitRequest(const std::string& body);

}  // namespace synaps::api
