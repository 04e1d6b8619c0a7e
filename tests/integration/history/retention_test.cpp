// Retention against a real PostgreSQL (docs/history.md): expiry takes exactly the finished runs
// past their tenant's (or the default) retention, with their tasks, ledger, queue items,
// artifacts and command, and leaves held, kept, younger and not-yet-rolled-up runs alone.
#include <gtest/gtest.h>

#include <functional>
#include <thread>
#include <utility>

#include "core/ids.h"
#include "db/connection.h"
#include "history/archive.h"
#include "history/expiry.h"
#include "objstore/s3_store.h"
#include "store/archive_store.h"
#include "store/retention_store.h"
#include "support/s3_server.h"
#include "support/test_stack.h"

namespace synaps::history {
namespace {

using db::Connection;

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = testing::TestStack::Get().FreshDatabase();
    auto c = Connection::Connect(url_);
    ASSERT_TRUE(c) << c.error().message;
    conn_ = std::move(*c);
  }

  db::PgResult Exec(const std::string& sql, const db::Params& params = {}) {
    auto r = conn_.Exec(sql, params);
    EXPECT_TRUE(r) << sql << ": " << r.error().message;
    return r ? std::move(*r) : db::PgResult();
  }

  // A one-task run of `tenant` (its idempotency key `key`), claimed and finished with an
  // artifact, or held for approval; then made to look as if it finished `days_ago` days ago.
  std::string Run(const std::string& tenant, const std::string& key, double days_ago,
                  bool hold = false) {
    auto submitted = Exec(
        "SELECT synaps.submit_command($1, 'me', $2, 'h', jsonb_build_object('kind', 'prompt',"
        " 'payload', '{}'::jsonb, 'tasks', '[{\"name\":\"only\",\"kind\":\"prompt\",\"spec\":{}}]'"
        "::jsonb))->>'runId'",
        {tenant, key});
    std::string run = submitted.GetString(0, 0);
    auto states = Exec(
        "WITH c AS (SELECT item_id, lease_epoch"
        "             FROM synaps.claim_queue_items('w', ARRAY['default'], 1, 60, $1))"
        " SELECT synaps.write_task_batch('{}', '{}', '{}', '{}', '{}', '{}', '{}',"
        "   ARRAY[c.item_id], ARRAY[c.lease_epoch], ARRAY[$2::boolean], '[{\"text\":\"x\"}]',"
        "   jsonb_build_array(jsonb_build_array(jsonb_build_object('name', 'a.txt',"
        "     'contentType', 'text/plain', 'objectKey', 'k-' || $3, 'size', 1, 'sha256', 's'))))"
        "   FROM c",
        {tenant, hold ? "true" : "false", key});
    EXPECT_EQ(states.GetString(0, 0), hold ? "held" : "completed") << key;
    Exec(
        "UPDATE synaps.runs SET created_at = now() - $2::float8 * interval '1 day' - interval '1 "
        "hour',"
        " finished_at = CASE WHEN finished_at IS NULL THEN NULL"
        "                    ELSE now() - $2::float8 * interval '1 day' END"
        " WHERE id = $1::uuid",
        {run, std::to_string(days_ago)});
    return run;
  }

  // Every ledger event so far is folded into usage (expiry waits for that).
  void RollUpEverything() {
    Exec(
        "UPDATE synaps.usage_rollup SET last_event_id = (SELECT max(id) FROM "
        "synaps.ledger_events)");
  }

  // The idempotency keys of the runs left, sorted, with the counts of their rows.
  std::string Remaining() {
    auto r = Exec(
        "SELECT string_agg(c.idempotency_key, ' ' ORDER BY c.idempotency_key) FROM synaps.runs r"
        "  JOIN synaps.commands c ON c.id = r.command_id");
    return r.GetString(0, 0);
  }

  int64_t Count(const std::string& table) {
    return Exec("SELECT count(*) FROM " + table).GetInt(0, 0);
  }

  void SetRetention(const std::string& tenant, std::optional<int> days) {
    auto set = store::SetRetention(
        conn_, {.tenant = tenant, .retention_days = days, .actor = "ops", .reason = "test"});
    ASSERT_TRUE(set) << set.error().message;
  }

  std::string url_;
  Connection conn_;
};

TEST_F(RetentionTest, ExpiresExactlyWhatIsPastRetentionAcrossTenants) {
  SetRetention("a", 7);             // tenant a: 7 days
  SetRetention("*", 30);            // everyone else: 30 days
  SetRetention("c", std::nullopt);  // tenant c: for ever
  std::string a_old = Run("a", "a-old", 10);
  Run("a", "a-young", 3);
  std::string a_kept = Run("a", "a-kept", 10);
  Run("a", "a-held", 10, /*hold=*/true);
  Run("b", "b-old", 40);
  Run("b", "b-young", 10);
  Run("c", "c-ancient", 400);
  ASSERT_TRUE(store::SetRunKeep(conn_, std::string("a"), a_kept, true, "ops"));
  RollUpEverything();
  // Finished 10 days ago, but one of its events is not in usage yet: it waits for the rollup.
  std::string a_late = Run("a", "a-late", 10);

  const int64_t events_before = Count("synaps.ledger_events");
  const int64_t a_old_events =
      Exec("SELECT count(*) FROM synaps.ledger_events WHERE run_id = $1::uuid", {a_old})
          .GetInt(0, 0);
  std::vector<std::string> progress;
  auto report =
      ExpireOnce(conn_, nullptr, {.batch_runs = 1},
                 [&](const TenantExpiry& t, const ExpiryReport&) { progress.push_back(t.tenant); });
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_FALSE(report->busy);
  EXPECT_EQ(report->total.runs, 2);
  EXPECT_EQ(report->total.tasks, 2);
  EXPECT_EQ(report->total.artifacts, 2);
  EXPECT_EQ(report->total.versions, 2);
  EXPECT_EQ(report->total.commands, 2);
  EXPECT_EQ(report->batches, 2);  // one run per batch
  EXPECT_EQ(progress, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Remaining(), "a-held a-kept a-late a-young b-young c-ancient");
  EXPECT_EQ(Count("synaps.ledger_events"), events_before - report->total.events);
  EXPECT_GE(report->total.events, 2 * a_old_events - 1);
  // Nothing names the expired runs any more.
  for (const char* table : {"synaps.ledger_events", "synaps.tasks", "synaps.queue_items",
                            "synaps.artifacts", "synaps.artifact_versions"}) {
    EXPECT_EQ(
        Exec(std::string("SELECT count(*) FROM ") + table + " WHERE run_id = $1::uuid", {a_old})
            .GetInt(0, 0),
        0)
        << table;
  }

  // Once usage has folded the late event in, the late run goes too; a second pass finds nothing.
  RollUpEverything();
  auto again = ExpireOnce(conn_, nullptr, {});
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->total.runs, 1);
  EXPECT_EQ(Remaining(), "a-held a-kept a-young b-young c-ancient");
  EXPECT_EQ(ExpireOnce(conn_, nullptr, {})->total.runs, 0);

  // Released, the kept run expires with its tenant's retention.
  ASSERT_TRUE(store::SetRunKeep(conn_, std::string("a"), a_kept, false, "ops"));
  RollUpEverything();
  EXPECT_EQ(ExpireOnce(conn_, nullptr, {})->total.runs, 1);
  EXPECT_EQ(Remaining(), "a-held a-young b-young c-ancient");
  (void)a_late;
}

TEST_F(RetentionTest, ChangesAreAuditedAndTheDefaultApplies) {
  auto none = store::GetRetention(conn_, "a");
  ASSERT_TRUE(none);
  EXPECT_EQ((*none)["source"], "none");
  EXPECT_TRUE((*none)["retentionDays"].is_null());
  SetRetention("*", 30);
  EXPECT_EQ((*store::GetRetention(conn_, "a"))["retentionDays"], 30);
  EXPECT_EQ((*store::GetRetention(conn_, "a"))["source"], "default");
  SetRetention("a", 7);
  EXPECT_EQ((*store::GetRetention(conn_, "a"))["retentionDays"], 7);
  auto cleared = store::SetRetention(conn_, {.tenant = "a", .clear = true, .actor = "ops"});
  ASSERT_TRUE(cleared);
  EXPECT_EQ((*cleared)["retentionDays"], 30);
  auto audit = Exec(
      "SELECT string_agg(concat_ws(' ', tenant_id, actor, action, data->'before'->>'retentionDays',"
      " data->'after'->>'retentionDays'), E'\\n' ORDER BY id) FROM synaps.audit_log"
      " WHERE action LIKE 'retention.%'");
  EXPECT_EQ(audit.GetString(0, 0),
            "* ops retention.set 30\n"
            "a ops retention.set 7\n"
            "a ops retention.clear 7");
  // Keep is audited and recorded in the run's ledger; another tenant's run is not found.
  std::string run = Run("a", "k", 0);
  EXPECT_EQ(store::SetRunKeep(conn_, std::string("b"), run, true, "ops").error().code,
            ErrorCode::kNotFound);
  ASSERT_TRUE(store::SetRunKeep(conn_, std::nullopt, run, true, "root"));
  EXPECT_EQ(Exec("SELECT type, data->>'by' FROM synaps.ledger_events WHERE run_id = $1::uuid"
                 " ORDER BY seq DESC LIMIT 1",
                 {run})
                .GetString(0, 0),
            "run.keep");
  EXPECT_EQ(Count("synaps.audit_log WHERE action = 'run.keep'"), 1);
}

TEST_F(RetentionTest, OneExpiryAtATimeAndTheLedgerStaysAppendOnly) {
  SetRetention("*", 1);
  Run("a", "old", 5);
  RollUpEverything();
  // Another process holds the expiry lock: this pass stops and deletes nothing.
  auto other = Connection::Connect(url_);
  ASSERT_TRUE(other) << other.error().message;
  ASSERT_TRUE(other->Exec("BEGIN"));
  ASSERT_TRUE(other->Exec("SELECT pg_advisory_xact_lock(7340032019)"));
  auto busy = ExpireOnce(conn_, nullptr, {});
  ASSERT_TRUE(busy) << busy.error().message;
  EXPECT_TRUE(busy->busy);
  EXPECT_EQ(busy->total.runs, 0);
  ASSERT_TRUE(other->Exec("COMMIT"));
  EXPECT_EQ(ExpireOnce(conn_, nullptr, {})->total.runs, 1);
  // Outside expiry, deletes are still refused.
  Run("a", "new", 0);
  auto refused = conn_.Exec("DELETE FROM synaps.ledger_events");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("append-only"), std::string::npos);
}

// A tenant that archives is never deleted unarchived: without an archiver it is skipped; with
// one, each UTC day's runs are handed over first, and a failing archive deletes nothing.
TEST_F(RetentionTest, ArchivingTenantsGoThroughTheArchiverFirst) {
  auto set = store::SetRetention(
      conn_, {.tenant = "a", .retention_days = 7, .archive = true, .actor = "ops"});
  ASSERT_TRUE(set) << set.error().message;
  Run("a", "one", 10);
  Run("a", "two", 12);
  RollUpEverything();
  auto skipped = ExpireOnce(conn_, nullptr, {});
  ASSERT_TRUE(skipped);
  EXPECT_EQ(skipped->total.runs, 0);
  ASSERT_EQ(skipped->tenants.size(), 1u);
  EXPECT_NE(skipped->tenants[0].skipped.find("archive"), std::string::npos);

  struct Recorder : RunArchiver {
    bool fail = true;
    std::vector<std::string> days;
    Result<ArchivedSeqs> Archive(db::Connection& conn, const std::string& tenant,
                                 const std::string& day,
                                 const std::vector<std::string>& ids) override {
      if (fail) return Fail(ErrorCode::kUnavailable, "store down");
      days.push_back(tenant + " " + day + " " + std::to_string(ids.size()));
      ASSIGN_OR_RETURN(auto seqs, store::RunLastSeqs(conn, tenant, ids));
      ArchivedSeqs out;
      for (size_t i = 0; i < ids.size(); ++i) out[ids[i]] = seqs[i];
      return out;
    }
  } archiver;
  EXPECT_EQ(ExpireOnce(conn_, &archiver, {})->total.runs, 0);
  EXPECT_EQ(Remaining(), "one two");
  archiver.fail = false;
  EXPECT_EQ(ExpireOnce(conn_, &archiver, {})->total.runs, 2);
  EXPECT_EQ(archiver.days.size(), 2u);  // two different days
  EXPECT_EQ(Count("synaps.runs"), 0);
}

// A run that gets a ledger event between its archive and the delete (here: kept and released by
// an operator, then folded into usage) is not deleted with history its archive lacks: the delete
// compares each run's last_seq with the one it was archived at and leaves it; the next pass
// archives its new state (a new segment), then deletes it. With a real object store (s3rver).
TEST_F(RetentionTest, ARunChangedBetweenArchiveAndDeleteStaysUntilArchivedAgain) {
  testing::S3Server* server = testing::S3Server::Shared();
  ASSERT_NE(server, nullptr);
  const std::string bucket = "expiry-" + RandomHex(6);
  ASSERT_TRUE(server->CreateBucket(bucket));
  objstore::S3ObjectStore objects(server->StoreOptions(bucket));
  auto set = store::SetRetention(
      conn_, {.tenant = "a", .retention_days = 7, .archive = true, .actor = "ops"});
  ASSERT_TRUE(set) << set.error().message;
  const std::string changed = Run("a", "changed", 10);
  const std::string steady = Run("a", "steady", 10);
  RollUpEverything();
  auto events_of = [&](const std::string& run) {
    return Exec("SELECT count(*) FROM synaps.ledger_events WHERE run_id = $1::uuid", {run})
        .GetInt(0, 0);
  };
  const int64_t events_before = events_of(changed);

  // The real archiver; once it has written the batch, an operator keeps and releases `changed`.
  struct LateEvent : RunArchiver {
    ObjectStoreArchiver inner;
    std::function<void()> after;
    explicit LateEvent(objstore::ObjectStore* store) : inner(store) {}
    Result<ArchivedSeqs> Archive(db::Connection& conn, const std::string& tenant,
                                 const std::string& day,
                                 const std::vector<std::string>& ids) override {
      auto done = inner.Archive(conn, tenant, day, ids);
      if (after) std::exchange(after, nullptr)();
      return done;
    }
  } archiver(&objects);
  archiver.after = [&] {
    ASSERT_TRUE(store::SetRunKeep(conn_, std::string("a"), changed, true, "ops"));
    ASSERT_TRUE(store::SetRunKeep(conn_, std::string("a"), changed, false, "ops"));
    RollUpEverything();
  };
  auto first = ExpireOnce(conn_, &archiver, {.max_batches = 1});
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->total.runs, 1);
  EXPECT_EQ(Remaining(), "changed");
  EXPECT_EQ(events_of(changed), events_before + 2);
  auto stale = ReadArchivedRun(conn_, objects, "a", changed);
  ASSERT_TRUE(stale) << stale.error().message;
  EXPECT_EQ((*stale)["events"].size(), static_cast<size_t>(events_before));
  auto gone = ReadArchivedRun(conn_, objects, "a", steady);
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_EQ((*gone)["run"]["id"], steady);

  // The next pass archives what the run is now, then deletes it.
  const int64_t last_seq =
      Exec("SELECT last_seq FROM synaps.runs WHERE id = $1::uuid", {changed}).GetInt(0, 0);
  auto second = ExpireOnce(conn_, &archiver, {});
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->total.runs, 1);
  EXPECT_EQ(Count("synaps.runs"), 0);
  auto fresh = ReadArchivedRun(conn_, objects, "a", changed);
  ASSERT_TRUE(fresh) << fresh.error().message;
  EXPECT_EQ((*fresh)["events"].size(), static_cast<size_t>(events_before + 2));
  EXPECT_NE((*fresh)["archive"]["dataKey"], (*stale)["archive"]["dataKey"]);
  EXPECT_EQ((*fresh)["events"].back()["seq"], last_seq);
}

// PostgreSQL compares the positions itself: expire_runs with a stale last_seq deletes nothing,
// and refuses arrays of different lengths.
TEST_F(RetentionTest, ExpireRunsLeavesARunWhoseLastSeqMovedOn) {
  SetRetention("*", 1);
  const std::string run = Run("a", "moved", 5);
  RollUpEverything();
  const std::string seq =
      Exec("SELECT last_seq::text FROM synaps.runs WHERE id = $1::uuid", {run}).GetString(0, 0);
  const store::TenantRetention tenant{"a", 1, true};
  auto stale =
      store::ExpireRuns(conn_, tenant, {run}, {}, std::vector<int64_t>{std::stoll(seq) - 1});
  ASSERT_TRUE(stale) << stale.error().message;
  EXPECT_EQ(stale->runs, 0);
  auto mismatched = conn_.Exec(
      "SELECT synaps.expire_runs('a', ARRAY[$1::uuid], 1, '{}', '{1,2}'::bigint[])", {run});
  ASSERT_FALSE(mismatched);
  EXPECT_NE(mismatched.error().message.find("1 run ids but 2 last seqs"), std::string::npos);
  auto current = store::ExpireRuns(conn_, tenant, {run}, {}, std::vector<int64_t>{std::stoll(seq)});
  ASSERT_TRUE(current) << current.error().message;
  EXPECT_EQ(current->runs, 1);
}

}  // namespace
}  // namespace synaps::history
