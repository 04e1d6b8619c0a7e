// The control registry's store against a real PostgreSQL: versions, the audit trail, outbox rows,
// tombstones, rollback, snapshots reproducible at every past version (also while writers race),
// and distinct versions for concurrent writers.
#include "store/control_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "support/pg.h"
#include "support/test_stack.h"

namespace synaps::store {
namespace {

using nlohmann::json;

using testing::Connect;

int64_t Scalar(db::Connection& conn, const std::string& sql, const db::Params& params = {}) {
  auto r = conn.Exec(sql, params);
  EXPECT_TRUE(r) << r.error().message;
  return r && r->rows() > 0 ? r->GetInt(0, 0) : -1;
}

json Prompt(const std::string& text) { return {{"template", text}}; }

const ControlActor kAlice{"key-alice", "acme", "because"};

class ControlStoreTest : public ::testing::Test {
 protected:
  ControlStoreTest() : url_(testing::TestStack::Get().FreshDatabase()), conn_(Connect(url_)) {}

  ControlWriteResult Put(const std::string& kind, const std::string& name, const json& spec,
                         const ControlActor& who = kAlice) {
    auto r = PutControlItem(conn_, kind, name, spec, who);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : ControlWriteResult{};
  }

  std::string url_;
  db::Connection conn_;
};

TEST_F(ControlStoreTest, EveryChangeIsANewVersionWithAnAuditRowAndAnOutboxRow) {
  EXPECT_EQ(*CurrentSnapshotVersion(conn_), 0);
  auto v1 = Put("prompts", "greet", Prompt("Hello {{name}}"));
  EXPECT_EQ(v1.version, 1);
  EXPECT_TRUE(v1.changed);
  EXPECT_TRUE(v1.created);
  EXPECT_GT(v1.snapshot_version, 0);
  auto v2 = Put("prompts", "greet", Prompt("Hi {{name}}"), {"key-bob", "beta", "shorter"});
  EXPECT_EQ(v2.version, 2);
  EXPECT_FALSE(v2.created);
  EXPECT_GT(v2.snapshot_version, v1.snapshot_version);
  EXPECT_EQ(*CurrentSnapshotVersion(conn_), v2.snapshot_version);

  // The change row: id = the snapshot version, with actor, tenant and reason.
  auto r = conn_.Exec(
      "SELECT id, kind, name, version, action, actor, actor_tenant, reason "
      "FROM synaps.control_change ORDER BY id");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->rows(), 2);
  EXPECT_EQ(r->GetInt(1, 0), v2.snapshot_version);
  EXPECT_EQ(r->GetString(1, 1), "prompts");
  EXPECT_EQ(r->GetString(1, 2), "greet");
  EXPECT_EQ(r->GetInt(1, 3), 2);
  EXPECT_EQ(r->GetString(1, 4), "put");
  EXPECT_EQ(r->GetString(1, 5), "key-bob");
  EXPECT_EQ(r->GetString(1, 6), "beta");
  EXPECT_EQ(r->GetString(1, 7), "shorter");

  // One outbox row per change, handed back for the relay.
  auto o = conn_.Exec("SELECT id, subject, payload::text FROM synaps.outbox ORDER BY id");
  ASSERT_TRUE(o);
  ASSERT_EQ(o->rows(), 2);
  EXPECT_EQ(o->GetString(1, 1), "synaps.ctrl.prompts");
  EXPECT_EQ(json::parse(o->Get(1, 2)), (json{{"kind", "prompts"},
                                             {"name", "greet"},
                                             {"version", 2},
                                             {"snapshotVersion", v2.snapshot_version}}));
  ASSERT_TRUE(v2.outbox);
  EXPECT_EQ(v2.outbox->id, o->GetInt(1, 0));
  EXPECT_EQ(v2.outbox->subject, "synaps.ctrl.prompts");
  EXPECT_EQ(json::parse(v2.outbox->payload)["snapshotVersion"], v2.snapshot_version);
  EXPECT_FALSE(v2.outbox->msg_id.empty());

  auto current = GetControlItem(conn_, "prompts", "greet");
  ASSERT_TRUE(current) << current.error().message;
  EXPECT_EQ(current->version, 2);
  EXPECT_EQ(current->spec, Prompt("Hi {{name}}"));
  EXPECT_EQ(current->change_id, v2.snapshot_version);
  EXPECT_EQ(current->actor, "key-bob");
  EXPECT_EQ(current->reason, "shorter");
  EXPECT_FALSE(current->at.empty());
  auto first = GetControlItem(conn_, "prompts", "greet", 1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->spec, Prompt("Hello {{name}}"));
  EXPECT_EQ(GetControlItem(conn_, "prompts", "greet", 3).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(GetControlItem(conn_, "prompts", "other").error().code, ErrorCode::kNotFound);
}

TEST_F(ControlStoreTest, AnIdenticalSpecWritesNothing) {
  json spec = json::parse(R"({"provider":"local","model":"echo","params":{"a":1,"b":2}})");
  auto first = Put("routes", "default", spec);
  // Same JSON with another key order: still identical.
  auto again = Put("routes", "default",
                   json::parse(R"({"params":{"b":2,"a":1},"model":"echo","provider":"local"})"));
  EXPECT_FALSE(again.changed);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.version, 1);
  EXPECT_EQ(again.snapshot_version, first.snapshot_version);
  EXPECT_FALSE(again.outbox);
  EXPECT_EQ(Scalar(conn_, "SELECT count(*) FROM synaps.control_change"), 1);
  EXPECT_EQ(Scalar(conn_, "SELECT count(*) FROM synaps.outbox"), 1);
}

TEST_F(ControlStoreTest, InvalidSpecsAndMissingReasonsWriteNothing) {
  auto bad = PutControlItem(conn_, "arbiters", "a",
                            json::parse(R"({"checks":[{"type":"judge","route":"j","rubric":"r",
                                                       "minScore":3}],"onFail":"retry"})"),
                            kAlice);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().field, "spec.checks[0].minScore");
  auto no_reason = PutControlItem(conn_, "prompts", "p", Prompt("x"), {"a", "t", "  "});
  ASSERT_FALSE(no_reason);
  EXPECT_EQ(no_reason.error().field, "reason");
  EXPECT_EQ(PutControlItem(conn_, "prompt", "p", Prompt("x"), kAlice).error().field, "kind");
  EXPECT_EQ(PutControlItem(conn_, "prompts", "P", Prompt("x"), kAlice).error().field, "name");
  EXPECT_EQ(Scalar(conn_, "SELECT count(*) FROM synaps.control_change"), 0);
  EXPECT_EQ(Scalar(conn_, "SELECT count(*) FROM synaps.outbox"), 0);
}

TEST_F(ControlStoreTest, DeleteWritesATombstone) {
  Put("prompts", "p", Prompt("one"));
  Put("prompts", "keep", Prompt("kept"));
  auto del = DeleteControlItem(conn_, "prompts", "p", {"key-ops", "acme", "retired"});
  ASSERT_TRUE(del) << del.error().message;
  EXPECT_EQ(del->version, 2);
  EXPECT_TRUE(del->changed);
  ASSERT_TRUE(del->outbox);
  EXPECT_EQ(json::parse(del->outbox->payload)["version"], 2);

  auto current = GetControlItem(conn_, "prompts", "p");
  ASSERT_FALSE(current);
  EXPECT_EQ(current.error().code, ErrorCode::kNotFound);
  EXPECT_NE(current.error().message.find("deleted in version 2"), std::string::npos);
  auto tomb = GetControlItem(conn_, "prompts", "p", 2);
  ASSERT_TRUE(tomb);
  EXPECT_TRUE(tomb->deleted);
  EXPECT_TRUE(tomb->spec.is_null());
  EXPECT_EQ(tomb->action, "delete");
  EXPECT_EQ(tomb->reason, "retired");

  auto list = ListControlItems(conn_, "prompts");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "keep");
  auto snap = LoadSnapshot(conn_, std::nullopt);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->FindPrompt("p"), nullptr);
  EXPECT_NE(snap->FindPrompt("keep"), nullptr);

  EXPECT_EQ(DeleteControlItem(conn_, "prompts", "p", kAlice).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(DeleteControlItem(conn_, "prompts", "never", kAlice).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(DeleteControlItem(conn_, "prompts", "keep", {"a", "t", ""}).error().field, "reason");

  // Putting it again continues its history.
  auto back = Put("prompts", "p", Prompt("two"));
  EXPECT_EQ(back.version, 3);
  EXPECT_TRUE(back.created);
}

TEST_F(ControlStoreTest, RollbackCopiesAnOldSpecAsANewVersion) {
  Put("skills", "s", json{{"system", "v1"}});
  Put("skills", "s", json{{"system", "v2"}});
  auto rb = RollbackControlItem(conn_, "skills", "s", 1, {"key-ops", "acme", "v2 broke it"});
  ASSERT_TRUE(rb) << rb.error().message;
  EXPECT_EQ(rb->version, 3);
  EXPECT_TRUE(rb->changed);
  auto now = GetControlItem(conn_, "skills", "s");
  ASSERT_TRUE(now);
  EXPECT_EQ(now->spec, (json{{"system", "v1"}}));
  EXPECT_EQ(now->action, "rollback");
  EXPECT_EQ(now->reason, "v2 broke it");

  // Rolling back to what is already current changes nothing.
  auto same = RollbackControlItem(conn_, "skills", "s", 1, kAlice);
  ASSERT_TRUE(same);
  EXPECT_FALSE(same->changed);
  EXPECT_EQ(same->version, 3);

  auto missing = RollbackControlItem(conn_, "skills", "s", 9, kAlice);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().field, "toVersion");
  EXPECT_NE(missing.error().message.find("latest is 3"), std::string::npos);

  // A tombstone is no target, but rollback restores a deleted item.
  ASSERT_TRUE(DeleteControlItem(conn_, "skills", "s", kAlice));
  auto to_tomb = RollbackControlItem(conn_, "skills", "s", 4, kAlice);
  ASSERT_FALSE(to_tomb);
  EXPECT_EQ(to_tomb.error().code, ErrorCode::kConflict);
  auto restored = RollbackControlItem(conn_, "skills", "s", 2, kAlice);
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ(restored->version, 5);
  EXPECT_TRUE(restored->created);
  EXPECT_EQ(GetControlItem(conn_, "skills", "s")->spec, (json{{"system", "v2"}}));
  EXPECT_EQ(RollbackControlItem(conn_, "skills", "nope", 1, kAlice).error().code,
            ErrorCode::kNotFound);
}

TEST_F(ControlStoreTest, SnapshotsAreReproducibleAtEveryPastVersion) {
  std::map<int64_t, json> seen;
  auto record = [&] {
    auto s = LoadSnapshot(conn_, std::nullopt);
    ASSERT_TRUE(s) << s.error().message;
    seen[s->version] = s->ToJson();
  };
  record();
  Put("prompts", "a", Prompt("a1"));
  record();
  Put("routes", "default", json::parse(R"({"provider":"local","model":"echo"})"));
  record();
  Put("prompts", "a", Prompt("a2"));
  record();
  Put("tools", "k8s.pods", json::parse(R"({"type":"builtin","description":"pods",
                                            "parameters":{"type":"object"}})"));
  record();
  ASSERT_TRUE(DeleteControlItem(conn_, "prompts", "a", kAlice));
  record();
  ASSERT_TRUE(RollbackControlItem(conn_, "prompts", "a", 1, kAlice));
  record();
  Put("arbiters", "budget", json::parse(R"({"checks":[{"type":"budget","maxTokens":10}],
                                            "onFail":"fail"})"));
  record();
  ASSERT_EQ(seen.size(), 8u);

  for (const auto& [version, expected] : seen) {
    auto again = LoadSnapshot(conn_, version);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(again->ToJson(), expected) << "snapshot " << version;
  }
  // Spot checks of what the snapshots hold.
  auto v0 = LoadSnapshot(conn_, 0);
  ASSERT_TRUE(v0);
  EXPECT_TRUE(v0->ToJson()["items"]["prompts"].empty());
  auto it = std::next(seen.begin(), 3);  // after a2
  EXPECT_EQ(it->second["items"]["prompts"]["a"]["spec"]["template"], "a2");
  EXPECT_EQ(it->second["items"]["prompts"]["a"]["version"], 2);
  it = std::next(seen.begin(), 5);  // after the delete
  EXPECT_FALSE(it->second["items"]["prompts"].contains("a"));
  it = std::next(seen.begin(), 6);  // after the rollback
  EXPECT_EQ(it->second["items"]["prompts"]["a"]["spec"]["template"], "a1");
  EXPECT_EQ(it->second["items"]["prompts"]["a"]["version"], 4);

  auto latest = *CurrentSnapshotVersion(conn_);
  auto future = LoadSnapshot(conn_, latest + 1);
  ASSERT_FALSE(future);
  EXPECT_EQ(future.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(LoadSnapshot(conn_, -1).error().code, ErrorCode::kInvalidArgument);

  // The typed views the worker uses.
  auto snap = LoadSnapshot(conn_, std::nullopt);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->version, latest);
  ASSERT_NE(snap->FindRoute("default"), nullptr);
  EXPECT_EQ(snap->FindRoute("default")->provider, "local");
  ASSERT_NE(snap->FindArbiter("budget"), nullptr);
  EXPECT_EQ(snap->FindArbiter("budget")->checks[0].max_tokens, 10);
  EXPECT_EQ(snap->FindTool("k8s.pods")->type, control::ToolType::kBuiltin);
}

TEST_F(ControlStoreTest, TheAuditLogPagesNewestFirstAndFilters) {
  Put("prompts", "a", Prompt("1"), {"alice", "acme", "r1"});
  Put("prompts", "b", Prompt("1"), {"bob", "acme", "r2"});
  Put("prompts", "a", Prompt("2"), {"alice", "acme", "r3"});
  Put("skills", "a", json{{"system", "x"}}, {"bob", "acme", "r4"});
  ASSERT_TRUE(DeleteControlItem(conn_, "prompts", "b", {"alice", "acme", "r5"}));
  Put("prompts", "a", Prompt("3"), {"carol", "beta", "r6"});
  Put("prompts", "c", Prompt("1"), {"alice", "acme", "r7"});

  std::vector<std::string> reasons;
  ControlChangeFilter f;
  f.limit = 3;
  int pages = 0;
  while (true) {
    auto page = ListControlChanges(conn_, f);
    ASSERT_TRUE(page) << page.error().message;
    ++pages;
    for (const auto& c : page->changes) {
      reasons.push_back(c.reason);
      EXPECT_TRUE(c.spec.is_null()) << "the audit log leaves specs out";
    }
    if (!page->next_cursor) break;
    f.before = page->next_cursor;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(reasons, (std::vector<std::string>{"r7", "r6", "r5", "r4", "r3", "r2", "r1"}));

  auto only = [&](ControlChangeFilter filter) {
    std::vector<std::string> out;
    auto page = ListControlChanges(conn_, filter);
    EXPECT_TRUE(page);
    for (const auto& c : page->changes) out.push_back(c.reason);
    return out;
  };
  EXPECT_EQ(only({.kind = "skills"}), std::vector<std::string>{"r4"});
  EXPECT_EQ(only({.kind = "prompts", .name = "a"}), (std::vector<std::string>{"r6", "r3", "r1"}));
  EXPECT_EQ(only({.name = "a"}), (std::vector<std::string>{"r6", "r4", "r3", "r1"}));
  EXPECT_EQ(only({.actor = "alice"}), (std::vector<std::string>{"r7", "r5", "r3", "r1"}));
  auto del = ListControlChanges(conn_, {.name = "b"});
  ASSERT_TRUE(del);
  EXPECT_EQ(del->changes[0].action, "delete");
  EXPECT_TRUE(del->changes[0].deleted);
  EXPECT_EQ(del->changes[0].actor_tenant, "acme");
}

TEST_F(ControlStoreTest, HistoryIsAppendOnly) {
  Put("prompts", "a", Prompt("1"));
  for (const char* sql :
       {"UPDATE synaps.control_change SET reason = 'rewritten'",
        "DELETE FROM synaps.control_change", "UPDATE synaps.control_items SET spec = '{}'",
        "DELETE FROM synaps.control_items", "TRUNCATE synaps.control_items",
        "TRUNCATE synaps.control_change CASCADE"}) {
    auto r = conn_.Exec(sql);
    EXPECT_FALSE(r) << sql;
  }
  EXPECT_EQ(GetControlItem(conn_, "prompts", "a")->reason, "because");
}

TEST_F(ControlStoreTest, ConcurrentWritersGetDistinctVersionsAndSnapshotsNeverChange) {
  constexpr int kWriters = 6;
  constexpr int kPuts = 20;
  std::mutex mu;
  std::vector<ControlWriteResult> results;  // guarded by mu
  std::map<int64_t, json> observed;         // guarded by mu: snapshots read while writing
  std::atomic<bool> writing{true};

  std::thread reader([&] {
    auto conn = Connect(url_);
    while (writing.load()) {
      auto s = LoadSnapshot(conn, std::nullopt);
      ASSERT_TRUE(s) << s.error().message;
      std::lock_guard lock(mu);
      observed.emplace(s->version, s->ToJson());
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto conn = Connect(url_);
      for (int i = 0; i < kPuts; ++i) {
        // Everyone writes the shared item; each writer also its own.
        for (const std::string& name : {std::string("shared"), "own-" + std::to_string(w)}) {
          auto r = PutControlItem(conn, "prompts", name,
                                  Prompt("w" + std::to_string(w) + " i" + std::to_string(i)),
                                  {"w" + std::to_string(w), "t", "race"});
          ASSERT_TRUE(r) << r.error().message;
          std::lock_guard lock(mu);
          results.push_back(*r);
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  writing = false;
  reader.join();

  ASSERT_EQ(results.size(), static_cast<size_t>(kWriters * kPuts * 2));
  std::set<int64_t> snapshot_versions;
  std::map<int, int64_t> shared;  // version -> change id
  for (const auto& r : results) {
    EXPECT_TRUE(r.changed);
    EXPECT_TRUE(snapshot_versions.insert(r.snapshot_version).second) << "snapshot versions repeat";
    if (r.name == "shared") {
      EXPECT_TRUE(shared.emplace(r.version, r.snapshot_version).second);
    }
  }
  ASSERT_EQ(shared.size(), static_cast<size_t>(kWriters * kPuts));
  EXPECT_EQ(shared.begin()->first, 1);
  EXPECT_EQ(shared.rbegin()->first, kWriters * kPuts) << "versions 1..N without gaps";
  int64_t last = 0;
  for (const auto& [version, change] : shared) {
    EXPECT_GT(change, last) << "item versions follow snapshot order";
    last = change;
  }
  EXPECT_EQ(
      Scalar(conn_, "SELECT count(*) FROM synaps.outbox WHERE subject = 'synaps.ctrl.prompts'"),
      kWriters * kPuts * 2);

  // What a reader saw at version N while writers raced is what version N is now: no change
  // with a lower id committed after N became visible.
  EXPECT_GT(observed.size(), 1u);
  for (const auto& [version, snapshot] : observed) {
    auto again = LoadSnapshot(conn_, version);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->ToJson(), snapshot) << "snapshot " << version << " changed after it was read";
  }
}

}  // namespace
}  // namespace synaps::store

namespace synaps::store {
namespace {

// A stored spec that does not read back (jsonb keeps 1e400, which no double holds) makes its one
// item invalid in the snapshot; the snapshot, and every other item, loads (docs/reliability.md,
// "Bus and thread barriers").
TEST_F(ControlStoreTest, ASpecThatDoesNotReadBackInvalidatesOnlyItsItem) {
  Put("prompts", "greet", Prompt("Hello {{name}}"));
  Put("prompts", "broken", Prompt("Bye {{name}}"));
  // Rows are immutable through the API; a person or an old release may still write one.
  ASSERT_TRUE(conn_.Exec("SET session_replication_role = replica"));
  ASSERT_TRUE(conn_.Exec(
      "UPDATE synaps.control_items SET spec = '{\"template\": 1e400}' WHERE name = 'broken'"));
  ASSERT_TRUE(conn_.Exec("SET session_replication_role = DEFAULT"));
  auto snap = LoadSnapshot(conn_, std::nullopt);
  ASSERT_TRUE(snap) << snap.error().message;
  EXPECT_NE(snap->FindPrompt("greet"), nullptr);
  EXPECT_EQ(snap->FindPrompt("broken"), nullptr);
  ASSERT_EQ(snap->invalid.size(), 1u);
  EXPECT_NE(snap->invalid[0].message.find("broken"), std::string::npos) << snap->invalid[0].message;
}

}  // namespace
}  // namespace synaps::store
