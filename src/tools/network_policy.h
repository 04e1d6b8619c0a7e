// Where an HTTP tool may connect (docs/control.md, "HTTP tools and the network"). The checks
// that stand between a model's tool call and the network, as pure functions; HttpTools
// (tools/http_tools.h) runs them on every call and connects only to the addresses they passed.
//
//   1. CheckUrl: the tool's url, parsed by libcurl's own URL parser (the one that connects),
//      must be http or https, without user info or zone id, on a port in 1..65535, with a host
//      that is a lower-case name, a canonical IPv4 literal or an IPv6 literal, that is no cloud
//      metadata name, and that one of the tool's allowHosts covers.
//   2. CheckAddresses: every address the host resolves to (or the literal) must be public, or
//      internal (loopback, private) under the policy below. One bad address refuses the call:
//      a name that resolves to both 1.2.3.4 and 169.254.169.254 is refused.
//
// Internal addresses. In-cluster services live at private addresses (10.x), so an operator who
// lists a host exactly in allowHosts may reach it at a loopback or private address. A wildcard
// entry (*.example.com) reaches public addresses only: whoever controls a name under the
// suffix must not be able to point it inside the cluster. NetworkPolicy::deny_private
// (SYNAPS_TOOLS_DENY_PRIVATE=1) refuses internal addresses altogether.
//
// Every refusal is kPermissionDenied with a message naming the host or address and the reason.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "tools/address.h"

namespace synaps::tools {

struct NetworkPolicy {
  bool deny_private = false;  // refuse loopback and private addresses too

  // SYNAPS_TOOLS_DENY_PRIVATE: "1"/"true" or "0"/"false" (unset: false). Throws ConfigError for
  // any other value.
  static NetworkPolicy FromEnvironment();
};

// A tool's url after CheckUrl.
struct ToolTarget {
  std::string scheme;  // "http" or "https"
  std::string host;    // lower-case, no trailing dot; an IP literal in canonical form, no brackets
  int port = 0;        // explicit or the scheme's default
  std::optional<IpAddress> literal;  // set when the host is an IP literal
  bool exact_match = false;          // allowHosts names the host exactly (not by a wildcard)
  std::string url;  // the url rebuilt around `host`: what the transfer must be given

  // `host` as written in a URL or CURLOPT_RESOLVE: IPv6 in brackets.
  std::string UrlHost() const;
};

// Host names no tool may reach whatever resolves them: the cloud metadata services' names.
bool IsMetadataHostName(std::string_view host);

// Whether allowHosts entry `pattern` covers `host` (normalized as in ToolTarget) on `port`.
// Entries: "api.example.com", "*.example.com" (subdomains at any depth, not example.com
// itself), "10.0.0.7", "[fd00::7]", each optionally with ":port", which then must match.
// Names compare case-insensitively and without a trailing dot; IP literals by address.
enum class HostMatch { kNone, kWildcard, kExact };
HostMatch MatchHost(std::string_view pattern, std::string_view host, int port);

// Step 1 above. kPermissionDenied for a url the policy refuses (host not allowed, userinfo,
// scheme, non-canonical numeric host, metadata name), kInvalidArgument for one that does not
// parse.
Result<ToolTarget> CheckUrl(std::string_view url, const std::vector<std::string>& allow_hosts);

// Step 2 above, for the addresses `target.host` resolved to (or its literal). kUnavailable when
// `addresses` is empty.
Status CheckAddresses(const ToolTarget& target, const std::vector<IpAddress>& addresses,
                      const NetworkPolicy& policy);

}  // namespace synaps::tools
