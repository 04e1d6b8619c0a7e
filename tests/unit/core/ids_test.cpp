#include "core/ids.h"

#include <gtest/gtest.h>

#include <set>

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

}  // namespace
}  // namespace synaps
