// Reading archived runs (docs/storage.md, "Archives") against a real PostgreSQL and s3rver: one
// run of a multi-run segment is read by fetching only its gzip member (an HTTP Range GET) and
// checking it against the checksum PostgreSQL recorded; damaged, cut and oversized members are
// refused with errors that say so; segments are bounded in bytes; archives written before
// migration 0044 (no member in the record) are still read, whole, under the same inflate cap.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "db/connection.h"
#include "history/archive.h"
#include "history/gzip.h"
#include "objstore/s3_store.h"
#include "store/archive_store.h"
#include "support/s3_server.h"
#include "support/test_stack.h"

namespace synaps::history {
namespace {

using nlohmann::json;

// Passes every call to the store it wraps, counting what reads fetch.
class CountingStore final : public objstore::ObjectStore {
 public:
  explicit CountingStore(objstore::ObjectStore* inner) : inner_(inner) {}
  Status Put(const std::string& key, const std::string& data,
             const std::string& content_type) override {
    return inner_->Put(key, data, content_type);
  }
  Result<std::string> Get(const std::string& key) override {
    auto got = inner_->Get(key);
    if (got) ++gets, fetched += got->size();
    return got;
  }
  Result<std::string> GetAtMost(const std::string& key, uint64_t max_bytes) override {
    auto got = inner_->GetAtMost(key, max_bytes);
    if (got) ++gets, fetched += got->size();
    return got;
  }
  Result<std::string> GetRange(const std::string& key, uint64_t offset, uint64_t length) override {
    auto got = inner_->GetRange(key, offset, length);
    if (got) ++ranges, fetched += got->size();
    return got;
  }
  Result<bool> Exists(const std::string& key) override { return inner_->Exists(key); }
  Result<std::vector<objstore::ObjectInfo>> List(const std::string& prefix) override {
    return inner_->List(prefix);
  }
  Status Delete(const std::string& key) override { return inner_->Delete(key); }
  std::string Describe() const override { return inner_->Describe(); }

  void Reset() { gets = ranges = 0, fetched = 0; }
  int gets = 0, ranges = 0;
  size_t fetched = 0;

 private:
  objstore::ObjectStore* const inner_;
};

class ArchiveReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = db::Connection::Connect(testing::TestStack::Get().FreshDatabase());
    ASSERT_TRUE(c) << c.error().message;
    conn_ = std::move(*c);
    testing::S3Server* server = testing::S3Server::Shared();
    ASSERT_NE(server, nullptr);
    const std::string bucket = "archive-read-" + RandomHex(6);
    ASSERT_TRUE(server->CreateBucket(bucket));
    s3_ = std::make_unique<objstore::S3ObjectStore>(server->StoreOptions(bucket));
    store_ = std::make_unique<CountingStore>(s3_.get());
  }

  db::PgResult Exec(const std::string& sql, const db::Params& params = {}) {
    auto r = conn_.Exec(sql, params);
    EXPECT_TRUE(r) << sql << ": " << r.error().message;
    return r ? std::move(*r) : db::PgResult();
  }

  // A finished one-task run of tenant "a" whose answer is `text`.
  std::string Run(const std::string& key, const std::string& text) {
    std::string run =
        Exec(
            "SELECT synaps.submit_command('a', 'me', $1, 'h', jsonb_build_object('kind', 'prompt',"
            " 'payload', '{}'::jsonb, 'tasks', "
            "'[{\"name\":\"only\",\"kind\":\"prompt\",\"spec\":{}}]'"
            "::jsonb))->>'runId'",
            {key})
            .GetString(0, 0);
    auto states = Exec(
        "WITH c AS (SELECT item_id, lease_epoch"
        "             FROM synaps.claim_queue_items('w', ARRAY['default'], 1, 60, 'a'))"
        " SELECT synaps.write_task_batch('{}', '{}', '{}', '{}', '{}', '{}', '{}',"
        "   ARRAY[c.item_id], ARRAY[c.lease_epoch], ARRAY[false],"
        "   jsonb_build_array(jsonb_build_object('text', $1::text)), '[[]]'::jsonb)"
        "   FROM c",
        {text});
    EXPECT_EQ(states.GetString(0, 0), "completed") << key;
    return run;
  }

  // The run's story as PostgreSQL renders it now (the line an archive of it holds).
  std::string StoryText(const std::string& run) {
    auto stories = store::LoadRunStories(conn_, "a", {run});
    EXPECT_TRUE(stories) << stories.error().message;
    return stories ? (*stories)[0].json : "";
  }
  json Story(const std::string& run) { return json::parse(StoryText(run)); }

  Result<ArchiveResult> Archive(const std::vector<std::string>& runs,
                                size_t max_segment_bytes = kMaxSegmentBytes,
                                size_t stories_per_read = 16) {
    const std::string day = Exec("SELECT (now() AT TIME ZONE 'UTC')::date::text").GetString(0, 0);
    return ArchiveRuns(conn_, *store_, {"a", day, runs, max_segment_bytes, stories_per_read});
  }

  // The archived run as read, without the "archive" block the reader adds.
  json Read(const std::string& run, size_t max_bytes = kMaxReadRunBytes) {
    auto read = ReadArchivedRun(conn_, *store_, "a", run, max_bytes);
    EXPECT_TRUE(read) << read.error().message;
    if (!read) return json();
    read->erase("archive");
    return *read;
  }

  db::Connection conn_;
  std::unique_ptr<objstore::S3ObjectStore> s3_;
  std::unique_ptr<CountingStore> store_;
};

TEST_F(ArchiveReadTest, OneRunOfAMultiRunSegmentIsReadFromItsMemberOnly) {
  std::vector<std::string> runs;
  std::vector<json> before;
  for (int i = 0; i < 3; ++i) {
    runs.push_back(Run("r" + std::to_string(i), std::string(3000 * (i + 1), 'a' + i)));
    before.push_back(Story(runs.back()));
  }
  auto made = Archive(runs);
  ASSERT_TRUE(made) << made.error().message;
  EXPECT_EQ(made->segments, 1);
  EXPECT_EQ(made->runs, 3);
  size_t largest = 0;
  for (const auto& run : runs) largest = std::max(largest, StoryText(run).size());

  for (size_t i = 0; i < runs.size(); ++i) {
    auto member =
        Exec("SELECT data_offset, data_length FROM synaps.archived_runs WHERE run_id = $1::uuid",
             {runs[i]});
    const int64_t length = member.GetInt(0, 1);
    store_->Reset();
    // The cap is below the segment's size: only the member is inflated.
    EXPECT_EQ(Read(runs[i], largest + 64), before[i]) << "run " << i;
    EXPECT_EQ(store_->gets, 0);
    EXPECT_EQ(store_->ranges, 1);
    EXPECT_EQ(store_->fetched, static_cast<size_t>(length));
    EXPECT_LT(length, made->bytes);
  }
  // The manifest names each member with its checksum too, for readers without PostgreSQL.
  json manifest = json::parse(*s3_->Get(made->manifest_key));
  ASSERT_EQ(manifest["runs"].size(), 3u);
  EXPECT_EQ(manifest["runs"][1]["sha256"].get<std::string>().size(), 64u);
}

TEST_F(ArchiveReadTest, DamagedCutAndOversizedMembersAreRefusedClearly) {
  const std::string big = Run("big", std::string(1 << 20, 'z'));  // 1 MiB that packs to ~1 KiB
  const std::string small = Run("small", "a small answer");
  auto made = Archive({big, small});
  ASSERT_TRUE(made) << made.error().message;

  // Inflating stops at the cap: nothing near the run's size is allocated.
  auto too_large = ReadArchivedRun(conn_, *store_, "a", big, 256 * 1024);
  ASSERT_FALSE(too_large);
  EXPECT_EQ(too_large.error().code, ErrorCode::kInternal);
  EXPECT_EQ(too_large.error().field, kArchiveTooLarge) << too_large.error().message;
  EXPECT_NE(too_large.error().message.find("more than 262144 bytes"), std::string::npos)
      << too_large.error().message;
  EXPECT_EQ(Read(small, 256 * 1024)["run"]["id"], small);
  EXPECT_EQ(Read(big)["run"]["id"], big);  // under the default cap it reads

  // A byte of the small run's member changed in the store: its checksum in PostgreSQL refuses it.
  auto member = Exec(
      "SELECT data_offset, data_length FROM synaps.archived_runs WHERE run_id = $1::uuid", {small});
  const int64_t offset = member.GetInt(0, 0), length = member.GetInt(0, 1);
  std::string data = *s3_->Get(made->data_key);
  data[offset + length / 2] ^= 0x01;
  ASSERT_TRUE(s3_->Put(made->data_key, data, "application/gzip"));
  auto damaged = ReadArchivedRun(conn_, *store_, "a", small);
  ASSERT_FALSE(damaged);
  EXPECT_EQ(damaged.error().field, kArchiveCorrupt) << damaged.error().message;
  EXPECT_NE(damaged.error().message.find("does not match the checksum PostgreSQL recorded"),
            std::string::npos)
      << damaged.error().message;

  // The object cut short before the member ends.
  ASSERT_TRUE(s3_->Put(made->data_key, data.substr(0, offset + length - 1), "application/gzip"));
  auto cut = ReadArchivedRun(conn_, *store_, "a", small);
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().field, kArchiveCorrupt) << cut.error().message;

  // Gone altogether.
  ASSERT_TRUE(s3_->Delete(made->data_key));
  auto gone = ReadArchivedRun(conn_, *store_, "a", small);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().field, kArchiveCorrupt) << gone.error().message;
}

TEST_F(ArchiveReadTest, SegmentsAreBoundedInBytes) {
  std::vector<std::string> runs;
  size_t story_bytes = 0;
  for (int i = 0; i < 4; ++i) {
    runs.push_back(Run("s" + std::to_string(i), std::string(2000, 'q')));
    story_bytes = std::max(story_bytes, StoryText(runs.back()).size() + 1);
  }
  // Room for two runs' lines: four runs make two segments, each read back on its own.
  auto made = Archive(runs, 2 * story_bytes + 10);
  ASSERT_TRUE(made) << made.error().message;
  EXPECT_EQ(made->segments, 2);
  EXPECT_EQ(made->runs, 4);
  EXPECT_FALSE(made->already_archived);
  EXPECT_EQ(Exec("SELECT count(*) FROM synaps.archives").GetInt(0, 0), 2);
  EXPECT_EQ(Exec("SELECT count(DISTINCT archive_id) FROM synaps.archived_runs").GetInt(0, 0), 2);
  for (const auto& run : runs) EXPECT_EQ(Read(run)["run"]["id"], run);
  // The same batch again finds every segment recorded and writes nothing.
  auto again = Archive(runs, 2 * story_bytes + 10);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->already_archived);
  EXPECT_EQ(again->segments, 2);
  EXPECT_EQ(again->data_key, made->data_key);
  // A run larger than the bound makes a segment of its own.
  auto alone = Archive({runs[0]}, 1);
  ASSERT_TRUE(alone) << alone.error().message;
  EXPECT_EQ(alone->segments, 1);
}

// Stories are loaded a few runs at a time, reads straddling segments, and the segments are the
// ones one read of every story makes; a batch with an unfinished run, or another tenant's, is
// refused before any of it is loaded or written.
TEST_F(ArchiveReadTest, StoriesAreLoadedAFewRunsAtATime) {
  std::vector<std::string> runs;
  size_t story_bytes = 0;
  for (int i = 0; i < 5; ++i) {
    runs.push_back(Run("r" + std::to_string(i), std::string(2000, 'r')));
    story_bytes = std::max(story_bytes, StoryText(runs.back()).size() + 1);
  }
  const std::string unfinished =
      Exec(
          "SELECT synaps.submit_command('a', 'me', 'open', 'h', jsonb_build_object('kind',"
          " 'prompt', 'payload', '{}'::jsonb, 'tasks',"
          " '[{\"name\":\"only\",\"kind\":\"prompt\",\"spec\":{}}]'::jsonb))->>'runId'")
          .GetString(0, 0);
  const std::string foreign =
      Exec(
          "SELECT synaps.submit_command('b', 'me', 'other', 'h', jsonb_build_object('kind',"
          " 'prompt', 'payload', '{}'::jsonb, 'tasks',"
          " '[{\"name\":\"only\",\"kind\":\"prompt\",\"spec\":{}}]'::jsonb))->>'runId'")
          .GetString(0, 0);
  std::vector<std::string> with_open = runs, with_foreign = runs;
  with_open.push_back(unfinished);
  with_foreign.push_back(foreign);
  auto open = Archive(with_open, 2 * story_bytes + 10, 2);
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().code, ErrorCode::kConflict) << open.error().message;
  auto other = Archive(with_foreign, 2 * story_bytes + 10, 2);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, ErrorCode::kNotFound) << other.error().message;
  EXPECT_EQ(Exec("SELECT count(*) FROM synaps.archives").GetInt(0, 0), 0);
  EXPECT_TRUE(s3_->List(kArchivePrefix).value().empty());

  // Room for two runs per segment, three stories per read: segments of 2, 2 and 1.
  auto made = Archive(runs, 2 * story_bytes + 10, 3);
  ASSERT_TRUE(made) << made.error().message;
  EXPECT_EQ(made->segments, 3);
  EXPECT_EQ(made->runs, 5);
  EXPECT_EQ(Exec("SELECT string_agg(runs::text, ',' ORDER BY id)"
                 "  FROM synaps.archives")
                .GetString(0, 0),
            "2,2,1");
  for (const auto& run : runs) EXPECT_EQ(Read(run), Story(run));
  // Read one story at a time, the same segments are found recorded.
  auto again = Archive(runs, 2 * story_bytes + 10, 1);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->already_archived);
  EXPECT_EQ(again->segments, 3);
}

TEST_F(ArchiveReadTest, ArchivesWithoutMemberRecordsAreReadWhole) {
  const std::string one = Run("old-1", std::string(5000, 'o'));
  const std::string two = Run("old-2", "second");
  const json before = Story(one);
  auto made = Archive({one, two});
  ASSERT_TRUE(made) << made.error().message;
  // As migration 0044 leaves the rows of older archives.
  Exec("UPDATE synaps.archived_runs SET data_offset = NULL, data_length = NULL, sha256 = NULL");
  store_->Reset();
  EXPECT_EQ(Read(one), before);
  EXPECT_EQ(store_->gets, 1);    // the manifest
  EXPECT_EQ(store_->ranges, 1);  // the whole data object, as many bytes as recorded
  EXPECT_GE(store_->fetched, static_cast<size_t>(made->bytes));
  // An object grown since (appended to by someone with write access to the bucket) is read up
  // to its recorded size only, and still checks.
  {
    std::string grown = *s3_->Get(made->data_key) + std::string(100000, 'x');
    ASSERT_TRUE(s3_->Put(made->data_key, grown, "application/gzip"));
    store_->Reset();
    EXPECT_EQ(Read(one), before);
    EXPECT_LT(store_->fetched, static_cast<size_t>(made->bytes) + 100000);
    ASSERT_TRUE(s3_->Put(made->data_key, grown.substr(0, made->bytes), "application/gzip"));
  }
  // A segment larger than four times the reader's cap is refused before any of it is fetched.
  store_->Reset();
  auto oversized = ReadArchivedRun(conn_, *store_, "a", two, made->bytes / 4 - 1);
  ASSERT_FALSE(oversized);
  EXPECT_EQ(oversized.error().field, kArchiveTooLarge) << oversized.error().message;
  EXPECT_EQ(store_->gets + store_->ranges, 0);
  // The same inflate cap applies.
  auto capped = ReadArchivedRun(conn_, *store_, "a", one, 1024);
  ASSERT_FALSE(capped);
  EXPECT_EQ(capped.error().field, kArchiveTooLarge) << capped.error().message;
  // And a damaged segment is refused by its recorded checksum.
  std::string data = *s3_->Get(made->data_key);
  data[data.size() / 2] ^= 0x01;
  ASSERT_TRUE(s3_->Put(made->data_key, data, "application/gzip"));
  auto damaged = ReadArchivedRun(conn_, *store_, "a", two);
  ASSERT_FALSE(damaged);
  EXPECT_EQ(damaged.error().field, kArchiveCorrupt) << damaged.error().message;
}

// The manifest is in the bucket, which others may write: one padded to the most a manifest may
// hold still reads, one a byte larger is refused as too large without being taken whole.
TEST_F(ArchiveReadTest, AManifestLargerThanItsCapIsRefused) {
  const std::string run = Run("manifest-1", "answer");
  const json before = Story(run);
  auto made = Archive({run});
  ASSERT_TRUE(made) << made.error().message;
  // Without the member record the reader goes through the manifest.
  Exec("UPDATE synaps.archived_runs SET data_offset = NULL, data_length = NULL, sha256 = NULL");
  std::string manifest = *s3_->Get(made->manifest_key);
  while (!manifest.empty() && manifest.back() == '\n') manifest.pop_back();
  const std::string at_cap = manifest + std::string(kMaxManifestBytes - manifest.size(), ' ');
  ASSERT_TRUE(s3_->Put(made->manifest_key, at_cap, "application/json"));
  EXPECT_EQ(Read(run), before);
  ASSERT_TRUE(s3_->Put(made->manifest_key, at_cap + " ", "application/json"));
  auto refused = ReadArchivedRun(conn_, *store_, "a", run, kMaxReadRunBytes);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().field, kArchiveTooLarge) << refused.error().message;
  EXPECT_TRUE(IsArchiveDataError(refused.error()));
  EXPECT_NE(refused.error().message.find(made->manifest_key), std::string::npos)
      << refused.error().message;
}

// Gunzip counts what it inflates and stops at the cap before growing past it; concatenated
// members read as one stream; cut and foreign input is refused.
TEST(GunzipTest, CapsCutsAndMembers) {
  const std::string two = GzipMember("hello ") + GzipMember("world\n");
  EXPECT_EQ(*Gunzip(two, 100), "hello world\n");
  auto capped = Gunzip(GzipMember(std::string(1 << 20, 'x')), 1000);
  ASSERT_FALSE(capped);
  EXPECT_EQ(capped.error().code, ErrorCode::kResourceExhausted);
  auto cut = Gunzip(two.substr(0, two.size() - 3), 100);
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(Gunzip("not gzip at all", 100));
}

}  // namespace
}  // namespace synaps::history
