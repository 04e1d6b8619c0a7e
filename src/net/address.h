// IP addresses as Synaps's outbound policy sees them (docs/security.md, "Outbound requests"):
// strict parsing of literals, and the class of an address, which decides whether an HTTP tool or
// a model provider may connect to it. Pure functions, no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace synaps::net {

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4: the first 4

  // "10.0.0.1", "::1", "::ffff:169.254.169.254" (no brackets).
  std::string ToString() const;
  bool operator==(const IpAddress&) const = default;
};

// Only the canonical forms: dotted-decimal IPv4 with four parts and no leading zeros, or an
// IPv6 address without brackets or zone id (inet_pton). The forms some URL parsers also take for
// IPv4 ("2852039166", "0xA9FEA9FE", "0251.0376.0251.0376", "169.254.43518") are nullopt here;
// see EndsInNumber.
std::optional<IpAddress> ParseIpAddress(std::string_view text);

// True when a URL parser following the WHATWG URL standard, or libcurl, reads `host` as an
// IPv4 number: its last label (after removing one trailing dot) is all decimal digits or 0x
// followed by hex digits. Such a host is either a canonical IPv4 literal or refused, never
// looked up as a name.
bool EndsInNumber(std::string_view host);

enum class AddressClass {
  kPublic,
  kLoopback,     // 127.0.0.0/8, ::1
  kPrivate,      // 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7, fec0::/10
  kLinkLocal,    // 169.254.0.0/16, fe80::/10
  kMetadata,     // 169.254.169.254, 100.100.100.200, fd00:ec2::254
  kUnspecified,  // 0.0.0.0/8, ::
  kMulticast,    // 224.0.0.0/4, ff00::/8
  kBroadcast,    // 255.255.255.255
  kReserved,     // 240.0.0.0/4
};

// "public", "loopback", "private", "link-local", "cloud metadata", ...
std::string_view AddressClassName(AddressClass c);

// The class of `address`. IPv6 forms that carry an IPv4 address are classed by that address:
// IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4
// (2002:aabb:ccdd::/48). So ::ffff:169.254.169.254 is kMetadata and ::ffff:10.0.0.1 kPrivate.
AddressClass Classify(const IpAddress& address);

// Loopback and private addresses: reachable only under the conditions of AddressPolicy
// (net/url_policy.h) and, for tools, of their allowHosts (tools/network_policy.h).
bool IsInternal(AddressClass c);
// Never reachable by a tool or a provider, whatever the allowlist or route says: link-local,
// metadata, unspecified, multicast, broadcast and reserved addresses.
bool IsForbidden(AddressClass c);

}  // namespace synaps::net
