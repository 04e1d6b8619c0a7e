// The partitioned ledger against a real PostgreSQL (docs/history.md, "The partitioned ledger"):
// a day whose runs have all expired goes by dropping its partition, a day with a run that must
// stay goes row by row, and partitions are created and dropped while workers drain at full speed
// without a task failing.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "db/connection.h"
#include "history/expiry.h"
#include "store/ledger_partitions.h"
#include "store/retention_store.h"
#include "support/cluster.h"
#include "support/test_stack.h"

namespace synaps::history {
namespace {

using db::Connection;

Connection Connect(const std::string& url) {
  auto c = Connection::Connect(url);
  EXPECT_TRUE(c) << c.error().message;
  return std::move(*c);
}

db::PgResult Exec(Connection& conn, const std::string& sql, const db::Params& params = {}) {
  auto r = conn.Exec(sql, params);
  EXPECT_TRUE(r) << sql << ": " << r.error().message;
  return r ? std::move(*r) : db::PgResult();
}

// `n` finished one-task runs of tenant `tenant` created on the UTC day `days_ago` days back
// (UUIDv7 ids of that day, so their events land in that day's partition), each with the six
// events a real run leaves; written directly, as the history benchmark does.
void FinishedRunsOfADay(Connection& conn, const std::string& tenant, int days_ago, int n) {
  Exec(conn,
       "CREATE TEMP TABLE h AS SELECT g, gen_random_uuid() AS thread_id,"
       " gen_random_uuid() AS command_id, gen_random_uuid() AS task_id,"
       " (substr(replace(synaps.uuid_v7_floor(t)::text, '-', ''), 1, 12) || '7'"
       "  || substr(md5(random()::text || g), 1, 19))::uuid AS run_id, t"
       " FROM (SELECT g, date_trunc('day', now(), 'UTC') - $1::integer * interval '1 day'"
       "                 + interval '1 hour' + g * interval '10 ms' AS t"
       "         FROM generate_series(1, $2::integer) g) x",
       {std::to_string(days_ago), std::to_string(n)});
  Exec(conn,
       "INSERT INTO synaps.threads (id, tenant_id, created_at)"
       " SELECT thread_id, $1, t FROM h",
       {tenant});
  Exec(conn,
       "INSERT INTO synaps.commands (id, tenant_id, thread_id, kind, payload, request_hash,"
       " submitted_by, created_at)"
       " SELECT command_id, $1, thread_id, 'prompt', '{}', md5(g::text), 'test', t FROM h",
       {tenant});
  Exec(conn,
       "INSERT INTO synaps.runs (id, command_id, thread_id, tenant_id, status, last_seq,"
       " created_at, started_at, finished_at, thread_seq)"
       " SELECT run_id, command_id, thread_id, $1, 'succeeded', 6, t, t, t, 1 FROM h",
       {tenant});
  Exec(conn,
       "INSERT INTO synaps.tasks (id, run_id, tenant_id, name, kind, spec, status, attempt,"
       " output, created_at, finished_at)"
       " SELECT task_id, run_id, $1, 'main', 'prompt', '{}', 'succeeded', 1,"
       " '{\"text\":\"x\"}', t, t FROM h",
       {tenant});
  Exec(conn,
       "INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data, created_at)"
       " SELECT h.run_id, h.task_id, e.seq, e.type, 1, '{}', h.t"
       "   FROM h, (VALUES (1, 'run.created'), (2, 'task.queued'), (3, 'task.claimed'),"
       "                   (4, 'artifact.created'), (5, 'task.completed'), (6, 'run.succeeded'))"
       "        AS e(seq, type)");
  Exec(conn, "DROP TABLE h");
}

std::string Day(Connection& conn, int days_ago) {
  return Exec(conn, "SELECT ((now() AT TIME ZONE 'UTC')::date - $1::integer)::text",
              {std::to_string(days_ago)})
      .GetString(0, 0);
}

void RollUpEverything(Connection& conn) {
  Exec(conn,
       "UPDATE synaps.usage_rollup SET last_event_id = (SELECT max(id) FROM synaps.ledger_events)");
}

int64_t Scalar(Connection& conn, const std::string& sql, const db::Params& params = {}) {
  return Exec(conn, sql, params).GetInt(0, 0);
}

TEST(PartitionedLedgerTest, ADayWhoseRunsAllExpiredIsDroppedOneWithAKeptRunGoesByRows) {
  Connection conn = Connect(testing::TestStack::Get().FreshDatabase());
  ASSERT_TRUE(store::SetRetention(conn, {.tenant = "*", .retention_days = 3, .actor = "ops"}));
  const std::string d10 = Day(conn, 10), d11 = Day(conn, 11);
  for (const std::string& day : {d10, d11}) {
    EXPECT_EQ(Exec(conn, "SELECT synaps.ensure_ledger_partition($1::date)", {day}).GetString(0, 0),
              "created");
  }
  FinishedRunsOfADay(conn, "a", 10, 200);
  FinishedRunsOfADay(conn, "b", 10, 100);
  FinishedRunsOfADay(conn, "a", 11, 50);
  const std::string p10 =
      "synaps.ledger_events_d" + d10.substr(0, 4) + d10.substr(5, 2) + d10.substr(8, 2);
  const std::string p11 =
      "synaps.ledger_events_d" + d11.substr(0, 4) + d11.substr(5, 2) + d11.substr(8, 2);
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM " + p10), 300 * 6);
  // One run of day 11 is kept: that day cannot go whole.
  std::string kept = Exec(conn,
                          "SELECT id::text FROM synaps.runs WHERE tenant_id = 'a'"
                          "  AND id < synaps.uuid_v7_floor($1::date + 1) ORDER BY id LIMIT 1",
                          {d11})
                         .GetString(0, 0);
  ASSERT_TRUE(store::SetRunKeep(conn, std::nullopt, kept, true, "ops"));
  RollUpEverything(conn);

  auto droppable = store::DroppableLedgerDays(conn);
  ASSERT_TRUE(droppable) << droppable.error().message;
  EXPECT_EQ(*droppable, std::vector<std::string>{d10});
  auto report = ExpireOnce(conn, nullptr, {.batch_runs = 100});
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->total.runs, 349);
  EXPECT_EQ(report->partitions_dropped, std::vector<std::string>{d10});
  // Day 10's events went with its partition, not row by row; day 11's expired runs' events
  // went row by row, the kept run's stay.
  EXPECT_EQ(report->total.events, 49 * 6);
  EXPECT_TRUE(Exec(conn, "SELECT to_regclass($1) IS NULL", {p10}).GetBool(0, 0));
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM " + p11), 6 + 1);  // + its run.keep event
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.runs"), 1);
  // Readers still work across the remaining partitions.
  EXPECT_EQ(
      Scalar(conn, "SELECT count(*) FROM synaps.ledger_events WHERE run_id = $1::uuid", {kept}), 7);
}

TEST(PartitionedLedgerTest, EventsOfADayWithoutAPartitionWaitInTheDefaultAndMoveIntoIt) {
  Connection conn = Connect(testing::TestStack::Get().FreshDatabase());
  const std::string d20 = Day(conn, 20);
  FinishedRunsOfADay(conn, "a", 20, 10);
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.ledger_events_default"), 60);
  EXPECT_EQ(Exec(conn, "SELECT synaps.ensure_ledger_partition($1::date)", {d20}).GetString(0, 0),
            "created");
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM synaps.ledger_events_default"), 0);
  EXPECT_EQ(Scalar(conn,
                   "SELECT count(*) FROM synaps.ledger_events WHERE tableoid <> "
                   "'synaps.ledger_events_default'::regclass"),
            60);
  // Append-only holds on every partition, including a new one.
  auto refused = conn.Exec("DELETE FROM synaps.ledger_events");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("append-only"), std::string::npos);
  EXPECT_FALSE(conn.Exec("TRUNCATE synaps.ledger_events_default"));
}

// Partitions of past days are created, filled, expired and dropped again and again while two
// workers drain 3,000 tasks: every task succeeds, none is retried or dead-lettered.
TEST(PartitionedLedgerTest, PartitionsAreDroppedWhileWorkersDrainWithoutErrors) {
  testing::Cluster c(std::map<std::string, std::string>{{"SYNAPS_LOCAL_LATENCY_MS", "0"}});
  Connection admin = Connect(c.database_url());
  ASSERT_TRUE(store::SetRetention(admin, {.tenant = "*", .retention_days = 3, .actor = "ops"}));
  const int tasks = 3000;
  Exec(admin,
       "SELECT synaps.submit_command('t', 'drain', 'k' || g, 'h', jsonb_build_object('kind',"
       " 'prompt', 'payload', '{}'::jsonb, 'tasks', jsonb_build_array(jsonb_build_object('name',"
       " 'main', 'kind', 'prompt', 'spec', jsonb_build_object('kind', 'prompt', 'input',"
       " jsonb_build_object('text', 'drain ' || g))))))"
       " FROM generate_series(1, $1::integer) g",
       {std::to_string(tasks)});
  c.StartWorker();
  c.StartWorker();
  std::atomic<int> dropped{0};
  std::atomic<bool> draining{true};
  int during_drain = 0;
  std::thread churn([&] {
    Connection conn = Connect(c.database_url());
    for (int k = 0; draining.load(); ++k) {
      const int days_ago = 30 + k % 300;
      Exec(conn, "SELECT synaps.ensure_ledger_partition($1::date)", {Day(conn, days_ago)});
      FinishedRunsOfADay(conn, "old", days_ago, 20);
      RollUpEverything(conn);
      auto report = ExpireOnce(conn, nullptr, {});
      ASSERT_TRUE(report) << report.error().message;
      dropped += static_cast<int>(report->partitions_dropped.size());
    }
  });
  c.WaitForCount("SELECT count(*) FROM synaps.runs WHERE tenant_id = 't' AND status = 'succeeded'",
                 tasks, 300);
  during_drain = dropped.load();
  draining = false;
  churn.join();
  EXPECT_GE(during_drain, 3) << "partitions dropped while the workers drained";
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.tasks WHERE tenant_id = 't' AND attempt <> 1"),
            0);
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.ledger_events e JOIN synaps.runs r"
                     " ON r.id = e.run_id WHERE r.tenant_id = 't' AND e.type IN"
                     " ('task.failed', 'task.retry_scheduled')"),
            0);
  for (size_t w = 0; w < 2; ++w) {
    std::string log = testing::ReadFile(c.WorkerLog(w));
    EXPECT_EQ(log.find("\"level\":\"error\""), std::string::npos) << log.substr(0, 4000);
  }
}

}  // namespace
}  // namespace synaps::history
