// Address parsing and classification for the outbound policy (net/url_policy.h).
#include "net/address.h"

#include <gtest/gtest.h>

namespace synaps::net {
namespace {

AddressClass ClassOf(const std::string& text) {
  auto address = ParseIpAddress(text);
  EXPECT_TRUE(address) << text;
  return address ? Classify(*address) : AddressClass::kPublic;
}

TEST(ParseIpAddressTest, TakesCanonicalForms) {
  auto v4 = ParseIpAddress("10.1.2.3");
  ASSERT_TRUE(v4);
  EXPECT_FALSE(v4->v6);
  EXPECT_EQ(v4->ToString(), "10.1.2.3");
  auto v6 = ParseIpAddress("FE80:0:0::1");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->v6);
  EXPECT_EQ(v6->ToString(), "fe80::1");
  EXPECT_EQ(ParseIpAddress("::ffff:a9fe:a9fe")->ToString(), "::ffff:169.254.169.254");
}

TEST(ParseIpAddressTest, RefusesTheOtherIpv4FormsUrlParsersAccept) {
  for (const char* text : {"2852039166", "0xA9FEA9FE", "0xa9.0xfe.0xa9.0xfe", "0251.0376.0251.0376",
                           "169.254.43518", "169.16689662", "127.1", "010.0.0.1", "1.2.3.4.5",
                           "[::1]", "fe80::1%eth0", "", "localhost", " 10.0.0.1"}) {
    EXPECT_FALSE(ParseIpAddress(text)) << text;
  }
}

TEST(EndsInNumberTest, FollowsTheUrlStandard) {
  for (const char* host : {"2852039166", "0xa9fea9fe", "0XA9FEA9FE", "169.254.43518", "foo.0x1",
                           "1.2.3.4.", "example.123", "0x"}) {
    EXPECT_TRUE(EndsInNumber(host)) << host;
  }
  for (const char* host : {"example.com", "123.example", "a1", "0xg1", "api.v2", ""}) {
    EXPECT_FALSE(EndsInNumber(host)) << host;
  }
}

TEST(ClassifyTest, Ipv4) {
  EXPECT_EQ(ClassOf("8.8.8.8"), AddressClass::kPublic);
  EXPECT_EQ(ClassOf("172.32.0.1"), AddressClass::kPublic);
  EXPECT_EQ(ClassOf("100.128.0.1"), AddressClass::kPublic);
  EXPECT_EQ(ClassOf("127.0.0.1"), AddressClass::kLoopback);
  EXPECT_EQ(ClassOf("127.255.0.9"), AddressClass::kLoopback);
  EXPECT_EQ(ClassOf("10.0.0.1"), AddressClass::kPrivate);
  EXPECT_EQ(ClassOf("172.16.0.1"), AddressClass::kPrivate);
  EXPECT_EQ(ClassOf("172.31.255.255"), AddressClass::kPrivate);
  EXPECT_EQ(ClassOf("192.168.1.1"), AddressClass::kPrivate);
  EXPECT_EQ(ClassOf("100.64.0.1"), AddressClass::kPrivate);
  EXPECT_EQ(ClassOf("169.254.169.254"), AddressClass::kMetadata);
  EXPECT_EQ(ClassOf("100.100.100.200"), AddressClass::kMetadata);
  EXPECT_EQ(ClassOf("169.254.0.1"), AddressClass::kLinkLocal);
  EXPECT_EQ(ClassOf("0.0.0.0"), AddressClass::kUnspecified);
  EXPECT_EQ(ClassOf("0.1.2.3"), AddressClass::kUnspecified);
  EXPECT_EQ(ClassOf("224.0.0.1"), AddressClass::kMulticast);
  EXPECT_EQ(ClassOf("239.255.255.250"), AddressClass::kMulticast);
  EXPECT_EQ(ClassOf("255.255.255.255"), AddressClass::kBroadcast);
  EXPECT_EQ(ClassOf("240.0.0.1"), AddressClass::kReserved);
}

TEST(ClassifyTest, Ipv6) {
  EXPECT_EQ(ClassOf("2606:4700::1111"), AddressClass::kPublic);
  EXPECT_EQ(ClassOf("::1"), AddressClass::kLoopback);
  EXPECT_EQ(ClassOf("::"), AddressClass::kUnspecified);
  EXPECT_EQ(ClassOf("fe80::1"), AddressClass::kLinkLocal);
  EXPECT_EQ(ClassOf("febf::1"), AddressClass::kLinkLocal);
  EXPECT_EQ(ClassOf("fec0::1"), AddressClass::kPrivate);
  EXPECT_EQ(ClassOf("fd12:3456::1"), AddressClass::kPrivate);
  EXPECT_EQ(ClassOf("fc00::1"), AddressClass::kPrivate);
  EXPECT_EQ(ClassOf("fd00:ec2::254"), AddressClass::kMetadata);
  EXPECT_EQ(ClassOf("ff02::1"), AddressClass::kMulticast);
}

TEST(ClassifyTest, Ipv6FormsCarryingIpv4AreClassedByTheirIpv4) {
  EXPECT_EQ(ClassOf("::ffff:169.254.169.254"), AddressClass::kMetadata);
  EXPECT_EQ(ClassOf("::ffff:a9fe:a9fe"), AddressClass::kMetadata);
  EXPECT_EQ(ClassOf("::ffff:127.0.0.1"), AddressClass::kLoopback);
  EXPECT_EQ(ClassOf("::ffff:10.0.0.1"), AddressClass::kPrivate);
  EXPECT_EQ(ClassOf("::ffff:0.0.0.0"), AddressClass::kUnspecified);
  EXPECT_EQ(ClassOf("::ffff:8.8.8.8"), AddressClass::kPublic);
  EXPECT_EQ(ClassOf("::169.254.169.254"), AddressClass::kMetadata);  // IPv4-compatible
  EXPECT_EQ(ClassOf("::127.0.0.2"), AddressClass::kLoopback);
  EXPECT_EQ(ClassOf("64:ff9b::169.254.169.254"), AddressClass::kMetadata);  // NAT64
  EXPECT_EQ(ClassOf("64:ff9b::8.8.8.8"), AddressClass::kPublic);
  EXPECT_EQ(ClassOf("2002:a9fe:a9fe::1"), AddressClass::kMetadata);  // 6to4
  EXPECT_EQ(ClassOf("2002:0a00:0001::1"), AddressClass::kPrivate);
  EXPECT_EQ(ClassOf("2002:0808:0808::1"), AddressClass::kPublic);
}

TEST(ClassifyTest, ForbiddenAndInternal) {
  EXPECT_TRUE(IsInternal(AddressClass::kLoopback));
  EXPECT_TRUE(IsInternal(AddressClass::kPrivate));
  EXPECT_FALSE(IsForbidden(AddressClass::kPublic));
  EXPECT_FALSE(IsForbidden(AddressClass::kPrivate));
  for (AddressClass c : {AddressClass::kLinkLocal, AddressClass::kMetadata,
                         AddressClass::kUnspecified, AddressClass::kMulticast,
                         AddressClass::kBroadcast, AddressClass::kReserved}) {
    EXPECT_TRUE(IsForbidden(c)) << AddressClassName(c);
    EXPECT_FALSE(IsInternal(c)) << AddressClassName(c);
  }
}

}  // namespace
}  // namespace synaps::net
