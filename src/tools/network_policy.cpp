#include "tools/network_policy.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

namespace synaps::tools {

namespace {

struct UrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

// One part of a parsed URL; empty when absent.
std::string Part(CURLU* url, CURLUPart part, unsigned flags = 0) {
  char* text = nullptr;
  if (curl_url_get(url, part, &text, flags) != CURLUE_OK || text == nullptr) return "";
  std::string out(text);
  curl_free(text);
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string WithoutTrailingDot(std::string s) {
  if (s.ends_with('.')) s.pop_back();
  return s;
}

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

bool IsHostName(std::string_view h) {
  if (h.empty() || h.size() > 253 || !std::all_of(h.begin(), h.end(), NameChar)) return false;
  return !h.starts_with('.') && !h.ends_with('.') && h.find("..") == std::string_view::npos;
}

Error Denied(std::string message) {
  return Error{ErrorCode::kPermissionDenied, std::move(message), ""};
}

// Splits an allowHosts entry into host and port (0: any port). False when malformed.
bool SplitPattern(std::string_view pattern, std::string& host, int& port) {
  std::string_view port_text;
  if (pattern.starts_with('[')) {
    size_t close = pattern.find(']');
    if (close == std::string_view::npos) return false;
    host = std::string(pattern.substr(1, close - 1));
    std::string_view rest = pattern.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(':')) return false;
      port_text = rest.substr(1);
    }
  } else if (std::count(pattern.begin(), pattern.end(), ':') == 1) {
    size_t colon = pattern.find(':');
    host = std::string(pattern.substr(0, colon));
    port_text = pattern.substr(colon + 1);
  } else {
    host = std::string(pattern);  // a name, IPv4, or IPv6 without brackets
  }
  port = 0;
  if (pattern.find(':') != std::string_view::npos && !port_text.empty()) {
    if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(),
                                             [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
    port = std::stoi(std::string(port_text));
    if (port < 1 || port > 65535) return false;
  }
  host = WithoutTrailingDot(Lower(host));
  return !host.empty();
}

// "a loopback address", "an unspecified address".
std::string AnAddress(AddressClass c) {
  std::string name(AddressClassName(c));
  return (name.find_first_of("aeiou") == 0 ? "an " : "a ") + name + " address";
}

std::string Joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

NetworkPolicy NetworkPolicy::FromEnvironment() {
  NetworkPolicy policy;
  const char* value = std::getenv("SYNAPS_TOOLS_DENY_PRIVATE");
  std::string v = value ? Lower(value) : "";
  if (v == "1" || v == "true") {
    policy.deny_private = true;
  } else if (!v.empty() && v != "0" && v != "false") {
    throw ConfigError("SYNAPS_TOOLS_DENY_PRIVATE must be 1 or 0 (true or false), not \"" +
                      std::string(value) + "\"");
  }
  return policy;
}

std::string ToolTarget::UrlHost() const {
  return literal && literal->v6 ? "[" + host + "]" : host;
}

bool IsMetadataHostName(std::string_view host) {
  static constexpr std::string_view kNames[] = {
      "metadata",      "metadata.google.internal",  "metadata.goog",
      "instance-data", "instance-data.ec2.internal", "metadata.azure.internal"};
  std::string h = WithoutTrailingDot(Lower(host));
  return std::any_of(std::begin(kNames), std::end(kNames), [&](std::string_view n) {
    return h == n || h.ends_with("." + std::string(n));
  });
}

HostMatch MatchHost(std::string_view pattern, std::string_view host, int port) {
  std::string want;
  int want_port = 0;
  if (!SplitPattern(pattern, want, want_port)) return HostMatch::kNone;
  if (want_port != 0 && want_port != port) return HostMatch::kNone;
  std::string h = WithoutTrailingDot(Lower(host));
  if (want.starts_with("*.")) {
    std::string suffix = want.substr(1);  // ".example.com"
    if (ParseIpAddress(h)) return HostMatch::kNone;
    return h.size() > suffix.size() && h.ends_with(suffix) ? HostMatch::kWildcard
                                                           : HostMatch::kNone;
  }
  auto want_ip = ParseIpAddress(want);
  if (want_ip) return want_ip == ParseIpAddress(h) ? HostMatch::kExact : HostMatch::kNone;
  return want == h ? HostMatch::kExact : HostMatch::kNone;
}

Result<ToolTarget> CheckUrl(std::string_view url, const std::vector<std::string>& allow_hosts) {
  UrlHandle parsed(curl_url());
  if (!parsed) return Fail(ErrorCode::kInternal, "out of memory parsing a tool url");
  std::string text(url);
  if (CURLUcode rc = curl_url_set(parsed.get(), CURLUPART_URL, text.c_str(), 0); rc != CURLUE_OK) {
    return Fail(ErrorCode::kInvalidArgument,
                "tool url " + text + " does not parse: " + curl_url_strerror(rc));
  }
  ToolTarget target;
  target.scheme = Lower(Part(parsed.get(), CURLUPART_SCHEME));
  if (target.scheme != "http" && target.scheme != "https") {
    return std::unexpected(Denied("tool url " + text + ": only http and https are allowed"));
  }
  if (!Part(parsed.get(), CURLUPART_USER).empty() ||
      !Part(parsed.get(), CURLUPART_PASSWORD).empty()) {
    return std::unexpected(Denied("tool url " + text + ": user info (user@host) is not allowed"));
  }
  if (!Part(parsed.get(), CURLUPART_ZONEID).empty()) {
    return std::unexpected(Denied("tool url " + text + ": IPv6 zone ids are not allowed"));
  }
  std::string port = Part(parsed.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  target.port = port.empty() || port.size() > 5 ? 0 : std::atoi(port.c_str());
  if (target.port < 1 || target.port > 65535) {
    return std::unexpected(Denied("tool url " + text + ": port must be within 1..65535"));
  }

  std::string host = WithoutTrailingDot(Lower(Part(parsed.get(), CURLUPART_HOST)));
  if (host.starts_with('[')) {
    target.literal = ParseIpAddress(host.substr(1, host.size() - 2));
    if (!target.literal || !target.literal->v6) {
      return std::unexpected(Denied("tool url " + text + ": malformed IPv6 host " + host));
    }
    host = target.literal->ToString();
  } else if (!IsHostName(host)) {
    return std::unexpected(
        Denied("tool url " + text + ": host \"" + host + "\" is not a plain ASCII host name"));
  } else if (EndsInNumber(host)) {
    target.literal = ParseIpAddress(host);
    if (!target.literal || target.literal->v6) {
      return std::unexpected(Denied("tool url " + text + ": host " + host +
                                    " is a numeric address in a non-canonical form"));
    }
  }
  target.host = host;
  // A forbidden literal is refused as such, before the allowlist: that is the better reason.
  if (target.literal && IsForbidden(Classify(*target.literal))) {
    return std::unexpected(Denied("tool host " + host + " is " +
                                  AnAddress(Classify(*target.literal)) +
                                  ", which tools never reach"));
  }
  if (IsMetadataHostName(host)) {
    return std::unexpected(
        Denied("tool url host " + host + " is a cloud metadata service, which tools never reach"));
  }

  HostMatch best = HostMatch::kNone;
  for (const auto& pattern : allow_hosts) best = std::max(best, MatchHost(pattern, host, target.port));
  if (best == HostMatch::kNone) {
    return std::unexpected(Denied("tool url host " + target.UrlHost() + ":" +
                                  std::to_string(target.port) + " is not in allowHosts (" +
                                  Joined(allow_hosts) + ")"));
  }
  target.exact_match = best == HostMatch::kExact;

  // The transfer gets the url with the host exactly as checked, so that libcurl connects to
  // the name (and the pinned addresses) this check saw.
  curl_url_set(parsed.get(), CURLUPART_HOST, target.UrlHost().c_str(), 0);
  curl_url_set(parsed.get(), CURLUPART_FRAGMENT, nullptr, 0);
  target.url = Part(parsed.get(), CURLUPART_URL);
  if (target.url.empty()) return Fail(ErrorCode::kInternal, "cannot rebuild tool url " + text);
  return target;
}

Status CheckAddresses(const ToolTarget& target, const std::vector<IpAddress>& addresses,
                      const NetworkPolicy& policy) {
  if (addresses.empty()) {
    return Fail(ErrorCode::kUnavailable, "tool host " + target.host + " resolved to no address");
  }
  for (const IpAddress& address : addresses) {
    AddressClass c = Classify(address);
    std::string what = (target.literal ? "tool host " + address.ToString()
                                       : "tool host " + target.host + " resolves to " +
                                             address.ToString() + ", which") +
                       " is " + AnAddress(c);
    if (IsForbidden(c)) {
      return std::unexpected(Denied(what + ", which tools never reach"));
    }
    if (IsInternal(c) && policy.deny_private) {
      return std::unexpected(Denied(what + ", refused by SYNAPS_TOOLS_DENY_PRIVATE"));
    }
    if (IsInternal(c) && !target.exact_match) {
      return std::unexpected(Denied(
          what + ": only hosts listed exactly in allowHosts (not by a wildcard) may be internal"));
    }
  }
  return Ok();
}

}  // namespace synaps::tools
