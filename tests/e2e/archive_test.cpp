// Archives of runs in the object store (docs/storage.md, "Archives") with the real binary: runs
// finish through a real API and worker, `synaps archive create` writes them (gzip JSON Lines and
// a manifest), the runs leave PostgreSQL as expiry would remove them, they are read back
// (`GET /v1/runs/{id}/archive`, `synaps runs get --archived`), `synaps gc` keeps their artifact
// objects, and `synaps archive restore` brings them back exactly: GET /v1/runs/{id} answers the
// same JSON as before.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/ids.h"
#include "core/process.h"
#include "history/gzip.h"
#include "support/cluster.h"
#include "support/synaps_process.h"
#include "support/test_stack.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;

struct CliRun {
  int exit_code = -1;
  std::string output;
  json last;  // the last line of output that is a JSON object (stdout and stderr share a file)

  // The error code of a --json failure ("" when there is none).
  std::string ErrorCode() const {
    if (!last.is_object() || !last.contains("error")) return "";
    return last["error"].value("code", "");
  }
};

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    c_.StartApi();
    c_.StartWorker();
  }

  // `synaps <args>` with the cluster's database, object store, API and admin token.
  CliRun Synaps(const std::vector<std::string>& args) {
    std::string log = testing::TestStack::Get().TempDir("cli") + "/out";
    ProcessOptions options;
    options.argv = {SYNAPS_BINARY};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.env = {{"SYNAPS_DATABASE_URL", c_.database_url()},
                   {"SYNAPS_OBJECT_STORE", "file://" + c_.objects_dir()},
                   {"SYNAPS_API_URL", c_.base_url()},
                   {"SYNAPS_TOKEN", Cluster::kToken}};
    options.log_path = log;
    auto child = ChildProcess::Spawn(options);
    EXPECT_TRUE(child) << child.error().message;
    CliRun run;
    if (!child) return run;
    auto status = child->Wait(std::chrono::seconds(60));
    EXPECT_TRUE(status.has_value());
    run.exit_code = status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    run.output = testing::ReadFile(log);
    std::istringstream in(run.output);
    for (std::string line; std::getline(in, line);) {
      json parsed = json::parse(line, nullptr, false);
      if (parsed.is_object()) run.last = std::move(parsed);  // stderr lines are text
    }
    return run;
  }

  std::string Text(const std::string& sql, const db::Params& params = {}) {
    auto r = c_.db().Exec(sql, params);
    EXPECT_TRUE(r) << r.error().message;
    return r && r->rows() > 0 ? r->GetString(0, 0) : "";
  }

  json Get(const std::string& path, int want = 200) {
    auto r = c_.Call("GET", path);
    EXPECT_EQ(r.status, want) << path << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }

  // What expiry does after a run was archived: every row of the run's story leaves PostgreSQL
  // (the ledger's append-only trigger is bypassed the way a partition drop bypasses it).
  void Expire(const std::string& run_id) {
    auto done = c_.db().Exec(
        "BEGIN; SET LOCAL session_replication_role = replica;"
        "DELETE FROM synaps.ledger_events WHERE run_id = '" +
        run_id +
        "';"
        "DELETE FROM synaps.artifact_versions WHERE run_id = '" +
        run_id +
        "';"
        "DELETE FROM synaps.artifacts WHERE run_id = '" +
        run_id +
        "';"
        "DELETE FROM synaps.queue_items WHERE run_id = '" +
        run_id +
        "';"
        "DELETE FROM synaps.tasks WHERE run_id = '" +
        run_id +
        "';"
        "WITH r AS (DELETE FROM synaps.runs WHERE id = '" +
        run_id +
        "' RETURNING command_id) DELETE FROM synaps.commands WHERE id IN (SELECT command_id FROM "
        "r);"
        "COMMIT;");
    ASSERT_TRUE(done) << done.error().message;
  }

  // Expiry as it runs (synaps.expire_runs) of `ids`: they finished two days ago and usage has
  // folded their events; the tenant keeps runs for a day.
  void ExpireForReal(const std::string& tenant, const std::vector<std::string>& ids) {
    std::string array = "{";
    for (const auto& id : ids) array += (array.size() > 1 ? "," : "") + id;
    array += "}";
    ASSERT_TRUE(
        c_.db().Exec("UPDATE synaps.runs SET created_at = now() - interval '2 days 1 hour',"
                     " finished_at = now() - interval '2 days' WHERE id = ANY ($1::uuid[])",
                     {array}));
    ASSERT_TRUE(
        c_.db().Exec("UPDATE synaps.usage_rollup SET last_event_id ="
                     " (SELECT max(id) FROM synaps.ledger_events)"));
    auto done =
        c_.db().Exec("SELECT synaps.expire_runs($1, $2::uuid[], 1)->>'runs'", {tenant, array});
    ASSERT_TRUE(done) << done.error().message;
    ASSERT_EQ(done->GetString(0, 0), std::to_string(ids.size()));
  }

  // A prompt run on `thread`, waited for; returns its id.
  std::string RunOnThread(const std::string& thread, const std::string& text,
                          const std::vector<std::string>& headers = {}) {
    json body = {{"kind", "prompt"}, {"input", {{"text", text}}}, {"threadId", thread}};
    std::string id = c_.Submit(body, headers)["runId"].get<std::string>();
    EXPECT_EQ(c_.WaitFinished(id)["status"], "succeeded");
    return id;
  }

  std::string LatestVersion(const std::string& thread) {
    return Text(
        "SELECT latest_version::text FROM synaps.artifacts WHERE thread_id = $1"
        " AND name = 'answer.md'",
        {thread});
  }

  Cluster c_;
};

TEST_F(ArchiveTest, ArchivedRunsReadBackSurviveGcAndRestoreExactly) {
  std::vector<std::string> ids;
  std::vector<json> before;
  for (const char* text : {"first archived answer", "second archived answer", "kept in place"}) {
    ids.push_back(c_.SubmitText(text)["runId"].get<std::string>());
  }
  for (const auto& id : ids) {
    ASSERT_EQ(c_.WaitFinished(id)["status"], "succeeded");
    before.push_back(Get("/v1/runs/" + id));
  }
  const std::string tenant = Text("SELECT tenant_id FROM synaps.runs WHERE id = $1", {ids[0]});
  const std::string day = Text("SELECT (now() AT TIME ZONE 'UTC')::date::text");

  // Archive two runs; the manifest names them, the data is gzip JSON Lines, one run a line.
  auto made =
      Synaps({"archive", "create", "--tenant", tenant, "--day", day, ids[0], ids[1], "--json"});
  ASSERT_EQ(made.exit_code, 0) << made.output;
  EXPECT_EQ(made.last["runs"], 2);
  EXPECT_EQ(made.last["alreadyArchived"], false);
  EXPECT_GE(made.last["events"].get<int>(), 4);
  const std::string data_path = c_.objects_dir() + "/" + made.last["dataKey"].get<std::string>();
  const std::string manifest_path =
      c_.objects_dir() + "/" + made.last["manifestKey"].get<std::string>();
  json manifest = json::parse(testing::ReadFile(manifest_path), nullptr, false);
  ASSERT_TRUE(manifest.is_object()) << testing::ReadFile(manifest_path);
  EXPECT_EQ(manifest["schemaVersion"], 1);
  EXPECT_EQ(manifest["tenant"], tenant);
  EXPECT_EQ(manifest["counts"]["runs"], 2);
  EXPECT_EQ(manifest["runs"].size(), 2u);
  EXPECT_EQ(manifest["objectKeys"].size(), 2u) << manifest.dump();
  auto lines = history::Gunzip(testing::ReadFile(data_path), 1 << 26);
  ASSERT_TRUE(lines) << lines.error().message;
  EXPECT_EQ(std::count(lines->begin(), lines->end(), '\n'), 2);

  // The same batch again: recorded already, nothing written twice.
  auto again =
      Synaps({"archive", "create", "--tenant", tenant, "--day", day, ids[1], ids[0], "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(again.last["alreadyArchived"], true);
  EXPECT_EQ(again.last["dataKey"], made.last["dataKey"]);

  for (int i : {0, 1}) Expire(ids[i]);
  Get("/v1/runs/" + ids[0], 404);

  // Read back from the archive, through the API and the CLI.
  json archived = Get("/v1/runs/" + ids[0] + "/archive");
  EXPECT_EQ(archived["run"]["id"], ids[0]);
  EXPECT_EQ(archived["archive"]["dataKey"], made.last["dataKey"]);
  EXPECT_EQ(archived["events"].size(), before[0]["events"].size());
  EXPECT_EQ(archived["artifactVersions"].size(), 1u);
  auto cli = Synaps({"runs", "get", "--archived", ids[1], "--json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_EQ(cli.last["run"]["id"], ids[1]);
  Get("/v1/runs/" + ids[2] + "/archive", 404);  // never archived

  // Another tenant's token does not see it.
  auto key =
      c_.Call("POST", "/v1/api-keys", json{{"tenantId", "other"}, {"role", "viewer"}}.dump());
  ASSERT_EQ(key.status, 201) << key.body;
  auto other = testing::ApiCall("GET", c_.base_url() + "/v1/runs/" + ids[0] + "/archive",
                                json::parse(key.body)["token"].get<std::string>(), "");
  EXPECT_EQ(other.status, 404) << other.body;

  // gc: no artifact version names the archived runs' objects any more, the archive does.
  auto gc = Synaps({"gc", "--older-than", "0", "--json", "--quiet"});
  ASSERT_EQ(gc.exit_code, 0) << gc.output;
  EXPECT_EQ(gc.last["deleted"].size(), 0u) << gc.output;
  EXPECT_EQ(gc.last["scanned"], 3);
  EXPECT_TRUE(std::filesystem::exists(data_path));

  // Restore one run by id, the other with the whole day; both read exactly as before.
  auto one = Synaps({"archive", "restore", ids[0], "--json"});
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_EQ(one.last["restored"], 1);
  auto day_restore = Synaps({"archive", "restore", "--tenant", tenant, "--day", day, "--json"});
  ASSERT_EQ(day_restore.exit_code, 0) << day_restore.output;
  EXPECT_EQ(day_restore.last["restored"], 1);
  EXPECT_EQ(day_restore.last["alreadyPresent"], 1);
  for (int i : {0, 1}) {
    EXPECT_EQ(Get("/v1/runs/" + ids[i]), before[i]) << "run " << i << " restored differently";
  }
  auto bytes =
      c_.Call("GET", "/v1/artifacts/" + before[0]["artifacts"][0]["id"].get<std::string>() +
                         "/versions/1/content");
  EXPECT_EQ(bytes.status, 200) << bytes.body;

  // A damaged member is refused (PostgreSQL holds its checksum), never half-read: 502, saying so.
  {
    std::string data = testing::ReadFile(data_path);
    data[data.size() / 2] ^= 0x01;
    std::ofstream(data_path, std::ios::binary | std::ios::trunc) << data;
  }
  for (int i : {0, 1}) {
    auto damaged = c_.Call("GET", "/v1/runs/" + ids[i] + "/archive");
    json error = json::parse(damaged.body, nullptr, false);
    if (damaged.status == 200) continue;  // the flipped byte is in the other run's member
    EXPECT_EQ(damaged.status, 502) << damaged.body;
    EXPECT_EQ(error["error"]["code"], "archive_corrupt") << damaged.body;
    EXPECT_NE(damaged.body.find("does not match the checksum PostgreSQL recorded"),
              std::string::npos)
        << damaged.body;
  }
}

// The retention expiry archives a tenant that archives before it deletes (`synaps expire` with
// an object store); `archive restore --keep` brings a run back for good: the next pass leaves it.
TEST_F(ArchiveTest, ExpiryArchivesFirstAndRestoreKeepSurvivesTheNextPass) {
  std::vector<std::string> ids;
  std::vector<json> before;
  for (const char* text : {"expires into the archive", "expires too"}) {
    ids.push_back(c_.SubmitText(text)["runId"].get<std::string>());
  }
  for (const auto& id : ids) {
    ASSERT_EQ(c_.WaitFinished(id)["status"], "succeeded");
    before.push_back(Get("/v1/runs/" + id));
  }
  const std::string tenant = Text("SELECT tenant_id FROM synaps.runs WHERE id = $1", {ids[0]});
  auto set = Synaps({"retention", "set", "--tenant", tenant, "--days", "1", "--archive", "on",
                     "--reason", "archive test", "--json"});
  ASSERT_EQ(set.exit_code, 0) << set.output;
  // Both runs finished two days ago, and usage has folded every event (expiry waits for that).
  auto age = [&] {
    ASSERT_TRUE(
        c_.db().Exec("UPDATE synaps.runs SET created_at = now() - interval '2 days 1 hour',"
                     " finished_at = now() - interval '2 days' WHERE tenant_id = $1",
                     {tenant}));
    ASSERT_TRUE(
        c_.db().Exec("UPDATE synaps.usage_rollup SET last_event_id = (SELECT max(id) FROM "
                     "synaps.ledger_events)"));
  };
  age();

  auto expired = Synaps({"expire", "--json"});
  ASSERT_EQ(expired.exit_code, 0) << expired.output;
  EXPECT_EQ(expired.last["total"]["runs"], 2) << expired.output;
  for (const auto& id : ids) {
    Get("/v1/runs/" + id, 404);
    json archived = Get("/v1/runs/" + id + "/archive");
    EXPECT_EQ(archived["run"]["id"], id);
    EXPECT_EQ(archived["events"].size(), before[ids[0] == id ? 0 : 1]["events"].size());
  }
  EXPECT_EQ(Text("SELECT count(*)::text FROM synaps.archived_runs WHERE tenant_id = $1", {tenant}),
            "2");

  // Restore one with --keep: it is back, marked to keep, and the next pass leaves it.
  auto restored = Synaps({"archive", "restore", ids[0], "--keep", "--json"});
  ASSERT_EQ(restored.exit_code, 0) << restored.output;
  EXPECT_EQ(restored.last["restored"], 1);
  EXPECT_EQ(restored.last["kept"], true);
  EXPECT_EQ(Text("SELECT keep::text FROM synaps.runs WHERE id = $1", {ids[0]}), "true");
  age();
  auto again = Synaps({"expire", "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(again.last["total"]["runs"], 0) << again.output;
  json back = Get("/v1/runs/" + ids[0]);
  EXPECT_EQ(back["status"], "succeeded");
  EXPECT_EQ(back["tasks"], before[0]["tasks"]);
}

// The object store is not trusted: a segment rewritten together with its manifest (here: a
// forged ledger event for another, live run) is refused by readers and restore, because its
// checksum is not the one PostgreSQL recorded; PostgreSQL itself refuses a story whose rows are
// not all its run's, and never writes into a run that exists. A segment without a record is
// restored only with --unrecorded.
TEST_F(ArchiveTest, RestoreRefusesTamperedArchivesAndForeignRows) {
  const std::string archived = c_.SubmitText("to be archived")["runId"].get<std::string>();
  const std::string live = c_.SubmitText("a live run")["runId"].get<std::string>();
  for (const auto& id : {archived, live}) ASSERT_EQ(c_.WaitFinished(id)["status"], "succeeded");
  const std::string tenant = Text("SELECT tenant_id FROM synaps.runs WHERE id = $1", {archived});
  const std::string day = Text("SELECT (now() AT TIME ZONE 'UTC')::date::text");
  const std::string live_events =
      Text("SELECT count(*)::text FROM synaps.ledger_events WHERE run_id = $1", {live});
  auto made = Synaps({"archive", "create", "--tenant", tenant, "--day", day, archived, "--json"});
  ASSERT_EQ(made.exit_code, 0) << made.output;
  Expire(archived);

  // Forge: one more ledger event, for the live run, in the archived story; data and manifest
  // rewritten consistently (as someone with write access to the bucket could).
  const std::string data_path = c_.objects_dir() + "/" + made.last["dataKey"].get<std::string>();
  const std::string manifest_path =
      c_.objects_dir() + "/" + made.last["manifestKey"].get<std::string>();
  auto text = history::Gunzip(testing::ReadFile(data_path), 1 << 26);
  ASSERT_TRUE(text) << text.error().message;
  json story = json::parse(*text);
  json forged = story["events"][0];
  forged["id"] = 999999999;
  forged["run_id"] = live;
  forged["task_id"] = nullptr;
  forged["seq"] = 999;
  story["events"].push_back(forged);
  const std::string member = history::GzipMember(story.dump() + "\n");
  json manifest = json::parse(testing::ReadFile(manifest_path));
  manifest["sha256"] = Sha256Hex(member);
  manifest["runs"][0]["offset"] = 0;
  manifest["runs"][0]["length"] = member.size();
  { std::ofstream(data_path, std::ios::binary | std::ios::trunc) << member; }
  { std::ofstream(manifest_path, std::ios::trunc) << manifest.dump(); }

  EXPECT_EQ(c_.Call("GET", "/v1/runs/" + archived + "/archive").status, 502);
  auto by_id = Synaps({"archive", "restore", archived, "--json"});
  EXPECT_EQ(by_id.exit_code, 1) << by_id.output;
  EXPECT_EQ(by_id.ErrorCode(), "archive_corrupt") << by_id.output;
  // The run's recorded member is read: not the bytes PostgreSQL recorded (here the rewritten
  // object is shorter than the original member; otherwise its checksum differs).
  EXPECT_TRUE(by_id.output.find("does not match the checksum PostgreSQL recorded") !=
                  std::string::npos ||
              by_id.output.find("ends before byte") != std::string::npos)
      << by_id.output;
  auto unrecorded =
      Synaps({"archive", "restore", "--tenant", tenant, "--day", day, "--unrecorded", "--json"});
  EXPECT_EQ(unrecorded.exit_code, 1) << unrecorded.output;  // recorded: still checked

  // PostgreSQL refuses the forged story itself, and leaves an existing run alone.
  auto refused = c_.db().Exec("SELECT synaps.restore_archived_run($1::jsonb)", {story.dump()});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("ledger event is not of this run"), std::string::npos)
      << refused.error().message;
  json over_live = story;
  over_live["run"]["id"] = live;
  auto left = c_.db().Exec("SELECT synaps.restore_archived_run($1::jsonb)", {over_live.dump()});
  ASSERT_TRUE(left) << left.error().message;
  EXPECT_EQ(left->GetString(0, 0), "f");
  EXPECT_EQ(Text("SELECT count(*)::text FROM synaps.ledger_events WHERE run_id = $1", {live}),
            live_events);
  Get("/v1/runs/" + archived, 404);
  // A run alone in its thread has no thread row (migration 0045): its story says so, and a
  // story moved into another tenant's lone thread is refused by that thread's runs.
  EXPECT_TRUE(story["thread"].is_null()) << story["thread"].dump();
  json intruder = story;
  intruder["events"].erase(intruder["events"].size() - 1);
  intruder["run"]["tenant_id"] = "intruder";
  intruder["run"]["thread_id"] =
      Text("SELECT thread_id::text FROM synaps.runs WHERE id = $1", {live});
  auto foreign = c_.db().Exec("SELECT synaps.restore_archived_run($1::jsonb)", {intruder.dump()});
  ASSERT_FALSE(foreign);
  EXPECT_NE(foreign.error().message.find("the run's thread belongs to another tenant"),
            std::string::npos)
      << foreign.error().message;

  // Without PostgreSQL's record, a segment is restored only when the operator says so.
  story["events"].erase(story["events"].size() - 1);
  const std::string honest = history::GzipMember(story.dump() + "\n");
  manifest["sha256"] = Sha256Hex(honest);
  manifest["runs"][0]["length"] = honest.size();
  { std::ofstream(data_path, std::ios::binary | std::ios::trunc) << honest; }
  { std::ofstream(manifest_path, std::ios::trunc) << manifest.dump(); }
  ASSERT_TRUE(c_.db().Exec("DELETE FROM synaps.archives WHERE tenant_id = $1", {tenant}));
  auto refused_cli = Synaps({"archive", "restore", "--tenant", tenant, "--day", day, "--json"});
  EXPECT_EQ(refused_cli.exit_code, 1) << refused_cli.output;
  EXPECT_EQ(refused_cli.ErrorCode(), "conflict") << refused_cli.output;
  auto trusted =
      Synaps({"archive", "restore", "--tenant", tenant, "--day", day, "--unrecorded", "--json"});
  ASSERT_EQ(trusted.exit_code, 0) << trusted.output;
  EXPECT_EQ(trusted.last["restored"], 1);
  EXPECT_EQ(Get("/v1/runs/" + archived)["status"], "succeeded");
}

// Runs of one thread restored out of order (review 8, MUST FIX 2): every run of the thread
// expired, so the thread's artifact row went with them; each archive holds the row as it was
// when that run was archived. The row comes back owned by a run that exists, its latest_version
// ends at the highest version restored (never lowered by an older story), and the thread's next
// answer gets the next number.
TEST_F(ArchiveTest, RunsOfOneThreadRestoreInAnyOrder) {
  json first = c_.SubmitText("turn one");
  const std::string thread = first["threadId"].get<std::string>();
  std::vector<std::string> ids = {first["runId"].get<std::string>()};
  ASSERT_EQ(c_.WaitFinished(ids[0])["status"], "succeeded");
  const std::string tenant = Text("SELECT tenant_id FROM synaps.runs WHERE id = $1", {ids[0]});
  const std::string day = Text("SELECT (now() AT TIME ZONE 'UTC')::date::text");
  const std::string artifact =
      Text("SELECT id::text FROM synaps.artifacts WHERE thread_id = $1", {thread});
  // Each run archived on its own right after it finished: run k's story has latest_version k.
  for (int k = 0; k < 3; ++k) {
    if (k > 0) ids.push_back(RunOnThread(thread, "turn " + std::to_string(k + 1)));
    auto made = Synaps({"archive", "create", "--tenant", tenant, "--day", day, ids[k], "--json"});
    ASSERT_EQ(made.exit_code, 0) << made.output;
  }
  ASSERT_EQ(LatestVersion(thread), "3");
  ExpireForReal(tenant, ids);
  EXPECT_EQ(Text("SELECT count(*)::text FROM synaps.artifacts WHERE thread_id = $1", {thread}),
            "0");

  // The second run first: the row's archived owner (the first run) is gone, so it owns it.
  for (auto [k, latest] : std::vector<std::pair<int, const char*>>{{1, "2"}, {0, "2"}, {2, "3"}}) {
    auto restored = Synaps({"archive", "restore", ids[k], "--json"});
    ASSERT_EQ(restored.exit_code, 0) << restored.output;
    EXPECT_EQ(restored.last["restored"], 1);
    EXPECT_EQ(restored.last["artifactsMapped"], 0);
    EXPECT_EQ(LatestVersion(thread), latest) << "after restoring run " << k;
    if (k == 1) {
      EXPECT_EQ(Text("SELECT run_id::text FROM synaps.artifacts WHERE id = $1", {artifact}),
                ids[1]);
    }
  }
  for (int k = 0; k < 3; ++k) {
    json run = Get("/v1/runs/" + ids[k]);
    ASSERT_EQ(run["artifacts"].size(), 1u) << run.dump();
    EXPECT_EQ(run["artifacts"][0]["id"], artifact);
    EXPECT_EQ(run["artifacts"][0]["versions"][0]["version"], k + 1) << run.dump();
  }
  // The thread goes on after the highest version.
  const std::string next = RunOnThread(thread, "turn four");
  json run = Get("/v1/runs/" + next);
  EXPECT_EQ(run["artifacts"][0]["versions"][0]["version"], 4) << run.dump();
  EXPECT_EQ(LatestVersion(thread), "4");
}

// A thread used again after its runs expired has its artifact under a new id (expiry deleted
// the old row). A restored run's versions go under that row, and its events name it; a version
// number the new row holds already refuses the restore, naming it (not a foreign-key error),
// and nothing of that run is written.
TEST_F(ArchiveTest, RestoreIntoAThreadUsedSinceMapsItsArtifacts) {
  json first = c_.SubmitText("before expiry");
  const std::string thread = first["threadId"].get<std::string>();
  const std::string r1 = first["runId"].get<std::string>();
  ASSERT_EQ(c_.WaitFinished(r1)["status"], "succeeded");
  const std::string r2 = RunOnThread(thread, "also before expiry");
  const std::string tenant = Text("SELECT tenant_id FROM synaps.runs WHERE id = $1", {r1});
  const std::string day = Text("SELECT (now() AT TIME ZONE 'UTC')::date::text");
  const std::string old_artifact =
      Text("SELECT id::text FROM synaps.artifacts WHERE thread_id = $1", {thread});
  auto made = Synaps({"archive", "create", "--tenant", tenant, "--day", day, r1, r2, "--json"});
  ASSERT_EQ(made.exit_code, 0) << made.output;
  ExpireForReal(tenant, {r1, r2});

  const std::string r3 = RunOnThread(thread, "after expiry");
  const std::string new_artifact =
      Text("SELECT id::text FROM synaps.artifacts WHERE thread_id = $1", {thread});
  ASSERT_NE(new_artifact, old_artifact);
  ASSERT_EQ(LatestVersion(thread), "1");

  // The second run's version 2 is free: it goes under the thread's current row.
  auto restored = Synaps({"archive", "restore", r2, "--json"});
  ASSERT_EQ(restored.exit_code, 0) << restored.output;
  EXPECT_EQ(restored.last["restored"], 1);
  EXPECT_EQ(restored.last["artifactsMapped"], 1);
  EXPECT_EQ(LatestVersion(thread), "2");
  json run = Get("/v1/runs/" + r2);
  ASSERT_EQ(run["artifacts"].size(), 1u) << run.dump();
  EXPECT_EQ(run["artifacts"][0]["id"], new_artifact);
  EXPECT_EQ(run["artifacts"][0]["versions"][0]["version"], 2);
  for (const auto& e : run["events"]) {
    if (e["type"] == "artifact.created") {
      EXPECT_EQ(e["data"]["artifactId"], new_artifact);
    }
  }
  auto bytes = c_.Call("GET", "/v1/artifacts/" + new_artifact + "/versions/2/content");
  EXPECT_EQ(bytes.status, 200) << bytes.body;
  EXPECT_NE(bytes.body.find("also before expiry"), std::string::npos) << bytes.body;

  // The first run's version 1 is the third run's now: refused, saying so; nothing written.
  auto refused = Synaps({"archive", "restore", r1, "--json"});
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_EQ(refused.ErrorCode(), "already_exists") << refused.output;
  EXPECT_NE(refused.output.find("version 1 of artifact 'answer.md' exists already"),
            std::string::npos)
      << refused.output;
  EXPECT_NE(refused.output.find(r3), std::string::npos) << refused.output;
  Get("/v1/runs/" + r1, 404);
  EXPECT_EQ(Text("SELECT count(*)::text FROM synaps.tasks WHERE run_id = $1", {r1}), "0");

  // The thread goes on after the highest version.
  const std::string r4 = RunOnThread(thread, "later still");
  EXPECT_EQ(Get("/v1/runs/" + r4)["artifacts"][0]["versions"][0]["version"], 3);
}

// An idempotency key is free again once its command expired; a new command may take it. The
// archived command then comes back without its key, and restore says so.
TEST_F(ArchiveTest, RestoreDropsAnIdempotencyKeyTakenSince) {
  const std::vector<std::string> key = {"Idempotency-Key: reused-after-expiry"};
  const json body = {{"kind", "prompt"}, {"input", {{"text", "keyed"}}}};
  const std::string old_run = c_.Submit(body, key)["runId"].get<std::string>();
  ASSERT_EQ(c_.WaitFinished(old_run)["status"], "succeeded");
  const std::string tenant = Text("SELECT tenant_id FROM synaps.runs WHERE id = $1", {old_run});
  const std::string day = Text("SELECT (now() AT TIME ZONE 'UTC')::date::text");
  auto made = Synaps({"archive", "create", "--tenant", tenant, "--day", day, old_run, "--json"});
  ASSERT_EQ(made.exit_code, 0) << made.output;
  ExpireForReal(tenant, {old_run});

  json fresh = c_.Submit(body, key);  // 201: the key is free
  const std::string new_run = fresh["runId"].get<std::string>();
  ASSERT_NE(new_run, old_run);
  ASSERT_EQ(c_.WaitFinished(new_run)["status"], "succeeded");

  auto restored = Synaps({"archive", "restore", old_run, "--json"});
  ASSERT_EQ(restored.exit_code, 0) << restored.output;
  EXPECT_EQ(restored.last["restored"], 1);
  EXPECT_EQ(restored.last["idempotencyKeysDropped"],
            json::array({{{"runId", old_run}, {"idempotencyKey", "reused-after-expiry"}}}))
      << restored.output;
  EXPECT_EQ(Get("/v1/runs/" + old_run)["status"], "succeeded");
  EXPECT_EQ(Text("SELECT coalesce(c.idempotency_key, 'none') FROM synaps.commands c"
                 " JOIN synaps.runs r ON r.command_id = c.id WHERE r.id = $1",
                 {old_run}),
            "none");
  // The key still answers with the new command.
  auto again = c_.Call("POST", "/v1/commands/submit", body.dump(), key);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(json::parse(again.body)["runId"], new_run);
}

// Archive and delete are one step across processes: while another session holds the tenant's
// archive lock (another API replica expiring it), expiry leaves the tenant and `archive create`
// refuses. A run that changed after an earlier archive of it (here: kept and released, two
// ledger events) is archived anew before it is deleted, not taken as archived by the old one.
TEST_F(ArchiveTest, ExpiryHoldsTheTenantsArchiveLockAndArchivesAChangedRunAnew) {
  const std::string id = c_.SubmitText("changes after its first archive")["runId"];
  ASSERT_EQ(c_.WaitFinished(id)["status"], "succeeded");
  const std::string tenant = Text("SELECT tenant_id FROM synaps.runs WHERE id = $1", {id});
  const std::string day = Text("SELECT (now() AT TIME ZONE 'UTC')::date::text");
  auto set = Synaps({"retention", "set", "--tenant", tenant, "--days", "1", "--archive", "on",
                     "--reason", "archive lock test", "--json"});
  ASSERT_EQ(set.exit_code, 0) << set.output;
  auto early = Synaps({"archive", "create", "--tenant", tenant, "--day", day, id, "--json"});
  ASSERT_EQ(early.exit_code, 0) << early.output;
  for (bool keep : {true, false}) {
    auto r = c_.Call("POST", "/v1/runs/" + id + "/keep", json{{"keep", keep}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  const size_t events = Get("/v1/runs/" + id)["events"].size();
  ASSERT_TRUE(
      c_.db().Exec("UPDATE synaps.runs SET created_at = now() - interval '2 days 1 hour',"
                   " finished_at = now() - interval '2 days' WHERE id = $1",
                   {id}));
  ASSERT_TRUE(c_.db().Exec(
      "UPDATE synaps.usage_rollup SET last_event_id = (SELECT max(id) FROM synaps.ledger_events)"));

  // Another session holds the tenant's lock: nothing of the tenant is archived or deleted.
  ASSERT_TRUE(c_.db().Exec("SELECT pg_advisory_lock(7340033, hashtext($1))", {tenant}));
  auto held = Synaps({"expire", "--json"});
  ASSERT_EQ(held.exit_code, 0) << held.output;
  EXPECT_EQ(held.last["total"]["runs"], 0) << held.output;
  EXPECT_NE(held.output.find("another process is archiving or expiring this tenant"),
            std::string::npos)
      << held.output;
  auto refused = Synaps({"archive", "create", "--tenant", tenant, "--day", day, id, "--json"});
  EXPECT_EQ(refused.ErrorCode(), "conflict") << refused.output;
  ASSERT_TRUE(c_.db().Exec("SELECT pg_advisory_unlock(7340033, hashtext($1))", {tenant}));

  // Released: the changed run is archived to a new segment, then deleted.
  auto expired = Synaps({"expire", "--json"});
  ASSERT_EQ(expired.exit_code, 0) << expired.output;
  EXPECT_EQ(expired.last["total"]["runs"], 1) << expired.output;
  json archived = Get("/v1/runs/" + id + "/archive");
  EXPECT_NE(archived["archive"]["dataKey"], early.last["dataKey"]);
  EXPECT_EQ(archived["events"].size(), events) << "deleted with a stale archive";
  // Internals are not shown to readers.
  EXPECT_FALSE(archived["command"].contains("request_hash")) << archived["command"].dump();
  EXPECT_FALSE(archived["command"].contains("idempotency_key"));
  EXPECT_FALSE(archived["command"].contains("submitted_by"));
  for (const auto& q : archived["queueItems"]) {
    EXPECT_FALSE(q.contains("lease_owner")) << q.dump();
    EXPECT_FALSE(q.contains("held")) << q.dump();
  }
}

TEST_F(ArchiveTest, RefusesBadInputAndUnfinishedRuns) {
  auto bad_day = Synaps({"archive", "create", "--tenant", "t", "--day", "2026-02-30",
                         "00000000-0000-0000-0000-000000000000", "--json"});
  EXPECT_EQ(bad_day.exit_code, 1);
  EXPECT_EQ(bad_day.ErrorCode(), "invalid_argument") << bad_day.output;
  auto bad_tenant = Synaps({"archive", "create", "--tenant", "../x", "--day", "2026-02-03",
                            "00000000-0000-0000-0000-000000000000", "--json"});
  EXPECT_EQ(bad_tenant.ErrorCode(), "invalid_argument") << bad_tenant.output;
  auto bad_id =
      Synaps({"archive", "create", "--tenant", "t", "--day", "2026-02-03", "x'--", "--json"});
  EXPECT_EQ(bad_id.ErrorCode(), "invalid_argument") << bad_id.output;
  auto missing = Synaps({"archive", "create", "--tenant", "t", "--day", "2026-02-03",
                         "00000000-0000-0000-0000-000000000000", "--json"});
  EXPECT_EQ(missing.ErrorCode(), "not_found") << missing.output;
  // A run that has not finished stays out of archives.
  json later = c_.Submit(
      {{"kind", "prompt"}, {"input", {{"text", "later"}}}, {"notBefore", "2099-01-01T00:00:00Z"}});
  const std::string tenant =
      Text("SELECT tenant_id FROM synaps.runs WHERE id = $1", {later["runId"].get<std::string>()});
  auto queued = Synaps({"archive", "create", "--tenant", tenant, "--day", "2026-02-03",
                        later["runId"].get<std::string>(), "--json"});
  EXPECT_EQ(queued.ErrorCode(), "conflict") << queued.output;
  Get("/v1/runs/not-a-uuid/archive", 400);
  // Nothing was written for any of them.
  EXPECT_FALSE(std::filesystem::exists(c_.objects_dir() + "/archives"));
}

}  // namespace
}  // namespace synaps
