// Migrations against a real PostgreSQL.
#include "db/migrate.h"

#include <gtest/gtest.h>

#include <thread>

#include "support/test_stack.h"

namespace synaps::db {
namespace {

std::string EmptyDatabase(const std::string& name) {
  auto& pg = testing::TestStack::Get().postgres();
  auto created = pg.CreateDatabase(name);
  EXPECT_TRUE(created) << created.error().message;
  return pg.Url(name);
}

// The embedded migrations before the first whose name contains `marker` (a database as the
// release before that migration left it).
std::vector<MigrationSource> MigrationsBefore(const std::string& marker) {
  std::vector<MigrationSource> before;
  for (const auto& m : EmbeddedMigrations()) {
    if (m.name.find(marker) != std::string::npos) break;
    before.push_back(m);
  }
  EXPECT_LT(before.size(), EmbeddedMigrations().size()) << "no migration named *" << marker << "*";
  return before;
}

// `sql`'s result; an empty one, and a test failure naming the statement, when it fails.
PgResult ExecOrFail(Connection& conn, const std::string& sql) {
  auto r = conn.Exec(sql);
  EXPECT_TRUE(r) << sql << ": " << r.error().message;
  return r ? std::move(*r) : PgResult();
}

TEST(MigrateTest, AppliesOnceThenSkips) {
  std::string url = EmptyDatabase("migrate_twice");
  auto conn = Connection::Connect(url);
  ASSERT_TRUE(conn) << conn.error().message;
  auto first = Migrate(*conn, EmbeddedMigrations());
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->applied.size(), EmbeddedMigrations().size());
  auto second = Migrate(*conn, EmbeddedMigrations());
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_TRUE(second->applied.empty());
  EXPECT_EQ(second->skipped.size(), EmbeddedMigrations().size());
  auto tables = conn->Exec(
      "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'synaps'");
  ASSERT_TRUE(tables);
  EXPECT_GE(tables->GetInt(0, 0), 12);
}

TEST(MigrateTest, WaitingForTheLockIsBounded) {
  std::string url = EmptyDatabase("migrate_lock_bound");
  auto holder = Connection::Connect(url);
  ASSERT_TRUE(holder) << holder.error().message;
  // Another migrate holds the lock (the key migrate uses) and does not let go.
  ASSERT_TRUE(holder->Exec("SELECT pg_advisory_lock(7340032017)"));
  auto conn = Connection::Connect(url);
  ASSERT_TRUE(conn);
  auto start = std::chrono::steady_clock::now();
  auto blocked = Migrate(*conn, EmbeddedMigrations(), std::chrono::milliseconds(300));
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_NE(blocked.error().message.find("SYNAPS_MIGRATE_LOCK_TIMEOUT_MS"), std::string::npos)
      << blocked.error().message;
  EXPECT_GE(waited, std::chrono::milliseconds(300));
  EXPECT_LT(waited, std::chrono::milliseconds(3000));
  // Once the holder lets go, a waiting migrate gets the lock within its bound.
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    // Runs on its own thread: a failure shows as the Migrate below timing out.
    (void)holder->Exec("SELECT pg_advisory_unlock(7340032017)");
  });
  auto report = Migrate(*conn, EmbeddedMigrations(), std::chrono::seconds(10));
  release.join();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->applied.size(), EmbeddedMigrations().size());
}

TEST(MigrateTest, ConcurrentRunsApplyEachMigrationOnce) {
  std::string url = EmptyDatabase("migrate_concurrent");
  constexpr int kProcs = 4;
  std::vector<Result<MigrationReport>> results(kProcs, Fail(ErrorCode::kInternal, "not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kProcs; ++i) {
    threads.emplace_back([&, i] {
      auto conn = Connection::Connect(url);
      if (!conn) {
        results[i] = std::unexpected(conn.error());
        return;
      }
      results[i] = Migrate(*conn, EmbeddedMigrations());
    });
  }
  for (auto& t : threads) t.join();
  size_t applied = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r) << r.error().message;
    applied += r->applied.size();
  }
  EXPECT_EQ(applied, EmbeddedMigrations().size());
}

TEST(MigrateTest, RefusesAnEditedMigration) {
  std::string url = EmptyDatabase("migrate_edited");
  auto conn = Connection::Connect(url);
  ASSERT_TRUE(conn);
  std::vector<MigrationSource> v1 = {{"0001_x.sql", "CREATE TABLE x (id int)"}};
  ASSERT_TRUE(Migrate(*conn, v1));
  std::vector<MigrationSource> edited = {{"0001_x.sql", "CREATE TABLE x (id bigint)"}};
  auto r = Migrate(*conn, edited);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_NE(r.error().message.find("0001_x.sql"), std::string::npos);
}

TEST(MigrateTest, FailedMigrationLeavesNothingHalfApplied) {
  std::string url = EmptyDatabase("migrate_failed");
  auto conn = Connection::Connect(url);
  ASSERT_TRUE(conn);
  std::vector<MigrationSource> bad = {{"0001_bad.sql", "CREATE TABLE y (id int); SELECT nope;"}};
  ASSERT_FALSE(Migrate(*conn, bad));
  auto t = conn->Exec("SELECT to_regclass('public.y') IS NULL");
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->GetBool(0, 0)) << "table y must not exist after the failed migration";
}

TEST(LedgerTest, UpdatesAndDeletesAreRefused) {
  auto conn = Connection::Connect(testing::TestStack::Get().FreshDatabase());
  ASSERT_TRUE(conn);
  ASSERT_TRUE(conn->Exec(
      "SELECT synaps.submit_command('t', 'me', NULL, 'h', '{\"kind\":\"prompt\",\"payload\":{},"
      "\"tasks\":[{\"name\":\"main\",\"kind\":\"prompt\",\"spec\":{}}]}')"));
  auto upd = conn->Exec("UPDATE synaps.ledger_events SET type = 'x'");
  ASSERT_FALSE(upd);
  EXPECT_NE(upd.error().message.find("append-only"), std::string::npos);
  EXPECT_FALSE(conn->Exec("DELETE FROM synaps.ledger_events"));
  EXPECT_FALSE(conn->Exec("TRUNCATE synaps.ledger_events"));
}

// A database written at 0015 (the release before one completion path) upgrades without losing
// its history, and a task held there is approved through settle_tasks: the run gets the ledger
// a worker's completion would have written (docs/queue.md).
TEST(MigrateTest, UpgradeFrom0015KeepsHistoryAndApprovesAHeldTask) {
  std::string url = EmptyDatabase("migrate_upgrade_0015");
  auto conn = Connection::Connect(url);
  ASSERT_TRUE(conn) << conn.error().message;
  std::vector<MigrationSource> at_0015;
  for (const auto& m : EmbeddedMigrations()) {
    if (m.name < "0016") at_0015.push_back(m);
  }
  ASSERT_EQ(at_0015.back().name, "0015_usage.sql");
  ASSERT_TRUE(Migrate(*conn, at_0015));

  auto exec = [&](const std::string& sql) { return ExecOrFail(*conn, sql); };
  // Run "one": a task that completes with an artifact. Run "two": one that completes and one
  // held for approval.
  auto submit = [&](const std::string& key, const std::string& tasks) {
    exec("SELECT synaps.submit_command('t', 'me', '" + key +
         "', 'h', jsonb_build_object('kind', 'prompt', 'payload', '{}'::jsonb, 'tasks', '" + tasks +
         "'::jsonb))");
  };
  submit("one", R"([{"name":"only","kind":"prompt","spec":{}}])");
  submit("two", R"([{"name":"done","kind":"prompt","spec":{}},)"
                R"( {"name":"held","kind":"prompt","spec":{}}])");
  auto claimed = exec(
      "SELECT array_agg(item_id ORDER BY task_name), array_agg(lease_epoch ORDER BY task_name)"
      "  FROM synaps.claim_queue_items('w', ARRAY['default'], 10, 60)");
  ASSERT_EQ(claimed.rows(), 1);
  // Ordered by task name: done, held, only.
  auto states =
      exec("SELECT synaps.write_task_batch('{}', '{}', '{}', '{}', '{}', '{}', '{}', '" +
           claimed.GetString(0, 0) + "'::bigint[], '" + claimed.GetString(0, 1) +
           "'::bigint[], ARRAY[false, true, false], "
           R"('[{"text":"d"}, {"text":"h"}, {"text":"o"}]',)"
           R"( '[[], [], [{"name":"a.txt","contentType":"text/plain","objectKey":"k","size":1,)"
           R"("sha256":"s"}]]'))");
  ASSERT_EQ(states.rows(), 3);
  EXPECT_EQ(states.GetString(0, 0), "completed");
  EXPECT_EQ(states.GetString(1, 0), "held");
  EXPECT_EQ(states.GetString(2, 0), "completed");

  // Each run's ledger, each run's tasks, the artifact versions: a run is named by its command's
  // idempotency key.
  const std::string runs = "synaps.runs r JOIN synaps.commands c ON c.id = r.command_id";
  const std::string history =
      "SELECT (SELECT string_agg(concat_ws(' ', c.idempotency_key, e.seq, e.type, t.name, "
      "e.attempt,"
      "                                    e.data), E'\\n' ORDER BY c.idempotency_key, e.seq)"
      "          FROM synaps.ledger_events e JOIN " +
      runs +
      " ON r.id = e.run_id"
      "          LEFT JOIN synaps.tasks t ON t.id = e.task_id),"
      "       (SELECT string_agg(concat_ws(' ', c.idempotency_key, r.status, t.name, t.status,"
      "                                    t.output), E'\\n' ORDER BY c.idempotency_key, t.name)"
      "          FROM " +
      runs +
      " JOIN synaps.tasks t ON t.run_id = r.id),"
      "       (SELECT string_agg(concat_ws(' ', a.name, a.latest_version, v.version, v.object_key),"
      "                          E'\\n') FROM synaps.artifacts a"
      "          JOIN synaps.artifact_versions v ON v.artifact_id = a.id)";
  auto before = exec(history);
  EXPECT_NE(before.GetString(0, 0).find("one 4 artifact.created only 1"), std::string::npos)
      << before.GetString(0, 0);
  EXPECT_NE(before.GetString(0, 0).find("two 6 task.awaiting_approval held 1"), std::string::npos)
      << before.GetString(0, 0);
  EXPECT_NE(before.GetString(0, 1).find("two awaiting_approval held awaiting_approval"),
            std::string::npos)
      << before.GetString(0, 1);

  auto upgraded = Migrate(*conn, EmbeddedMigrations());
  ASSERT_TRUE(upgraded) << upgraded.error().message;
  EXPECT_EQ(upgraded->applied.size(), EmbeddedMigrations().size() - at_0015.size());
  auto after = exec(history);
  for (int col = 0; col < 3; ++col) EXPECT_EQ(after.GetString(0, col), before.GetString(0, col));
  auto gone = exec("SELECT to_regproc('synaps.complete_queue_item') IS NULL");
  EXPECT_TRUE(gone.GetBool(0, 0)) << "complete_queue_item must be gone: one completion path";

  auto decided = exec(
      "SELECT synaps.decide_task('t', (SELECT id FROM synaps.tasks WHERE name = 'held'), true,"
      " 'alice', 'fine')");
  EXPECT_EQ(decided.GetString(0, 0), "approved");
  auto run = exec(
      "SELECT r.status, t.status, t.output->>'text', (SELECT count(*) FROM synaps.queue_items)"
      "  FROM " +
      runs +
      " JOIN synaps.tasks t ON t.run_id = r.id"
      " WHERE c.idempotency_key = 'two' AND t.name = 'held'");
  EXPECT_EQ(run.GetString(0, 0), "succeeded");
  EXPECT_EQ(run.GetString(0, 1), "succeeded");
  EXPECT_EQ(run.GetString(0, 2), "h");
  EXPECT_EQ(run.GetInt(0, 3), 0);
  // The run's ledger goes on densely from where the old release left it.
  auto tail = exec(
      "SELECT string_agg(concat_ws(' ', e.seq, e.type, e.data), E'\\n' ORDER BY e.seq)"
      "  FROM synaps.ledger_events e JOIN " +
      runs +
      " ON r.id = e.run_id"
      " WHERE c.idempotency_key = 'two' AND e.seq > 7");
  EXPECT_EQ(tail.GetString(0, 0),
            "8 task.approved {\"by\": \"alice\", \"reason\": \"fine\"}\n"
            "9 task.completed {}\n"
            "10 run.succeeded {}");
}

// A database written by the release before artifacts travelled inside task.completed
// (0039_completion_artifacts.sql) keeps its artifact.created events; a task held there and
// approved after the upgrade, and a new run, get one task.completed that names the artifacts
// (data.artifacts), with the seqs going on densely.
TEST(MigrateTest, UpgradeKeepsArtifactCreatedAndNewCompletionsNameTheirArtifacts) {
  std::string url = EmptyDatabase("migrate_upgrade_completion_artifacts");
  auto conn = Connection::Connect(url);
  ASSERT_TRUE(conn) << conn.error().message;
  ASSERT_TRUE(Migrate(*conn, MigrationsBefore("_completion_artifacts.sql")));
  auto exec = [&](const std::string& sql) { return ExecOrFail(*conn, sql); };
  auto submit = [&](const std::string& key, const std::string& tasks) {
    exec("SELECT synaps.submit_command('t', 'me', '" + key +
         "', 'h', jsonb_build_object('kind', 'prompt', 'payload', '{}'::jsonb, 'tasks', '" + tasks +
         "'::jsonb))");
  };
  // Completes the claimed items (ordered by task name) with one artifact each, `holds` held.
  auto complete = [&](const std::string& holds) {
    auto claimed = exec(
        "SELECT array_agg(item_id ORDER BY task_name), array_agg(lease_epoch ORDER BY task_name),"
        "       count(*) FROM synaps.claim_queue_items('w', ARRAY['default'], 10, 60)");
    const std::string art =
        R"([{"name":"a.txt","contentType":"text/plain","objectKey":"k","size":1,"sha256":"s"}])";
    std::string outputs = "[", arts = "[";
    for (int64_t i = 0; i < claimed.GetInt(0, 2); ++i) {
      outputs += std::string(i ? "," : "") + R"({"text":"x","model":"m"})";
      arts += std::string(i ? "," : "") + art;
    }
    return exec("SELECT synaps.write_task_batch('{}', '{}', '{}', '{}', '{}', '{}', '{}', '" +
                claimed.GetString(0, 0) + "'::bigint[], '" + claimed.GetString(0, 1) +
                "'::bigint[], " + holds + ", '" + outputs + "]', '" + arts + "]')");
  };
  // Run "old": its task completes with an artifact before the upgrade. Run "held": its task
  // is held for approval then.
  submit("old", R"([{"name":"a","kind":"prompt","spec":{}}])");
  submit("held", R"([{"name":"b","kind":"prompt","spec":{}}])");
  ASSERT_EQ(complete("ARRAY[false, true]").rows(), 2);

  auto old_before = exec(
      "SELECT string_agg(concat_ws(' ', e.seq, e.type, e.data ->> 'name'), ',' ORDER BY e.seq)"
      "  FROM synaps.ledger_events e JOIN synaps.runs r ON r.id = e.run_id"
      "  JOIN synaps.commands c ON c.id = r.command_id WHERE c.idempotency_key = 'old'");
  EXPECT_EQ(old_before.GetString(0, 0),
            "1 run.created,2 task.queued a,3 task.claimed,4 artifact.created a.txt,"
            "5 task.completed,6 run.succeeded");
  auto all_before = exec(
      "SELECT string_agg(to_jsonb(e)::text, E'\\n' ORDER BY e.id)"
      "  FROM synaps.ledger_events e");

  auto upgraded = Migrate(*conn, EmbeddedMigrations());
  ASSERT_TRUE(upgraded) << upgraded.error().message;
  auto all_after = exec(
      "SELECT string_agg(to_jsonb(e)::text, E'\\n' ORDER BY e.id)"
      "  FROM synaps.ledger_events e");
  EXPECT_EQ(all_after.GetString(0, 0), all_before.GetString(0, 0)) << "history unchanged";

  // The held task approved after the upgrade: one task.completed naming version 1 of a.txt in
  // its run's thread (each run here has a thread of its own).
  auto decided = exec(
      "SELECT synaps.decide_task('t', (SELECT id FROM synaps.tasks WHERE name = 'b'), true,"
      " 'alice', 'fine')");
  EXPECT_EQ(decided.GetString(0, 0), "approved");
  auto held = exec(
      "SELECT string_agg(concat_ws(' ', e.seq, e.type, e.data #>> '{artifacts,0,name}',"
      "                            e.data #>> '{artifacts,0,version}',"
      "                            e.data #>> '{artifacts,0,size}', e.data ->> 'model'),"
      "                  E'\\n' ORDER BY e.seq)"
      "  FROM synaps.ledger_events e JOIN synaps.runs r ON r.id = e.run_id"
      "  JOIN synaps.commands c ON c.id = r.command_id"
      " WHERE c.idempotency_key = 'held' AND e.seq > 4");
  EXPECT_EQ(held.GetString(0, 0),
            "5 task.approved\n"
            "6 task.completed a.txt 1 1 m\n"
            "7 run.succeeded");
  auto linked = exec(
      "SELECT count(*) FROM synaps.ledger_events e"
      "  JOIN synaps.artifact_versions v"
      "    ON v.artifact_id = (e.data #>> '{artifacts,0,artifactId}')::uuid AND v.version = 1"
      " WHERE e.type = 'task.completed' AND v.task_id = e.task_id");
  EXPECT_EQ(linked.GetInt(0, 0), 1) << "the event names the version the completion wrote";

  // A new run: no artifact.created, its ledger dense.
  submit("new", R"([{"name":"c","kind":"prompt","spec":{}}])");
  ASSERT_EQ(complete("ARRAY[false]").rows(), 1);
  auto fresh = exec(
      "SELECT string_agg(e.seq || ' ' || e.type, ',' ORDER BY e.seq), max(e.seq) = count(*)"
      "  FROM synaps.ledger_events e JOIN synaps.runs r ON r.id = e.run_id"
      "  JOIN synaps.commands c ON c.id = r.command_id WHERE c.idempotency_key = 'new'");
  EXPECT_EQ(fresh.GetString(0, 0),
            "1 run.created,2 task.queued,3 task.claimed,4 task.completed,5 run.succeeded");
  EXPECT_TRUE(fresh.GetBool(0, 1));
}

// A database written by the release before retention (0022) becomes partitioned (0024..0026,
// docs/history.md): every event stays, in the legacy partition (a run with a random, pre-0010
// id in the default one), ids and seqs go on where they were, a held task is approved, new
// runs' events land in partitions, and the ledger is still append-only.
TEST(MigrateTest, UpgradeFrom0022PartitionsTheLedgerWithoutLosingHistory) {
  std::string url = EmptyDatabase("migrate_upgrade_0022");
  auto conn = Connection::Connect(url);
  ASSERT_TRUE(conn) << conn.error().message;
  std::vector<MigrationSource> at_0022;
  for (const auto& m : EmbeddedMigrations()) {
    if (m.name < "0023") at_0022.push_back(m);
  }
  ASSERT_EQ(at_0022.back().name, "0022_concurrency_keys.sql");
  ASSERT_TRUE(Migrate(*conn, at_0022));
  auto exec = [&](const std::string& sql) { return ExecOrFail(*conn, sql); };
  auto submit = [&](const std::string& key, const std::string& tasks) {
    exec("SELECT synaps.submit_command('t', 'me', '" + key +
         "', 'h', jsonb_build_object('kind', 'prompt', 'payload', '{}'::jsonb, 'tasks', '" + tasks +
         "'::jsonb))");
  };
  submit("one", R"([{"name":"only","kind":"prompt","spec":{}}])");
  submit("two", R"([{"name":"done","kind":"prompt","spec":{}},)"
                R"( {"name":"held","kind":"prompt","spec":{}}])");
  auto claimed = exec(
      "SELECT array_agg(item_id ORDER BY task_name), array_agg(lease_epoch ORDER BY task_name)"
      "  FROM synaps.claim_queue_items('w', ARRAY['default'], 10, 60)");
  exec("SELECT synaps.write_task_batch('{}', '{}', '{}', '{}', '{}', '{}', '{}', '" +
       claimed.GetString(0, 0) + "'::bigint[], '" + claimed.GetString(0, 1) +
       "'::bigint[], ARRAY[false, true, false], "
       R"('[{"text":"d"}, {"text":"h"}, {"text":"o"}]',)"
       R"( '[[], [], [{"name":"a.txt","contentType":"text/plain","objectKey":"k","size":1,)"
       R"("sha256":"s"}]]'))");
  // A run from before 0010, with a random (version 4) id that sorts above every UUIDv7.
  exec(
      "INSERT INTO synaps.threads (id, tenant_id) VALUES ('f0000000-0000-4000-8000-000000000001', "
      "'t');"
      "INSERT INTO synaps.commands (id, tenant_id, thread_id, kind, payload, idempotency_key,"
      "  request_hash, submitted_by) VALUES ('f0000000-0000-4000-8000-000000000002', 't',"
      "  'f0000000-0000-4000-8000-000000000001', 'prompt', '{}', 'old', 'h', 'me');"
      "INSERT INTO synaps.runs (id, command_id, thread_id, tenant_id) VALUES"
      "  ('f0000000-0000-4000-8000-000000000003', 'f0000000-0000-4000-8000-000000000002',"
      "   'f0000000-0000-4000-8000-000000000001', 't');"
      "SELECT synaps.append_event('f0000000-0000-4000-8000-000000000003', NULL, 'run.created',"
      "  NULL, '{}')");
  const std::string history =
      "SELECT string_agg(concat_ws(' ', e.id, c.idempotency_key, e.seq, e.type, e.attempt, e.data),"
      "                  E'\\n' ORDER BY e.id)"
      "  FROM synaps.ledger_events e JOIN synaps.runs r ON r.id = e.run_id"
      "  JOIN synaps.commands c ON c.id = r.command_id";
  auto before = exec(history);
  const int64_t last_id = exec("SELECT max(id) FROM synaps.ledger_events").GetInt(0, 0);

  auto upgraded = Migrate(*conn, EmbeddedMigrations());
  ASSERT_TRUE(upgraded) << upgraded.error().message;
  EXPECT_EQ(exec(history).GetString(0, 0), before.GetString(0, 0));
  EXPECT_EQ(exec("SELECT relkind FROM pg_class WHERE oid = 'synaps.ledger_events'::regclass")
                .GetString(0, 0),
            "p");
  EXPECT_EQ(exec("SELECT string_agg(DISTINCT tableoid::regclass::text, ' ')"
                 "  FROM synaps.ledger_events")
                .GetString(0, 0),
            "synaps.ledger_events_default synaps.ledger_events_legacy");
  EXPECT_EQ(exec("SELECT count(*) FROM synaps.ledger_events_default").GetInt(0, 0), 1);
  EXPECT_GE(exec("SELECT count(*) FROM pg_inherits WHERE inhparent ="
                 " 'synaps.ledger_events'::regclass")
                .GetInt(0, 0),
            8);

  // The held task is approved: its run's ledger goes on densely, with ids after the old ones.
  auto decided = exec(
      "SELECT synaps.decide_task('t', (SELECT id FROM synaps.tasks WHERE name = 'held'), true,"
      " 'alice', 'fine')");
  EXPECT_EQ(decided.GetString(0, 0), "approved");
  auto tail = exec(
      "SELECT string_agg(concat_ws(' ', e.seq, e.type), ', ' ORDER BY e.seq), min(e.id)"
      "  FROM synaps.ledger_events e JOIN synaps.runs r ON r.id = e.run_id"
      "  JOIN synaps.commands c ON c.id = r.command_id"
      " WHERE c.idempotency_key = 'two' AND e.seq > 7");
  EXPECT_EQ(tail.GetString(0, 0), "8 task.approved, 9 task.completed, 10 run.succeeded");
  EXPECT_GT(tail.GetInt(0, 1), last_id);
  // The old run's events go on in the default partition; a new run's land in a partition too.
  exec(
      "SELECT synaps.append_event('f0000000-0000-4000-8000-000000000003', NULL, 'run.keep',"
      " NULL, '{}')");
  EXPECT_EQ(exec("SELECT max(seq) FROM synaps.ledger_events_default").GetInt(0, 0), 2);
  submit("three", R"([{"name":"only","kind":"prompt","spec":{}}])");
  EXPECT_EQ(exec("SELECT count(*) FROM synaps.ledger_events e JOIN synaps.runs r"
                 " ON r.id = e.run_id JOIN synaps.commands c ON c.id = r.command_id"
                 " WHERE c.idempotency_key = 'three'")
                .GetInt(0, 0),
            2);
  // Still append-only, on the parent and on a partition.
  EXPECT_FALSE(conn->Exec("DELETE FROM synaps.ledger_events"));
  EXPECT_FALSE(conn->Exec("UPDATE synaps.ledger_events_legacy SET type = 'x'"));
  EXPECT_FALSE(conn->Exec("TRUNCATE synaps.ledger_events_legacy"));
}

// A database written by the release before lazy threads (0045_lazy_threads.sql), where every
// run has a thread row, upgrades with every row kept; its threads go on from their places, and
// a run submitted after the upgrade without a thread writes no row until a submit names it.
TEST(MigrateTest, UpgradeToLazyThreadsKeepsEveryThreadAndItsPlaces) {
  std::string url = EmptyDatabase("migrate_upgrade_lazy_threads");
  auto conn = Connection::Connect(url);
  ASSERT_TRUE(conn) << conn.error().message;
  ASSERT_TRUE(Migrate(*conn, MigrationsBefore("_lazy_threads.sql")));
  auto exec = [&](const std::string& sql) { return ExecOrFail(*conn, sql); };
  // Submits a one-task prompt with `key`, on the thread of the command keyed `thread_of` when
  // given; returns the answer's threadId.
  auto submit = [&](const std::string& key, const std::string& thread_of = {}) {
    std::string thread = thread_of.empty() ? "NULL"
                                           : "(SELECT thread_id::text FROM synaps.commands"
                                             " WHERE idempotency_key = '" +
                                                 thread_of + "')";
    return exec("SELECT synaps.submit_command('t', 'me', '" + key +
                "', 'h', jsonb_build_object('kind', 'prompt', 'payload', '{}'::jsonb,"
                " 'threadId', " +
                thread +
                ", 'tasks',"
                " '[{\"name\":\"a\",\"kind\":\"prompt\",\"spec\":{}}]'::jsonb))->>'threadId'")
        .GetString(0, 0);
  };
  const std::string lone = submit("lone");
  const std::string named = submit("named");
  submit("named-2", "named");
  const std::string rows_sql =
      "SELECT string_agg(id || ' ' || tenant_id || ' ' || last_run_seq, ',' ORDER BY id)"
      "  FROM synaps.threads";
  const std::string threads_before = exec(rows_sql).GetString(0, 0);
  const std::string runs_sql =
      "SELECT string_agg(concat_ws(' ', id, thread_id, thread_seq, status), ',' ORDER BY id)"
      "  FROM synaps.runs";
  const std::string runs_before = exec(runs_sql).GetString(0, 0);

  auto upgraded = Migrate(*conn, EmbeddedMigrations());
  ASSERT_TRUE(upgraded) << upgraded.error().message;
  EXPECT_EQ(exec(rows_sql).GetString(0, 0), threads_before);
  EXPECT_EQ(exec(runs_sql).GetString(0, 0), runs_before);

  // The old threads go on from their places.
  EXPECT_EQ(submit("lone-2", "lone"), lone);
  EXPECT_EQ(submit("named-3", "named"), named);
  EXPECT_EQ(exec("SELECT string_agg(c.idempotency_key || '=' || r.thread_seq, ','"
                 "                  ORDER BY c.idempotency_key COLLATE \"C\")"
                 "  FROM synaps.runs r JOIN synaps.commands c ON c.id = r.command_id")
                .GetString(0, 0),
            "lone=1,lone-2=2,named=1,named-2=2,named-3=3");
  // A new lone run has no row; naming its thread writes it.
  const std::string fresh = submit("fresh");
  EXPECT_EQ(exec("SELECT count(*) FROM synaps.threads WHERE id = '" + fresh + "'").GetInt(0, 0), 0);
  EXPECT_EQ(submit("fresh-2", "fresh"), fresh);
  EXPECT_EQ(exec("SELECT last_run_seq FROM synaps.threads WHERE id = '" + fresh + "'").GetInt(0, 0),
            2);
}

}  // namespace
}  // namespace synaps::db
