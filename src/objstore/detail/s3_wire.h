// The text formats of the S3 REST API: URI encoding as SigV4 wants it, the few XML elements we
// read and write, and S3's timestamps. Pure functions; parse failures are values.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace synaps::objstore::detail {

// Percent-encodes every byte except A-Z a-z 0-9 - _ . ~ (upper-case hex), as SigV4's canonical
// request does. '/' is kept when `keep_slash` (object key paths) and encoded otherwise (query).
std::string UriEncode(std::string_view text, bool keep_slash);

// "a=1&b=x%2Fy": names and values UriEncode'd, pairs sorted by encoded name then value, so the
// string is both what is sent and SigV4's canonical query. An empty value stays "name=".
std::string CanonicalQuery(std::vector<std::pair<std::string, std::string>> params);

// The inner text of the first <tag> element (attributes allowed), XML-unescaped; nullopt when
// there is none. Enough for S3's flat replies: no CDATA, no nested elements of the same name.
std::optional<std::string> XmlText(std::string_view xml, std::string_view tag);
// The raw inner text of every <tag> element, in document order.
std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view tag);
std::string XmlUnescape(std::string_view text);
std::string XmlEscape(std::string_view text);

// An endpoint URL split: "http://127.0.0.1:9000/" → {"http", "127.0.0.1:9000"}. Only http and
// https, a non-empty host, no user info, path (a lone '/' is fine), query or fragment;
// kInvalidArgument otherwise.
struct Endpoint {
  std::string scheme;
  std::string authority;  // host[:port]
};
Result<Endpoint> ParseEndpoint(std::string_view url);

// "2013-09-17T18:07:53.000Z" (fraction optional) → time point; kInvalidArgument otherwise.
Result<std::chrono::system_clock::time_point> ParseIso8601(std::string_view text);

}  // namespace synaps::objstore::detail
