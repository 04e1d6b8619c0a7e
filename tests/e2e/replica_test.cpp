// Reads off the primary (docs/deploy.md, "Reads off the primary") with a real streaming replica:
// pg_basebackup of the test PostgreSQL, started as a hot standby, named by
// SYNAPS_DATABASE_READ_URL. Reads answer X-Synaps-Read-From; with the replica's replay paused,
// a client that just wrote still reads its write (from the primary: its X-Synaps-Lsn, or the
// write this API remembers for it), while another client reads the replica's older state; with
// the replica down, reads go on from the primary.
#include "support/replica.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/cluster.h"
#include "support/synaps_process.h"
#include "support/test_stack.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;
using testing::StreamingReplica;
using testing::TestStack;

std::string Header(const http::Response& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The cluster's fresh database exists before the base backup, so the replica has it.
    auto replica =
        StreamingReplica::Start(TestStack::Get().postgres(), TestStack::Get().TempDir("replica"));
    ASSERT_TRUE(replica) << replica.error().message;
    replica_ = std::move(*replica);
    const std::string db = c_.database_url().substr(c_.database_url().rfind('/') + 1);
    c_.StartApi({{"SYNAPS_DATABASE_READ_URL", replica_->Url(db)}});
  }

  http::Response As(const std::string& token, const std::string& method, const std::string& path,
                    const std::string& body = {}, const std::vector<std::string>& headers = {}) {
    return testing::ApiCall(method, c_.base_url() + path, token, body, headers);
  }

  Cluster c_;
  std::unique_ptr<StreamingReplica> replica_;
};

TEST_F(ReplicaTest, ReadsGoToTheReplicaAndAWriterReadsItsWrites) {
  auto key = c_.Call("POST", "/v1/api-keys", json{{"role", "operator"}, {"name", "b"}}.dump());
  ASSERT_EQ(key.status, 201) << key.body;
  const std::string other = json::parse(key.body)["token"];

  // A write answers the primary's WAL position.
  auto first = As(Cluster::kToken, "POST", "/v1/commands/submit",
                  json{{"kind", "prompt"}, {"input", {{"text", "one"}}}}.dump());
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_FALSE(Header(first, "x-synaps-lsn").empty());
  const std::string run1 = json::parse(first.body)["runId"];
  ASSERT_TRUE(replica_->CatchUp(c_.database_url(), std::chrono::seconds(30)));

  // Caught up: every read of both clients runs on the replica.
  for (const auto& token : {std::string(Cluster::kToken), other}) {
    auto run = As(token, "GET", "/v1/runs/" + run1);
    EXPECT_EQ(run.status, 200) << run.body;
    EXPECT_EQ(Header(run, "x-synaps-read-from"), "replica");
    auto list = As(token, "GET", "/v1/runs");
    EXPECT_EQ(Header(list, "x-synaps-read-from"), "replica");
  }
  auto usage = As(other, "GET", "/v1/usage");
  EXPECT_EQ(usage.status, 200) << usage.body;
  EXPECT_EQ(Header(usage, "x-synaps-read-from"), "replica");

  // Hold the replica behind, then write.
  ASSERT_TRUE(replica_->PauseReplay());
  auto second = As(Cluster::kToken, "POST", "/v1/commands/submit",
                   json{{"kind", "prompt"}, {"input", {{"text", "two"}}}}.dump());
  ASSERT_EQ(second.status, 201) << second.body;
  const std::string run2 = json::parse(second.body)["runId"];
  const std::string lsn = Header(second, "x-synaps-lsn");
  ASSERT_FALSE(lsn.empty());

  // The writer reads its write (remembered by this API) from the primary.
  auto mine = As(Cluster::kToken, "GET", "/v1/runs/" + run2);
  EXPECT_EQ(mine.status, 200) << mine.body;
  EXPECT_EQ(Header(mine, "x-synaps-read-from"), "primary");
  // Another client without the token reads the replica, which has not replayed it yet...
  auto theirs = As(other, "GET", "/v1/runs/" + run2);
  EXPECT_EQ(theirs.status, 404) << theirs.body;
  EXPECT_EQ(Header(theirs, "x-synaps-read-from"), "replica");
  // ...and with the writer's X-Synaps-Lsn (a client that went through another API replica), the
  // primary.
  auto with_token = As(other, "GET", "/v1/runs/" + run2, "", {"X-Synaps-Lsn: " + lsn});
  EXPECT_EQ(with_token.status, 200) << with_token.body;
  EXPECT_EQ(Header(with_token, "x-synaps-read-from"), "primary");
  auto bad = As(other, "GET", "/v1/runs/" + run2, "", {"X-Synaps-Lsn: 1/2/3'"});
  EXPECT_EQ(bad.status, 400) << bad.body;

  // Replay resumes: the replica serves everyone again.
  ASSERT_TRUE(replica_->ResumeReplay());
  ASSERT_TRUE(replica_->CatchUp(c_.database_url(), std::chrono::seconds(30)));
  auto later = As(other, "GET", "/v1/runs/" + run2, "", {"X-Synaps-Lsn: " + lsn});
  EXPECT_EQ(later.status, 200) << later.body;
  EXPECT_EQ(Header(later, "x-synaps-read-from"), "replica");

  // The replica goes down: reads go on from the primary, and after the first failure they do
  // not try the replica again for a while (one warning, not one per read).
  replica_->Stop();
  for (int i = 0; i < 5; ++i) {
    auto fallback = As(other, "GET", "/v1/runs/" + run2);
    EXPECT_EQ(fallback.status, 200) << fallback.body;
    EXPECT_EQ(Header(fallback, "x-synaps-read-from"), "primary");
  }
  const std::string log = testing::ReadFile(c_.api_log());
  size_t warnings = 0;
  for (size_t at = log.find("read replica unavailable"); at != std::string::npos;
       at = log.find("read replica unavailable", at + 1)) {
    ++warnings;
  }
  EXPECT_EQ(warnings, 1u) << log;

  // The standby's replication slot goes with it (the primary would keep WAL for it).
  replica_.reset();
  EXPECT_EQ(c_.Scalar("SELECT count(*) FROM pg_replication_slots"
                      " WHERE slot_name LIKE 'test_replica_%'"),
            0);
}

}  // namespace
}  // namespace synaps
