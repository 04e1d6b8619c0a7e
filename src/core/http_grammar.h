// Pieces of the HTTP grammar (RFC 9110) that data crossing into HTTP must satisfy: header field
// values that cannot split a response, media types as stored for artifacts, and the identifiers
// shared by API keys and JWT claims (tenant ids, roles). Pure functions over bytes; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace synaps {

// Longest media type accepted for an artifact (a Content-Type sent back verbatim).
inline constexpr size_t kMaxMediaTypeBytes = 128;

// RFC 9110 §5.6.2 token: 1*tchar.
bool IsHttpToken(std::string_view s);

// True when `value` may be written as a header field value: no control character (CR, LF, NUL,
// any other of 0x00-0x1F and 0x7F) except horizontal tab, and no leading or trailing whitespace
// (RFC 9110 §5.5). Bytes 0x80-0xFF (obs-text) pass. A value that fails would let whoever chose
// it end the header early and write headers or a second response of their own.
bool IsSafeHeaderValue(std::string_view value);

// True when `s` matches RFC 9110 §8.3.1 media-type, ASCII only and at most kMaxMediaTypeBytes:
//   type "/" subtype *( OWS ";" OWS parameter ), parameter = token "=" ( token / quoted-string )
// e.g. "text/plain", "text/plain; charset=utf-8", "multipart/x; boundary=\"a b\"".
bool IsMediaType(std::string_view s);

// The media type's "type/subtype", lower-cased, without parameters ("" when not a media type).
std::string MediaTypeEssence(std::string_view s);

// Tenant ids of API keys and JWT claims: [A-Za-z0-9][A-Za-z0-9._-]{0,63}.
bool IsTenantId(std::string_view s);

}  // namespace synaps
