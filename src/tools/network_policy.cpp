#include "tools/network_policy.h"

namespace synaps::tools {

namespace {

std::string Joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

Result<ToolTarget> CheckUrl(std::string_view url, const std::vector<std::string>& allow_hosts) {
  ASSIGN_OR_RETURN(net::Target parsed, net::ParseTarget(url, net::kToolSender));
  ToolTarget target;
  static_cast<net::Target&>(target) = std::move(parsed);
  HostMatch best = HostMatch::kNone;
  for (const auto& pattern : allow_hosts) {
    best = std::max(best, MatchHost(pattern, target.host, target.port));
  }
  if (best == HostMatch::kNone) {
    return Fail(ErrorCode::kPermissionDenied, "tool url host " + target.HostPort() +
                                                  " is not in allowHosts (" + Joined(allow_hosts) +
                                                  ")");
  }
  target.exact_match = best == HostMatch::kExact;
  return target;
}

Status CheckAddresses(const ToolTarget& target, const std::vector<IpAddress>& addresses,
                      const NetworkPolicy& policy) {
  if (addresses.empty()) {
    return Fail(ErrorCode::kUnavailable, "tool host " + target.host + " resolved to no address");
  }
  for (const IpAddress& address : addresses) {
    RETURN_IF_ERROR(net::CheckAddress(
        target, address, policy, net::kToolSender, target.exact_match,
        ": only hosts listed exactly in allowHosts (not by a wildcard) may be internal"));
  }
  return Ok();
}

}  // namespace synaps::tools
