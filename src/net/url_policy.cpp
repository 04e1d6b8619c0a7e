#include "net/url_policy.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "curl/handles.h"

namespace synaps::net {

namespace {

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

// Splits a host pattern into host and port (0: any port). False when malformed.
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

// The host of a parsed url as a Target sees it; sets `literal` for IP literals.
Result<std::string> CanonicalHost(CURLU* parsed, const std::string& text, Sender s,
                                  std::optional<IpAddress>& literal) {
  std::string url_name = std::string(s.noun) + " url " + text;
  std::string host = WithoutTrailingDot(Lower(Part(parsed, CURLUPART_HOST)));
  if (host.starts_with('[')) {
    literal = ParseIpAddress(host.substr(1, host.size() - 2));
    if (!literal || !literal->v6) {
      return std::unexpected(Denied(url_name + ": malformed IPv6 host " + host));
    }
    return literal->ToString();
  }
  if (!IsHostName(host)) {
    return std::unexpected(
        Denied(url_name + ": host \"" + host + "\" is not a plain ASCII host name"));
  }
  if (EndsInNumber(host)) {
    literal = ParseIpAddress(host);
    if (!literal || literal->v6) {
      return std::unexpected(
          Denied(url_name + ": host " + host + " is a numeric address in a non-canonical form"));
    }
  }
  return host;
}

}  // namespace

AddressPolicy AddressPolicy::FromEnvironment() {
  AddressPolicy policy;
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

std::string Target::UrlHost() const { return literal && literal->v6 ? "[" + host + "]" : host; }

std::string Target::HostPort() const { return UrlHost() + ":" + std::to_string(port); }

bool IsMetadataHostName(std::string_view host) {
  static constexpr std::string_view kNames[] = {
      "metadata",      "metadata.google.internal",   "metadata.goog",
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

std::string HostPatternProblem(std::string_view pattern) {
  std::string host;
  int port = 0;
  if (!SplitPattern(pattern, host, port))
    return "must be host, *.domain, IPv4 or [IPv6], each with an optional :port";
  std::string name = host.starts_with("*.") ? host.substr(2) : host;
  if (auto ip = ParseIpAddress(host)) {
    AddressClass c = Classify(*ip);
    if (IsForbidden(c))
      return ip->ToString() + " is " + AnAddress(c) + ", which is never reachable";
    return "";
  }
  if (!IsHostName(name)) return "must be a plain ASCII host name, *.domain, IPv4 or [IPv6]";
  if (EndsInNumber(name)) {
    return "a numeric host must be a canonical IPv4 address (four decimal parts), not " + name;
  }
  if (IsMetadataHostName(name)) return "cloud metadata hosts are never reachable";
  return "";
}

Result<Target> ParseTarget(std::string_view url, Sender s) {
  curl::UrlHandle parsed = curl::NewUrl();
  if (!parsed) return Fail(ErrorCode::kInternal, "out of memory parsing a url");
  std::string text(url);
  std::string url_name = std::string(s.noun) + " url " + text;
  if (CURLUcode rc = curl_url_set(parsed.get(), CURLUPART_URL, text.c_str(), 0); rc != CURLUE_OK) {
    return Fail(ErrorCode::kInvalidArgument,
                url_name + " does not parse: " + curl_url_strerror(rc));
  }
  Target target;
  target.scheme = Lower(Part(parsed.get(), CURLUPART_SCHEME));
  if (target.scheme != "http" && target.scheme != "https") {
    return std::unexpected(Denied(url_name + ": only http and https are allowed"));
  }
  if (!Part(parsed.get(), CURLUPART_USER).empty() ||
      !Part(parsed.get(), CURLUPART_PASSWORD).empty()) {
    return std::unexpected(Denied(url_name + ": user info (user@host) is not allowed"));
  }
  if (!Part(parsed.get(), CURLUPART_ZONEID).empty()) {
    return std::unexpected(Denied(url_name + ": IPv6 zone ids are not allowed"));
  }
  std::string port = Part(parsed.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  target.port = port.empty() || port.size() > 5 ? 0 : std::atoi(port.c_str());
  if (target.port < 1 || target.port > 65535) {
    return std::unexpected(Denied(url_name + ": port must be within 1..65535"));
  }
  ASSIGN_OR_RETURN(target.host, CanonicalHost(parsed.get(), text, s, target.literal));
  // A forbidden literal is refused as such, before any allowlist: that is the better reason.
  if (target.literal && IsForbidden(Classify(*target.literal))) {
    return std::unexpected(Denied(std::string(s.noun) + " host " + target.host + " is " +
                                  AnAddress(Classify(*target.literal)) + ", which " +
                                  std::string(s.plural) + " never reach"));
  }
  if (IsMetadataHostName(target.host)) {
    return std::unexpected(Denied(std::string(s.noun) + " url host " + target.host +
                                  " is a cloud metadata service, which " + std::string(s.plural) +
                                  " never reach"));
  }
  // The transfer gets the url with the host exactly as checked, so that libcurl connects to
  // the name (and the addresses) this check saw.
  curl_url_set(parsed.get(), CURLUPART_HOST, target.UrlHost().c_str(), 0);
  curl_url_set(parsed.get(), CURLUPART_FRAGMENT, nullptr, 0);
  target.url = Part(parsed.get(), CURLUPART_URL);
  if (target.url.empty()) return Fail(ErrorCode::kInternal, "cannot rebuild " + url_name);
  return target;
}

Status CheckAddress(const Target& target, const IpAddress& address, const AddressPolicy& policy,
                    Sender s, bool internal_allowed, std::string_view why_not_internal) {
  AddressClass c = Classify(address);
  if (c == AddressClass::kPublic) return Ok();
  std::string noun(s.noun);
  std::string what = (target.literal ? noun + " host " + address.ToString()
                                     : noun + " host " + target.host + " resolves to " +
                                           address.ToString() + ", which") +
                     " is " + AnAddress(c);
  if (IsForbidden(c)) {
    return std::unexpected(Denied(what + ", which " + std::string(s.plural) + " never reach"));
  }
  if (policy.deny_private) {
    return std::unexpected(Denied(what + ", refused by SYNAPS_TOOLS_DENY_PRIVATE"));
  }
  if (!internal_allowed) return std::unexpected(Denied(what + std::string(why_not_internal)));
  return Ok();
}

std::optional<IpAddress> AddressOf(const sockaddr* address) {
  IpAddress out;
  if (address->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    std::memcpy(out.bytes.data(), &in->sin_addr, 4);
    return out;
  }
  if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    out.v6 = true;
    std::memcpy(out.bytes.data(), &in6->sin6_addr, 16);
    return out;
  }
  return std::nullopt;
}

}  // namespace synaps::net
