// The one URL and address policy for every request Synaps sends on behalf of a registry entry
// (docs/security.md, "Outbound requests"): HTTP tools (tools/network_policy.h), model providers
// (providers/registry.h) and the registry's own validation of stored specs (control/spec.cpp)
// all go through these functions, so what is refused when a spec is stored is what is refused
// when it is called.
//
//   1. ParseTarget: the url, parsed by libcurl's own URL parser (the one that connects), must be
//      http or https, without user info or zone id, on a port in 1..65535, with a host that is a
//      lower-case name, a canonical IPv4 literal or an IPv6 literal, that is no cloud metadata
//      name, and no literal address that is never reachable (IsForbidden). A numeric host that
//      libcurl would read as an IPv4 number ("2852039166", "0xA9FEA9FE", "127.1") is refused
//      unless it is the canonical dotted quad; an IPv6 literal is rewritten to its canonical
//      text, so ::ffff:a9fe:a9fe is seen (and refused) as the metadata address it carries.
//   2. CheckAddress: each address the host resolves to, or that a socket is about to connect
//      to, must be public, or internal (loopback, private) while the caller allows it and
//      AddressPolicy::deny_private is off.
//
// Pure functions (ParseTarget uses libcurl's URL API, no I/O). Every refusal is
// kPermissionDenied with a message naming the url or address and the reason; a url that does
// not parse is kInvalidArgument.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "net/address.h"

namespace synaps::net {

// The one switch for internal addresses, shared by tools and providers.
struct AddressPolicy {
  bool deny_private = false;  // refuse loopback and private addresses too

  // SYNAPS_TOOLS_DENY_PRIVATE: "1"/"true" or "0"/"false" (unset: false). The name predates
  // providers; it governs HTTP tools and providers' baseUrl alike. Throws ConfigError for any
  // other value.
  static AddressPolicy FromEnvironment();
};

// Who sends the request, for messages: "tool" ("tool url …", "which tools never reach") or
// "provider".
struct Sender {
  std::string_view noun;    // "tool", "provider"
  std::string_view plural;  // "tools", "providers"
};
inline constexpr Sender kToolSender{"tool", "tools"};
inline constexpr Sender kProviderSender{"provider", "providers"};

// A url after ParseTarget.
struct Target {
  std::string scheme;  // "http" or "https"
  std::string host;    // lower-case, no trailing dot; an IP literal in canonical form, no brackets
  int port = 0;        // explicit or the scheme's default
  std::optional<IpAddress> literal;  // set when the host is an IP literal
  std::string url;  // the url rebuilt around `host`, without fragment: what a transfer is given

  // `host` as written in a URL or CURLOPT_RESOLVE: IPv6 in brackets.
  std::string UrlHost() const;
  // "host:port" (IPv6 in brackets).
  std::string HostPort() const;
};

// Step 1 above.
Result<Target> ParseTarget(std::string_view url, Sender sender);

// Host names nothing may reach whatever resolves them: the cloud metadata services' names.
bool IsMetadataHostName(std::string_view host);

// Whether `pattern` covers `host` (normalized as in Target) on `port`. Patterns:
// "api.example.com", "*.example.com" (subdomains at any depth, not example.com itself),
// "10.0.0.7", "[fd00::7]", each optionally with ":port", which then must match. Names compare
// case-insensitively and without a trailing dot; IP literals by address.
enum class HostMatch { kNone, kWildcard, kExact };
HostMatch MatchHost(std::string_view pattern, std::string_view host, int port);

// Why `pattern` (an allowHosts entry, or a host a key is bound to) is unusable, or "" when it
// is fine: malformed, a metadata name, or a literal that is never reachable in any form
// (169.254.169.254, [::ffff:169.254.169.254], [fe80::1]).
std::string HostPatternProblem(std::string_view pattern);

// Step 2 above, for one address of `target`. `internal_allowed`: whether the caller lets this
// target reach loopback and private addresses at all (tools: only hosts listed exactly);
// `why_not_internal` completes the refusal's message when it does not.
Status CheckAddress(const Target& target, const IpAddress& address, const AddressPolicy& policy,
                    Sender sender, bool internal_allowed = true,
                    std::string_view why_not_internal = {});

// The address of a socket address (AF_INET or AF_INET6); nullopt for other families.
std::optional<IpAddress> AddressOf(const sockaddr* address);

}  // namespace synaps::net
