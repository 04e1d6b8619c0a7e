// FileObjectStore: atomic puts, listing with sizes and modification times, key rules.
#include "objstore/file_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace synaps::objstore {
namespace {

namespace fs = std::filesystem;

class FileStoreTest : public ::testing::Test {
 protected:
  FileStoreTest() {
    std::string tmpl = (fs::temp_directory_path() / "synaps-file-store-XXXXXX").string();
    root_ = mkdtemp(tmpl.data());
  }
  ~FileStoreTest() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(FileStoreTest, PutGetExistsDelete) {
  FileObjectStore store(root_);
  ASSERT_TRUE(store.Put("objects/sha256/ab/abc", "bytes", "text/plain"));
  EXPECT_EQ(store.Get("objects/sha256/ab/abc").value_or(""), "bytes");
  EXPECT_TRUE(store.Exists("objects/sha256/ab/abc").value_or(false));
  ASSERT_TRUE(store.Delete("objects/sha256/ab/abc"));
  EXPECT_FALSE(store.Exists("objects/sha256/ab/abc").value_or(true));
  EXPECT_EQ(store.Get("objects/sha256/ab/abc").error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(store.Delete("objects/sha256/ab/abc"));
}

TEST_F(FileStoreTest, GetAtMostTakesObjectsUpToTheCapAndRefusesLarger) {
  FileObjectStore store(root_);
  const std::string big(200 * 1024, 'b');  // several read buffers
  ASSERT_TRUE(store.Put("archives/m.json", big, "application/json"));
  EXPECT_EQ(store.GetAtMost("archives/m.json", big.size()).value_or(""), big);
  auto refused = store.GetAtMost("archives/m.json", big.size() - 1);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(refused.error().message.find("archives/m.json"), std::string::npos);
  EXPECT_EQ(store.GetAtMost("archives/absent.json", 10).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store.GetAtMost("../escape", 10).error().code, ErrorCode::kInvalidArgument);
}

TEST_F(FileStoreTest, ListReportsSizeAndTimeAndSkipsTemporaries) {
  FileObjectStore store(root_);
  auto before = std::chrono::system_clock::now() - std::chrono::seconds(2);
  ASSERT_TRUE(store.Put("objects/a/1", "12345", "text/plain"));
  ASSERT_TRUE(store.Put("objects/b/2", "1", "text/plain"));
  ASSERT_TRUE(store.Put("other/3", "1", "text/plain"));
  std::ofstream(root_ / "objects/a/1.tmp-abc") << "partial";
  auto listed = store.List("objects/");
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->size(), 2u);
  for (const auto& info : *listed) {
    EXPECT_TRUE(info.key == "objects/a/1" || info.key == "objects/b/2") << info.key;
    EXPECT_EQ(info.size, info.key == "objects/a/1" ? 5 : 1);
    EXPECT_GT(info.last_modified, before);
    EXPECT_LT(info.last_modified, std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  EXPECT_EQ(store.List("objects/a/").value().size(), 1u);
  EXPECT_EQ(store.List("").value().size(), 3u);
  EXPECT_TRUE(store.List("nothing/here/").value().empty());
}

TEST_F(FileStoreTest, PutOfAnExistingKeyRefreshesItsTime) {
  FileObjectStore store(root_);
  ASSERT_TRUE(store.Put("objects/x", "same", "text/plain"));
  fs::last_write_time(root_ / "objects/x",
                      fs::file_time_type::clock::now() - std::chrono::hours(5));
  auto old = store.List("objects/").value().at(0).last_modified;
  ASSERT_TRUE(store.Put("objects/x", "same", "text/plain"));
  auto fresh = store.List("objects/").value().at(0).last_modified;
  EXPECT_GT(fresh - old, std::chrono::hours(4));
}

TEST_F(FileStoreTest, AHeldContentObjectIsNotRewrittenButRefreshed) {
  FileObjectStore store(root_);
  const std::string key = "objects/sha256/ab/abcd";
  ASSERT_TRUE(store.Put(key, "same bytes", "text/plain"));
  auto inode = [&](const std::string& k) {
    struct stat st {};
    EXPECT_EQ(stat((root_ / k).c_str(), &st), 0);
    return st.st_ino;
  };
  auto first = inode(key);
  fs::last_write_time(root_ / key, fs::file_time_type::clock::now() - std::chrono::hours(5));
  ASSERT_TRUE(store.Put(key, "same bytes", "text/plain"));
  EXPECT_EQ(inode(key), first) << "not written again (a rewrite renames a new file in)";
  EXPECT_GT(fs::last_write_time(root_ / key),
            fs::file_time_type::clock::now() - std::chrono::minutes(1));
  EXPECT_EQ(store.Get(key).value_or(""), "same bytes");
  // Other keys, and a content key whose file is not what it should be, are written.
  ASSERT_TRUE(store.Put("other/x", "a", "text/plain"));
  auto other = inode("other/x");
  ASSERT_TRUE(store.Put("other/x", "a", "text/plain"));
  EXPECT_NE(inode("other/x"), other);
  std::ofstream(root_ / key, std::ios::trunc) << "cut";
  ASSERT_TRUE(store.Put(key, "same bytes", "text/plain"));
  EXPECT_EQ(store.Get(key).value_or(""), "same bytes");
}

TEST_F(FileStoreTest, RefusesKeysThatEscapeTheRoot) {
  FileObjectStore store(root_);
  for (std::string key : {"", "/etc/passwd", "../x", "a/../../x"}) {
    auto put = store.Put(key, "x", "text/plain");
    ASSERT_FALSE(put) << key;
    EXPECT_EQ(put.error().code, ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace synaps::objstore
