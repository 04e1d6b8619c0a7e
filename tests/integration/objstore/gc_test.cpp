// `synaps gc` (the real binary) against a migrated PostgreSQL and both object stores: file and
// s3 (s3rver). Objects get into the store the way the worker puts them there — upload, then
// complete the queue item with an artifact row in one transaction — and a "crash" is a worker
// that uploaded and never committed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "core/process.h"
#include "objstore/file_store.h"
#include "objstore/s3_store.h"
#include "store/queue_store.h"
#include "store/run_store.h"
#include "support/s3_server.h"
#include "support/test_stack.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::S3Server;
using testing::TestStack;

enum class StoreKind { kFile, kS3 };

struct GcRun {
  int exit_code = -1;
  std::string output;
  json report;  // the last line, parsed, when it is JSON
};

class GcTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    database_url_ = TestStack::Get().FreshDatabase();
    auto conn = db::Connection::Connect(database_url_);
    ASSERT_TRUE(conn) << conn.error().message;
    conn_ = std::move(*conn);
    if (GetParam() == StoreKind::kFile) {
      std::string dir = TestStack::Get().TempDir("objects");
      store_url_ = "file://" + dir;
      objects_ = std::make_unique<objstore::FileObjectStore>(dir);
    } else {
      S3Server* server = S3Server::Shared();
      ASSERT_NE(server, nullptr);
      std::string bucket = "gc-" + RandomHex(6);
      ASSERT_TRUE(server->CreateBucket(bucket));
      store_url_ = server->StoreUrl(bucket);
      objects_ = std::make_unique<objstore::S3ObjectStore>(server->StoreOptions(bucket));
    }
  }

  // Submits a one-task command; returns nothing, the item waits in the queue.
  void Submit(const std::string& text) {
    store::SubmitRequest req;
    req.tenant_id = "t";
    req.actor = "test";
    req.request_hash = Sha256Hex(text);
    req.kind = "prompt";
    req.payload = {{"kind", "prompt"}, {"input", {{"text", text}}}};
    req.tasks = {{"main", "prompt", {{"input", {{"text", text}}}}, {}}};
    auto r = store::SubmitCommand(conn_, req);
    ASSERT_TRUE(r) << r.error().message;
  }

  store::ClaimedItem Claim(int lease_seconds = 60) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto items = store::ClaimQueueItems(conn_, "gc-test", {"default"}, 1, lease_seconds);
      EXPECT_TRUE(items) << items.error().message;
      if (items && !items->empty()) return items->front();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "nothing to claim";
    return {};
  }

  // What the worker does: upload the answer under its content key, then complete.
  std::string Upload(const std::string& answer) {
    std::string key = objstore::ContentKey(Sha256Hex(answer));
    auto put = objects_->Put(key, answer, "text/markdown");
    EXPECT_TRUE(put) << put.error().message;
    return key;
  }
  void Complete(const store::ClaimedItem& item, const std::string& answer) {
    store::Completion c;
    c.lease = {item.item_id, item.lease_epoch};
    c.output = {{"text", answer}};
    c.artifacts.push_back({"answer.md", "text/markdown", objstore::ContentKey(Sha256Hex(answer)),
                           static_cast<int64_t>(answer.size()), Sha256Hex(answer)});
    auto done = store::CompleteQueueItems(conn_, {c});
    ASSERT_TRUE(done) << done.error().message;
    ASSERT_EQ(done->at(0), store::CompleteState::kCompleted);
  }

  GcRun RunGc(const std::vector<std::string>& args, std::map<std::string, std::string> env = {}) {
    ProcessOptions opts;
    opts.argv = {SYNAPS_BINARY, "gc"};
    for (const auto& a : args) opts.argv.push_back(a);
    env.emplace("SYNAPS_DATABASE_URL", database_url_);
    env.emplace("SYNAPS_OBJECT_STORE", store_url_);
    env.emplace("AWS_ACCESS_KEY_ID", S3Server::kAccessKey);
    env.emplace("AWS_SECRET_ACCESS_KEY", S3Server::kSecretKey);
    opts.env = env;
    opts.log_path = TestStack::Get().TempDir("gc") + "/out.log";
    GcRun run;
    auto child = ChildProcess::Spawn(opts);
    if (!child) {
      ADD_FAILURE() << child.error().message;
      return run;
    }
    auto status = child->Wait(std::chrono::seconds(120));
    if (!status) {
      ADD_FAILURE() << "synaps gc did not finish";
      return run;
    }
    run.exit_code = WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    std::ifstream in(opts.log_path);
    std::string line, last;
    while (std::getline(in, line)) {
      run.output += line + "\n";
      if (!line.empty()) last = line;
    }
    run.report = json::parse(last, nullptr, /*allow_exceptions=*/false);
    return run;
  }

  // The invariant gc must keep: every artifact version names an object that exists.
  void ExpectEveryRowHasItsObject() {
    auto rows = conn_.Exec("SELECT object_key, size FROM synaps.artifact_versions");
    ASSERT_TRUE(rows) << rows.error().message;
    for (int i = 0; i < rows->rows(); ++i) {
      auto bytes = objects_->Get(rows->GetString(i, 0));
      ASSERT_TRUE(bytes) << rows->GetString(i, 0) << ": " << bytes.error().message;
      EXPECT_EQ(static_cast<int64_t>(bytes->size()), rows->GetInt(i, 1));
    }
  }

  std::string database_url_;
  std::string store_url_;
  db::Connection conn_;
  std::unique_ptr<objstore::ObjectStore> objects_;
};

TEST_P(GcTest, DeletesOnlyOldUnreferencedObjectsUnderObjects) {
  Submit("one");
  Submit("two");
  auto committed = Claim();
  std::string kept = Upload("committed answer");
  Complete(committed, "committed answer");
  // A worker that uploaded and then crashed before committing.
  Claim();
  std::string orphan = Upload("answer of a worker that died");
  // Not under objects/: gc leaves it alone whatever its age.
  ASSERT_TRUE(objects_->Put("other/keep-me", "x", "text/plain"));

  // Default grace (1 h): the orphan may be an upload whose commit is in flight.
  GcRun young = RunGc({"--json"});
  ASSERT_EQ(young.exit_code, 0) << young.output;
  EXPECT_EQ(young.report["scanned"], 2) << young.output;
  EXPECT_EQ(young.report["referenced"], 1);
  EXPECT_EQ(young.report["keptRecent"], 1);
  EXPECT_EQ(young.report["deleted"], json::array());
  EXPECT_EQ(young.report["olderThanSeconds"], 3600);
  EXPECT_TRUE(objects_->Exists(orphan).value());

  // Dry run with no grace: reports, deletes nothing.
  GcRun dry = RunGc({"--json", "--dry-run", "--older-than", "0"});
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_EQ(dry.report["candidates"], json::array({orphan})) << dry.output;
  EXPECT_EQ(dry.report["deleted"], json::array());
  EXPECT_TRUE(dry.report["dryRun"].get<bool>());
  EXPECT_TRUE(objects_->Exists(orphan).value());

  GcRun real = RunGc({"--json", "--older-than", "0"});
  ASSERT_EQ(real.exit_code, 0) << real.output;
  EXPECT_EQ(real.report["deleted"], json::array({orphan})) << real.output;
  EXPECT_EQ(real.report["deletedBytes"], std::string("answer of a worker that died").size());
  EXPECT_FALSE(objects_->Exists(orphan).value());
  EXPECT_TRUE(objects_->Exists(kept).value());
  EXPECT_TRUE(objects_->Exists("other/keep-me").value());
  ExpectEveryRowHasItsObject();

  // Nothing left to do.
  GcRun again = RunGc({"--json", "--older-than", "0"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(again.report["deleted"], json::array());
  EXPECT_EQ(again.report["scanned"], 1);
}

TEST_P(GcTest, CrashBetweenUploadAndCommitNeverLeavesARowWithoutItsObject) {
  Submit("the prompt");
  // Worker A claims with a short lease, uploads, and dies before committing.
  auto a = Claim(/*lease_seconds=*/1);
  std::string key = Upload("deterministic answer");
  // gc runs meanwhile (here with no grace at all, the worst case) and removes the orphan.
  GcRun gc = RunGc({"--json", "--older-than", "0"});
  ASSERT_EQ(gc.exit_code, 0) << gc.output;
  EXPECT_EQ(gc.report["deleted"], json::array({key})) << gc.output;
  // Worker B takes the item once A's lease has expired, and, like every worker, uploads before
  // it commits: the same bytes go to the same key again, so the committed row has its object.
  auto b = Claim();
  ASSERT_EQ(b.item_id, a.item_id);
  ASSERT_GT(b.lease_epoch, a.lease_epoch);
  EXPECT_EQ(Upload("deterministic answer"), key);
  Complete(b, "deterministic answer");
  ExpectEveryRowHasItsObject();
  // And gc keeps it from now on.
  GcRun after = RunGc({"--json", "--older-than", "0"});
  ASSERT_EQ(after.exit_code, 0) << after.output;
  EXPECT_EQ(after.report["referenced"], 1);
  EXPECT_EQ(after.report["deleted"], json::array());
  ExpectEveryRowHasItsObject();
}

TEST_P(GcTest, HumanOutputNamesWhatItDid) {
  Submit("p");
  Claim();
  std::string orphan = Upload("orphaned bytes");
  GcRun dry = RunGc({"--dry-run", "--older-than", "0"});
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_NE(dry.output.find("would delete " + orphan), std::string::npos) << dry.output;
  EXPECT_NE(dry.output.find("1 orphaned objects (14 bytes) would be deleted (dry run)"),
            std::string::npos)
      << dry.output;
  GcRun real = RunGc({"--older-than", "0"});
  ASSERT_EQ(real.exit_code, 0) << real.output;
  EXPECT_NE(real.output.find("deleted " + orphan), std::string::npos) << real.output;
}

INSTANTIATE_TEST_SUITE_P(Stores, GcTest, ::testing::Values(StoreKind::kFile, StoreKind::kS3),
                         [](const auto& info) {
                           return info.param == StoreKind::kFile ? "File" : "S3";
                         });

TEST(GcConfigTest, MissingDatabaseUrlIsAConfigurationError) {
  ProcessOptions opts;
  opts.argv = {SYNAPS_BINARY, "gc"};
  opts.env = {{"SYNAPS_DATABASE_URL", ""}, {"SYNAPS_OBJECT_STORE", "file:///tmp/unused"}};
  opts.log_path = TestStack::Get().TempDir("gc-config") + "/out.log";
  auto child = ChildProcess::Spawn(opts);
  ASSERT_TRUE(child) << child.error().message;
  auto status = child->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status);
  EXPECT_EQ(WEXITSTATUS(*status), 2);
  std::ifstream in(opts.log_path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("SYNAPS_DATABASE_URL"), std::string::npos) << text;
}

TEST(GcConfigTest, UnreachableStoreFailsWithoutDeleting) {
  std::string url = TestStack::Get().FreshDatabase();
  ProcessOptions opts;
  opts.argv = {SYNAPS_BINARY, "gc", "--json", "--older-than", "0"};
  opts.env = {{"SYNAPS_DATABASE_URL", url},
              {"SYNAPS_OBJECT_STORE", "s3://gone?endpoint=http://127.0.0.1:1&path_style=1"},
              {"AWS_ACCESS_KEY_ID", "a"},
              {"AWS_SECRET_ACCESS_KEY", "b"}};
  opts.log_path = TestStack::Get().TempDir("gc-down") + "/out.log";
  auto child = ChildProcess::Spawn(opts);
  ASSERT_TRUE(child) << child.error().message;
  auto status = child->Wait(std::chrono::seconds(60));
  ASSERT_TRUE(status);
  EXPECT_EQ(WEXITSTATUS(*status), 1);
  std::ifstream in(opts.log_path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"code\":\"unavailable\""), std::string::npos) << text;
}

}  // namespace
}  // namespace synaps
