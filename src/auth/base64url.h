// Base64url without padding (RFC 4648 §5, as JWTs use it; RFC 7515 §2).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace synaps::auth {

// Encodes `bytes` with the URL-safe alphabet and no '=' padding.
std::string Base64UrlEncode(std::string_view bytes);

// Decodes strictly: only the URL-safe alphabet, no padding, no whitespace, and the unused low
// bits of the last character must be zero, so every byte string has exactly one accepted
// encoding. Returns nullopt for anything else.
std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace synaps::auth
