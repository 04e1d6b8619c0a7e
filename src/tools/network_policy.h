// Where an HTTP tool may connect (docs/control.md, "HTTP tools and the network"). The checks
// that stand between a model's tool call and the network, as pure functions; HttpTools
// (tools/http_tools.h) runs them on every call and connects only to the addresses they passed.
// They are the shared outbound policy of net/url_policy.h plus the tool's own allowHosts:
//
//   1. CheckUrl: net::ParseTarget (scheme, user info, port, canonical host, metadata names and
//      forbidden literals), then one of the tool's allowHosts must cover the host.
//   2. CheckAddresses: every address the host resolves to (or the literal) must pass
//      net::CheckAddress. One bad address refuses the call: a name that resolves to both
//      1.2.3.4 and 169.254.169.254 is refused.
//
// Internal addresses. In-cluster services live at private addresses (10.x), so an operator who
// lists a host exactly in allowHosts may reach it at a loopback or private address. A wildcard
// entry (*.example.com) reaches public addresses only: whoever controls a name under the
// suffix must not be able to point it inside the cluster. NetworkPolicy::deny_private
// (SYNAPS_TOOLS_DENY_PRIVATE=1, which governs providers too) refuses internal addresses
// altogether.
//
// Every refusal is kPermissionDenied with a message naming the host or address and the reason.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "net/address.h"
#include "net/url_policy.h"

namespace synaps::tools {

using net::IpAddress;
using net::ParseIpAddress;
using net::HostMatch;
using net::MatchHost;
using net::IsMetadataHostName;
// The switch shared with providers (net::AddressPolicy).
using NetworkPolicy = net::AddressPolicy;

// A tool's url after CheckUrl.
struct ToolTarget : net::Target {
  bool exact_match = false;  // allowHosts names the host exactly (not by a wildcard)
};

// Step 1 above. kPermissionDenied for a url the policy refuses (host not allowed, userinfo,
// scheme, non-canonical numeric host, metadata name), kInvalidArgument for one that does not
// parse.
Result<ToolTarget> CheckUrl(std::string_view url, const std::vector<std::string>& allow_hosts);

// Step 2 above, for the addresses `target.host` resolved to (or its literal). kUnavailable when
// `addresses` is empty.
Status CheckAddresses(const ToolTarget& target, const std::vector<IpAddress>& addresses,
                      const NetworkPolicy& policy);

}  // namespace synaps::tools
