#include "net/address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace synaps::net {

std::string IpAddress::ToString() const {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), text, sizeof text);
  return text;
}

std::optional<IpAddress> ParseIpAddress(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  IpAddress a;
  // glibc's inet_pton takes for IPv4 exactly four decimal parts without leading zeros.
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
  a.v6 = true;
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) return a;
  return std::nullopt;
}

bool EndsInNumber(std::string_view host) {
  if (host.ends_with('.')) host.remove_suffix(1);
  size_t dot = host.rfind('.');
  std::string_view last = dot == std::string_view::npos ? host : host.substr(dot + 1);
  if (last.empty()) return false;
  auto all_of = [](std::string_view s, auto pred) {
    return std::all_of(s.begin(), s.end(), [&](char c) { return pred(static_cast<unsigned char>(c)); });
  };
  if (all_of(last, [](unsigned char c) { return c >= '0' && c <= '9'; })) return true;
  if (last.size() >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X')) {
    return all_of(last.substr(2), [](unsigned char c) { return std::isxdigit(c) != 0; });
  }
  return false;
}

std::string_view AddressClassName(AddressClass c) {
  switch (c) {
    case AddressClass::kPublic: return "public";
    case AddressClass::kLoopback: return "loopback";
    case AddressClass::kPrivate: return "private";
    case AddressClass::kLinkLocal: return "link-local";
    case AddressClass::kMetadata: return "cloud metadata";
    case AddressClass::kUnspecified: return "unspecified";
    case AddressClass::kMulticast: return "multicast";
    case AddressClass::kBroadcast: return "broadcast";
    case AddressClass::kReserved: return "reserved";
  }
  return "unknown";
}

namespace {

AddressClass ClassifyV4(const uint8_t* b) {
  auto is = [&](uint8_t a0, uint8_t a1, uint8_t a2, uint8_t a3) {
    return b[0] == a0 && b[1] == a1 && b[2] == a2 && b[3] == a3;
  };
  if (is(169, 254, 169, 254) || is(100, 100, 100, 200)) return AddressClass::kMetadata;
  if (is(255, 255, 255, 255)) return AddressClass::kBroadcast;
  if (b[0] == 0) return AddressClass::kUnspecified;
  if (b[0] == 127) return AddressClass::kLoopback;
  if (b[0] == 169 && b[1] == 254) return AddressClass::kLinkLocal;
  if (b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) ||
      (b[0] == 100 && (b[1] & 0xc0) == 64)) {
    return AddressClass::kPrivate;
  }
  if ((b[0] & 0xf0) == 224) return AddressClass::kMulticast;
  if ((b[0] & 0xf0) == 240) return AddressClass::kReserved;
  return AddressClass::kPublic;
}

bool Zero(const uint8_t* b, size_t n) {
  return std::all_of(b, b + n, [](uint8_t x) { return x == 0; });
}

}  // namespace

AddressClass Classify(const IpAddress& address) {
  const uint8_t* b = address.bytes.data();
  if (!address.v6) return ClassifyV4(b);
  static constexpr std::array<uint8_t, 16> kAwsMetadata = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,    0,
                                                           0,    0,    0,    0,    0, 0, 0x02, 0x54};
  static constexpr std::array<uint8_t, 12> kNat64 = {0x00, 0x64, 0xff, 0x9b};
  if (address.bytes == kAwsMetadata) return AddressClass::kMetadata;
  if (Zero(b, 15)) return b[15] == 1 ? AddressClass::kLoopback : AddressClass::kUnspecified;
  if (Zero(b, 10) && b[10] == 0xff && b[11] == 0xff) return ClassifyV4(b + 12);  // mapped
  if (Zero(b, 12)) return ClassifyV4(b + 12);                                    // compatible
  if (std::equal(kNat64.begin(), kNat64.end(), b)) return ClassifyV4(b + 12);
  if (b[0] == 0x20 && b[1] == 0x02) {  // 6to4: the IPv4 address is bytes 2..5
    AddressClass embedded = ClassifyV4(b + 2);
    if (embedded != AddressClass::kPublic) return embedded;
  }
  if (b[0] == 0xff) return AddressClass::kMulticast;
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return AddressClass::kLinkLocal;
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return AddressClass::kPrivate;  // site-local
  if ((b[0] & 0xfe) == 0xfc) return AddressClass::kPrivate;                  // unique local
  return AddressClass::kPublic;
}

bool IsInternal(AddressClass c) {
  return c == AddressClass::kLoopback || c == AddressClass::kPrivate;
}

bool IsForbidden(AddressClass c) { return c != AddressClass::kPublic && !IsInternal(c); }

}  // namespace synaps::net
