// Text and JSON that PostgreSQL will store: jsonb refuses invalid UTF-8 and the NUL character
// (\u0000), and nlohmann::json throws when it dumps invalid UTF-8. Whatever came from outside
// (model answers, tool results, judge replies) passes through these before it is written, so one
// odd byte can never fail a whole batch of writes. Pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace synaps {

// `text` with every invalid UTF-8 sequence (bad bytes, overlong forms, surrogates, code points
// above U+10FFFF) and every NUL replaced by U+FFFD.
std::string ValidUtf8(std::string_view text);

// The longest prefix of `text` of at most `max_bytes` bytes that does not split a UTF-8
// sequence.
std::string_view Utf8Prefix(std::string_view text, size_t max_bytes);

// A copy of `value` that PostgreSQL's jsonb accepts: strings and object keys through ValidUtf8,
// and containers nested deeper than `max_depth` replaced by the string "[nested too deep]".
nlohmann::json StorableJson(const nlohmann::json& value, int max_depth = 64);

// The nesting depth of JSON text (brackets outside strings), without parsing it: guards a parse
// or a copy of hostile input, which recurse per level.
int JsonTextDepth(std::string_view text);

}  // namespace synaps
