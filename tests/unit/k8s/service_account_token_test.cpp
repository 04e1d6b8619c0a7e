#include "k8s/service_account_token.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace synaps::k8s {
namespace {

namespace fs = std::filesystem;

class ServiceAccountTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base = fs::temp_directory_path() / "synaps-k8s-token-XXXXXX";
    ASSERT_NE(mkdtemp(base.data()), nullptr);
    dir = base;
  }
  void TearDown() override { fs::remove_all(dir); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name, std::ios::trunc) << text;
  }

  std::string dir;
};

TEST_F(ServiceAccountTokenTest, ReadsOnceWhileTheFileIsUnchanged) {
  Write("token", "  first-token\n");
  ServiceAccountToken token(dir + "/token");
  for (int i = 0; i < 3; ++i) {
    auto t = token.Current();
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(*t, "first-token");
  }
  EXPECT_EQ(token.reads(), 1);
}

TEST_F(ServiceAccountTokenTest, PicksUpAFileReplacedByRename) {
  Write("token", "first-token");
  ServiceAccountToken token(dir + "/token");
  ASSERT_EQ(token.Current().value_or(""), "first-token");
  Write("token.new", "second-token");
  fs::rename(dir + "/token.new", dir + "/token");
  EXPECT_EQ(token.Current().value_or(""), "second-token");
  EXPECT_EQ(token.reads(), 2);
}

TEST_F(ServiceAccountTokenTest, PicksUpAKubeletStyleSymlinkSwap) {
  fs::create_directory(dir + "/..gen1");
  std::ofstream(dir + "/..gen1/token") << "gen1-token";
  fs::create_symlink("..gen1", dir + "/..data");
  fs::create_symlink("..data/token", dir + "/token");
  ServiceAccountToken token(dir + "/token");
  ASSERT_EQ(token.Current().value_or(""), "gen1-token");

  fs::create_directory(dir + "/..gen2");
  std::ofstream(dir + "/..gen2/token") << "gen2-token";  // same size as before
  fs::create_symlink("..gen2", dir + "/..data_tmp");
  fs::rename(dir + "/..data_tmp", dir + "/..data");
  fs::remove_all(dir + "/..gen1");
  EXPECT_EQ(token.Current().value_or(""), "gen2-token");
}

TEST_F(ServiceAccountTokenTest, PicksUpAFileRewrittenInPlace) {
  Write("token", "aaaa");
  ServiceAccountToken token(dir + "/token");
  ASSERT_EQ(token.Current().value_or(""), "aaaa");
  Write("token", "bbbb");  // same size and inode; the modification time differs
  auto later = fs::file_time_type::clock::now() + std::chrono::seconds(1);
  fs::last_write_time(dir + "/token", later);
  EXPECT_EQ(token.Current().value_or(""), "bbbb");
}

TEST_F(ServiceAccountTokenTest, MissingOrEmptyIsUnauthenticated) {
  ServiceAccountToken missing(dir + "/token");
  auto t = missing.Current();
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::kUnauthenticated);
  EXPECT_NE(t.error().message.find(dir + "/token"), std::string::npos);

  Write("token", " \n");
  ServiceAccountToken empty(dir + "/token");
  t = empty.Current();
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::kUnauthenticated);
  EXPECT_NE(t.error().message.find("is empty"), std::string::npos);
}

TEST_F(ServiceAccountTokenTest, ATokenRemovedAfterAGoodReadIsAnError) {
  Write("token", "good");
  ServiceAccountToken token(dir + "/token");
  ASSERT_TRUE(token.Current());
  fs::remove(dir + "/token");
  EXPECT_FALSE(token.Current());
}

}  // namespace
}  // namespace synaps::k8s
