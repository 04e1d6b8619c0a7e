#include "core/ids.h"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <thread>

namespace synaps {
namespace {

TEST(IdsTest, NewUuidIsCanonicalVersion4AndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewUuid();
    ASSERT_TRUE(IsUuid(id)) << id;
    EXPECT_EQ(id[14], '4');
    EXPECT_TRUE(seen.insert(id).second);
  }
}

TEST(IdsTest, IsUuidRejectsMalformed) {
  EXPECT_FALSE(IsUuid(""));
  EXPECT_FALSE(IsUuid("not-a-uuid"));
  EXPECT_FALSE(IsUuid("0123456789abcdef0123456789abcdef0123"));
  EXPECT_FALSE(IsUuid("0123456g-89ab-cdef-0123-456789abcdef"));
  EXPECT_TRUE(IsUuid("0123456F-89ab-cdef-0123-456789abcdef"));
}

TEST(IdsTest, Sha256MatchesKnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(IdsTest, SecureEquals) {
  EXPECT_TRUE(SecureEquals("secret", "secret"));
  EXPECT_FALSE(SecureEquals("secret", "secreT"));
  EXPECT_FALSE(SecureEquals("secret", "secret2"));
}

// Pooled ids: hex of the asked length, distinct across refills of the 4 KiB pool and across
// threads (each thread has its own pool of the CSPRNG's output).
TEST(IdsTest, PooledRandomHexIsHexOfTheLengthAndDoesNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {  // 2000 × 8 bytes: four refills
    std::string id = PooledRandomHex(8);
    ASSERT_EQ(id.size(), 16u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    EXPECT_TRUE(seen.insert(id).second) << id;
  }
  std::string other;
  std::thread t([&] { other = PooledRandomHex(16); });
  t.join();
  EXPECT_EQ(other.size(), 32u);
  EXPECT_NE(other, PooledRandomHex(16));
  EXPECT_THROW(PooledRandomHex(65), std::invalid_argument);
}

}  // namespace
}  // namespace synaps
