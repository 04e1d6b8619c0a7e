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

}  // namespace
}  // namespace synaps::db
