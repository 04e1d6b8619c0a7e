// S3ObjectStore against a real S3-compatible server (s3rver, started by the fixture): the
// operations as a user relies on them, in both addressing styles, multipart uploads, idempotent
// retries, and the store going away and coming back.
#include "objstore/s3_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "core/ids.h"
#include "support/s3_server.h"

namespace synaps::objstore {
namespace {

using testing::S3Server;

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

class S3rverTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    server_ = S3Server::Shared();
    ASSERT_NE(server_, nullptr);
    bucket_ = "test-" + RandomHex(6);
    ASSERT_TRUE(server_->CreateBucket(bucket_));
  }
  std::unique_ptr<S3ObjectStore> Store(size_t multipart_threshold = 8u << 20,
                                       size_t part_size = 8u << 20) {
    S3Options o = server_->StoreOptions(bucket_, /*path_style=*/GetParam());
    o.multipart_threshold = multipart_threshold;
    o.part_size = part_size;
    return std::make_unique<S3ObjectStore>(o);
  }

  S3Server* server_ = nullptr;
  std::string bucket_;
};

TEST_P(S3rverTest, PutGetExistsListDelete) {
  auto store = Store();
  std::string text = "# Answer\n\nHello from Synaps.\n";
  std::string key = ContentKey(Sha256Hex(text));
  ASSERT_FALSE(store->Exists(key).value());
  auto before = std::chrono::system_clock::now() - std::chrono::seconds(5);
  auto put = store->Put(key, text, "text/markdown");
  ASSERT_TRUE(put) << put.error().message;

  auto got = store->Get(key);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(*got, text);
  EXPECT_TRUE(store->Exists(key).value());

  ASSERT_TRUE(store->Put("other/not-content", "x", "text/plain"));
  auto listed = store->List("objects/");
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].key, key);
  EXPECT_EQ((*listed)[0].size, static_cast<int64_t>(text.size()));
  EXPECT_GT((*listed)[0].last_modified, before);
  EXPECT_LT((*listed)[0].last_modified, std::chrono::system_clock::now() + std::chrono::seconds(5));

  ASSERT_TRUE(store->Delete(key));
  EXPECT_FALSE(store->Exists(key).value());
  auto gone = store->Get(key);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(store->Delete(key));  // deleting again is fine
  EXPECT_EQ(store->List("objects/").value().size(), 0u);
}

// GetAtMost takes an object up to its cap and refuses a larger one; past the room kept for an
// error body the transfer itself is cut off (max_body), not received whole.
TEST_P(S3rverTest, GetAtMostTakesObjectsUpToTheCapAndRefusesLarger) {
  auto store = Store();
  const std::string small(1000, 's'), big(300 * 1024, 'b');
  ASSERT_TRUE(store->Put("archives/small.json", small, "application/json"));
  ASSERT_TRUE(store->Put("archives/big.json", big, "application/json"));
  EXPECT_EQ(store->GetAtMost("archives/small.json", small.size()).value_or(""), small);
  EXPECT_EQ(store->GetAtMost("archives/big.json", big.size()).value_or(""), big);
  for (auto [key, cap] : {std::pair<std::string, uint64_t>{"archives/small.json", 999},
                          {"archives/big.json", 100 * 1024}}) {
    auto refused = store->GetAtMost(key, cap);
    ASSERT_FALSE(refused) << key;
    EXPECT_EQ(refused.error().code, ErrorCode::kResourceExhausted) << refused.error().message;
    EXPECT_NE(refused.error().message.find(key), std::string::npos) << refused.error().message;
  }
  EXPECT_EQ(store->GetAtMost("archives/absent.json", 10).error().code, ErrorCode::kNotFound);
}

TEST_P(S3rverTest, KeysWithSpecialCharactersRoundTrip) {
  auto store = Store();
  const std::string key = "objects/odd/a b+c$d&e=f%g~h_(i).txt";
  ASSERT_TRUE(store->Put(key, "odd", "text/plain"));
  EXPECT_EQ(store->Get(key).value_or(""), "odd");
  auto listed = store->List("objects/odd/");
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].key, key);
}

TEST_P(S3rverTest, EmptyObject) {
  auto store = Store();
  ASSERT_TRUE(store->Put("objects/empty", "", "text/plain"));
  auto got = store->Get("objects/empty");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(*got, "");
}

TEST_P(S3rverTest, MultipartUploadOfTwentyMebibytes) {
  auto store = Store(/*multipart_threshold=*/5u << 20, /*part_size=*/5u << 20);
  std::string data = RandomBytes(20u << 20, 42);
  std::string key = ContentKey(Sha256Hex(data));
  auto put = store->Put(key, data, "application/octet-stream");
  ASSERT_TRUE(put) << put.error().message;
  auto got = store->Get(key);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->size(), data.size());
  EXPECT_TRUE(*got == data);
  auto listed = store->List(key);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].size, static_cast<int64_t>(data.size()));
}

TEST_P(S3rverTest, MultipartWithSmallPartsAndAShortLastOne) {
  auto store = Store(/*multipart_threshold=*/64u << 10, /*part_size=*/100000);
  std::string data = RandomBytes(1000001, 7);  // 10 full parts and 1 byte
  ASSERT_TRUE(store->Put("objects/parts", data, "application/octet-stream"));
  EXPECT_TRUE(store->Get("objects/parts").value() == data);
}

TEST_P(S3rverTest, RetriedPutOfTheSameContentIsIdempotent) {
  auto store = Store(/*multipart_threshold=*/1u << 20, /*part_size=*/1u << 20);
  for (size_t size : {size_t{1000}, size_t{3u << 20}}) {
    std::string data = RandomBytes(size, size);
    std::string key = ContentKey(Sha256Hex(data));
    // A worker that lost the reply of its first upload uploads again, maybe from another
    // process: the key is the same, so is the object.
    ASSERT_TRUE(store->Put(key, data, "application/octet-stream"));
    ASSERT_TRUE(store->Put(key, data, "application/octet-stream"));
    auto other = Store(1u << 20, 1u << 20);
    ASSERT_TRUE(other->Put(key, data, "application/octet-stream"));
    EXPECT_TRUE(store->Get(key).value() == data);
  }
  auto listed = store->List("objects/");
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->size(), 2u);
}

TEST_P(S3rverTest, ListPagesThroughContinuationTokens) {
  S3Options o = server_->StoreOptions(bucket_, GetParam());
  o.list_page_size = 3;
  S3ObjectStore store(o);
  std::set<std::string> keys;
  for (int i = 0; i < 10; ++i) {
    std::string key = "objects/page/" + std::to_string(i);
    ASSERT_TRUE(store.Put(key, std::to_string(i), "text/plain"));
    keys.insert(key);
  }
  ASSERT_TRUE(store.Put("objectsX/not-under-prefix", "x", "text/plain"));
  auto listed = store.List("objects/");
  ASSERT_TRUE(listed) << listed.error().message;
  std::set<std::string> got;
  for (const auto& info : *listed) got.insert(info.key);
  EXPECT_EQ(got, keys);
  EXPECT_EQ(listed->size(), 10u);
}

TEST_P(S3rverTest, ConcurrentPutsFromManyThreads) {
  auto store = Store();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        std::string data = "t" + std::to_string(t) + "i" + std::to_string(i);
        if (!store->Put(ContentKey(Sha256Hex(data)), data, "text/plain")) ++failures;
        if (store->Get(ContentKey(Sha256Hex(data))).value_or("") != data) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store->List("objects/").value().size(), 80u);
}

INSTANTIATE_TEST_SUITE_P(Addressing, S3rverTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "PathStyle" : "VirtualHost"; });

TEST(S3rverErrorsTest, UnknownAccessKeyIsPermissionDenied) {
  S3Server* server = S3Server::Shared();
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server->CreateBucket("errors-bucket"));
  S3Options o = server->StoreOptions("errors-bucket");
  o.access_key_id = "NOT-S3RVER";
  S3ObjectStore store(o);
  auto put = store.Put("objects/x", "x", "text/plain");
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, ErrorCode::kPermissionDenied);
  EXPECT_NE(put.error().message.find("InvalidAccessKeyId"), std::string::npos)
      << put.error().message;
}

TEST(S3rverErrorsTest, MissingBucketIsNotFound) {
  S3Server* server = S3Server::Shared();
  ASSERT_NE(server, nullptr);
  S3ObjectStore store(server->StoreOptions("no-such-bucket"));
  auto put = store.Put("objects/x", "x", "text/plain");
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, ErrorCode::kNotFound);
  EXPECT_NE(put.error().message.find("NoSuchBucket"), std::string::npos) << put.error().message;
}

TEST(S3rverErrorsTest, OpenObjectStoreFromTheEnvironment) {
  S3Server* server = S3Server::Shared();
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server->CreateBucket("env-bucket"));
  setenv("AWS_ACCESS_KEY_ID", S3Server::kAccessKey, 1);
  setenv("AWS_SECRET_ACCESS_KEY", S3Server::kSecretKey, 1);
  auto store = OpenObjectStore(server->StoreUrl("env-bucket"));
  ASSERT_TRUE(store->Put("objects/env", "from env", "text/plain"));
  EXPECT_EQ(store->Get("objects/env").value_or(""), "from env");
}

// Stops the shared server: keep this test last in the file (gtest runs them in order).
TEST(S3rverOutageTest, StoreDownIsUnavailableAndRecovers) {
  S3Server* server = S3Server::Shared();
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server->CreateBucket("outage-bucket"));
  S3Options o = server->StoreOptions("outage-bucket");
  o.max_attempts = 2;
  o.connect_timeout = std::chrono::milliseconds(500);
  S3ObjectStore store(o);
  ASSERT_TRUE(store.Put("objects/before", "kept", "text/plain"));
  server->Stop();
  auto put = store.Put("objects/during", "x", "text/plain");
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(put.error().retryable());
  ASSERT_TRUE(server->Restart());
  EXPECT_EQ(store.Get("objects/before").value_or(""), "kept");
  EXPECT_TRUE(store.Put("objects/during", "x", "text/plain"));
}

}  // namespace
}  // namespace synaps::objstore
