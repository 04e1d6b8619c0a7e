// The client verbs of the real `synaps` binary against a real API and worker: submit, runs
// list|get|watch|cancel, artifacts get, keys create|revoke; human output, --json, exit codes and
// the messages a person sees when the API is down or refuses.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/process.h"
#include "support/cluster.h"
#include "support/test_stack.h"

extern char** environ;

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;

  std::vector<json> JsonLines() const {
    std::vector<json> lines;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) lines.push_back(json::parse(line, nullptr, false));
    }
    return lines;
  }
};

std::string Describe(const CliResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout\n" + r.out + "\n--- stderr\n" +
         r.err;
}

// Runs `synaps <args>` as a child with its own stdout and stderr files.
class Cli {
 public:
  Cli(std::string api_url, std::string token)
      : api_url_(std::move(api_url)),
        token_(std::move(token)),
        dir_(testing::TestStack::Get().TempDir("cli")) {}

  // A started command; Finish() waits for it.
  struct Started {
    pid_t pid = -1;
    std::string out_path;
    std::string err_path;
  };

  Started Start(const std::vector<std::string>& args, const std::string& token_override = {}) {
    Started s;
    int n = runs_++;
    s.out_path = dir_ + "/out" + std::to_string(n);
    s.err_path = dir_ + "/err" + std::to_string(n);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, s.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_addopen(&actions, 2, s.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    std::vector<std::string> argv_s = {SYNAPS_BINARY};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    auto env_s = Environment(token_override.empty() ? token_ : token_override);
    auto argv = Pointers(argv_s);
    auto envp = Pointers(env_s);
    int rc = posix_spawn(&s.pid, SYNAPS_BINARY, &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(rc, 0) << "posix_spawn: " << rc;
    return s;
  }

  CliResult Finish(const Started& s, int timeout_seconds = 60) {
    CliResult r;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    int status = 0;
    while (waitpid(s.pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(s.pid, SIGKILL);
        waitpid(s.pid, &status, 0);
        ADD_FAILURE() << "synaps did not exit within " << timeout_seconds << " s";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = testing::ReadFile(s.out_path);
    r.err = testing::ReadFile(s.err_path);
    return r;
  }

  CliResult Run(const std::vector<std::string>& args, const std::string& token_override = {}) {
    return Finish(Start(args, token_override));
  }

  // Runs the command with stdout and stderr on a pseudo-terminal; returns what it wrote there.
  CliResult RunOnTerminal(const std::vector<std::string>& args) {
    std::vector<std::string> argv_s = {SYNAPS_BINARY};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    auto env_s = Environment(token_);
    auto argv = Pointers(argv_s);
    auto envp = Pointers(env_s);
    int master = -1;
    pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    if (pid == 0) {
      execve(SYNAPS_BINARY, argv.data(), envp.data());
      _exit(127);
    }
    CliResult r;
    EXPECT_GT(pid, 0);
    if (pid <= 0) return r;
    char buf[4096];
    while (true) {
      ssize_t n = read(master, buf, sizeof buf);
      if (n <= 0) break;  // EIO once the child closed the terminal
      r.out.append(buf, static_cast<size_t>(n));
    }
    close(master);
    int status = 0;
    waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
  }

 private:
  std::vector<std::string> Environment(const std::string& token) const {
    std::map<std::string, std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string kv = *e;
      size_t eq = kv.find('=');
      if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    env["SYNAPS_API_URL"] = api_url_;
    env["SYNAPS_TOKEN"] = token;
    env["SYNAPS_STATE_DIR"] = dir_ + "/state";  // never a developer's .synaps/
    std::vector<std::string> out;
    for (const auto& [k, v] : env) out.push_back(k + "=" + v);
    return out;
  }

  static std::vector<char*> Pointers(std::vector<std::string>& strings) {
    std::vector<char*> out;
    for (auto& s : strings) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
  }

  std::string api_url_;
  std::string token_;
  std::string dir_;
  int runs_ = 0;
};

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The ledger events of a `runs watch --json` output are each shown once, in order, from seq 1.
void ExpectDenseEvents(const std::vector<json>& lines, const std::string& final_status) {
  ASSERT_GE(lines.size(), 2u);
  int64_t want = 1;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    ASSERT_TRUE(lines[i].is_object()) << "line " << i << " is not JSON";
    EXPECT_EQ(lines[i]["seq"], want) << lines[i].dump();
    ++want;
  }
  EXPECT_EQ(lines.front()["type"], "run.created");
  EXPECT_EQ(lines.back(), (json{{"type", "end"}, {"status", final_status}}));
  EXPECT_EQ(lines[lines.size() - 2]["type"], "run." + final_status);
}

TEST(CliTest, SubmitListWatchAndFetchTheArtifact) {
  Cluster c;
  c.StartApi();
  c.StartWorker();
  Cli cli(c.base_url(), Cluster::kToken);

  auto submitted = cli.Run({"submit", "Summarize the CLI in one line", "--json"});
  ASSERT_EQ(submitted.exit_code, 0) << Describe(submitted);
  const std::string run_id = json::parse(submitted.out)["runId"];

  auto listed = cli.Run({"runs", "list", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << Describe(listed);
  json page = json::parse(listed.out);
  ASSERT_FALSE(page["items"].empty());
  EXPECT_EQ(page["items"][0]["id"], run_id);
  auto table = cli.Run({"runs", "list"});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  EXPECT_TRUE(Contains(table.out, "RUN")) << table.out;
  EXPECT_TRUE(Contains(table.out, run_id)) << table.out;

  auto watched = cli.Run({"runs", "watch", run_id});
  ASSERT_EQ(watched.exit_code, 0) << Describe(watched);
  EXPECT_TRUE(Contains(watched.out, "task.completed")) << watched.out;
  EXPECT_TRUE(Contains(watched.out, "run " + run_id + " succeeded after")) << watched.out;
  EXPECT_TRUE(Contains(watched.out, "(1/1 tasks done)")) << watched.out;
  EXPECT_FALSE(Contains(watched.out, "\033[K")) << "no progress line when stdout is not a terminal";

  auto watched_json = cli.Run({"runs", "watch", run_id, "--json"});
  ASSERT_EQ(watched_json.exit_code, 0) << Describe(watched_json);
  ExpectDenseEvents(watched_json.JsonLines(), "succeeded");

  auto got = cli.Run({"runs", "get", run_id, "--json"});
  ASSERT_EQ(got.exit_code, 0) << Describe(got);
  json run = json::parse(got.out);
  ASSERT_EQ(run["artifacts"].size(), 1u) << got.out;
  const std::string artifact_id = run["artifacts"][0]["id"];
  // The human form prints the task's answer under its line.
  ASSERT_TRUE(run["tasks"][0]["answer"].is_string()) << got.out;
  auto human = cli.Run({"runs", "get", run_id});
  ASSERT_EQ(human.exit_code, 0) << Describe(human);
  EXPECT_TRUE(Contains(human.out, "main  succeeded  attempt 1\n      | " +
                                      run["tasks"][0]["answer"].get<std::string>() + "\n"))
      << human.out;
  auto http_bytes = c.Call("GET", "/v1/artifacts/" + artifact_id + "/versions/1/content");
  ASSERT_EQ(http_bytes.status, 200);
  ASSERT_FALSE(http_bytes.body.empty());

  auto bytes = cli.Run({"artifacts", "get", artifact_id});
  ASSERT_EQ(bytes.exit_code, 0) << Describe(bytes);
  EXPECT_EQ(bytes.out, http_bytes.body);

  std::string file = testing::TestStack::Get().TempDir("cli-artifact") + "/answer.md";
  auto to_file = cli.Run({"artifacts", "get", artifact_id, "--version", "1", "-o", file});
  ASSERT_EQ(to_file.exit_code, 0) << Describe(to_file);
  EXPECT_EQ(testing::ReadFile(file), http_bytes.body);
  EXPECT_TRUE(Contains(to_file.out, "wrote " + std::to_string(http_bytes.body.size()) + " bytes"))
      << to_file.out;

  auto meta = cli.Run({"artifacts", "get", artifact_id, "--json"});
  ASSERT_EQ(meta.exit_code, 0) << Describe(meta);
  json m = json::parse(meta.out);
  EXPECT_EQ(m["version"], 1);
  EXPECT_EQ(m["content"], http_bytes.body);
  EXPECT_EQ(m["sha256"], run["artifacts"][0]["versions"][0]["sha256"]);
  EXPECT_EQ(m["contentType"], "text/markdown");

  auto missing = cli.Run({"artifacts", "get", artifact_id, "--version", "7"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(Contains(missing.err, "not found (HTTP 404)")) << missing.err;

  // Cancelling a finished run is refused, and says why.
  auto cancel = cli.Run({"runs", "cancel", run_id});
  EXPECT_EQ(cancel.exit_code, 1) << Describe(cancel);
  EXPECT_TRUE(Contains(cancel.err, "conflict (HTTP 409)")) << cancel.err;
  EXPECT_TRUE(Contains(cancel.err, "already finished")) << cancel.err;
  auto cancel_json = cli.Run({"runs", "cancel", run_id, "--json"});
  EXPECT_EQ(cancel_json.exit_code, 1);
  EXPECT_EQ(json::parse(cancel_json.out)["error"]["code"], "conflict") << cancel_json.out;

  // What it cost: one task, as the ledger has it.
  auto usage = cli.Run({"usage"});
  ASSERT_EQ(usage.exit_code, 0) << Describe(usage);
  EXPECT_TRUE(Contains(usage.out, "IN TOKENS")) << usage.out;
  EXPECT_TRUE(Contains(usage.out, "total")) << usage.out;
  EXPECT_TRUE(Contains(usage.out, "without params.pricing")) << usage.out;
  auto usage_json = cli.Run({"usage", "--group-by", "", "--json"});
  ASSERT_EQ(usage_json.exit_code, 0) << Describe(usage_json);
  EXPECT_EQ(json::parse(usage_json.out)["totals"]["succeeded"], 1) << usage_json.out;
  auto bad_day = cli.Run({"usage", "--from", "yesterday"});
  EXPECT_EQ(bad_day.exit_code, 1);
  EXPECT_TRUE(Contains(bad_day.err, "from must be a date, YYYY-MM-DD")) << bad_day.err;
}

TEST(CliTest, SubmitFileSendsBatchesAndNamesTheFailingLines) {
  Cluster c;
  c.StartApi();
  c.StartWorker();
  Cli cli(c.base_url(), Cluster::kToken);
  const std::string path = testing::TestStack::Get().TempDir("jsonl") + "/commands.jsonl";
  {
    // Lines 1-5 valid, 6 blank (skipped), 7 malformed, 8 without input, 9 valid.
    std::ofstream f(path);
    for (int i = 1; i <= 5; ++i) f << R"({"kind":"prompt","input":{"text":"line )" << i << "\"}}\n";
    f << "\n{not json\n"
      << R"({"kind":"prompt"})" << '\n';
    f << R"({"kind":"prompt","input":{"text":"last"}})" << '\n';
  }
  // Batches of 2: five requests, progress on stderr, the summary on stdout.
  auto r = cli.Run({"submit", "--file", path, "--batch-size", "2", "--idempotency-key", "imp"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_TRUE(Contains(r.out, "6 created, 0 existing, 2 failed")) << Describe(r);
  EXPECT_TRUE(Contains(r.out, "line 7: invalid_argument: malformed JSON")) << Describe(r);
  EXPECT_TRUE(Contains(r.out, "line 8: invalid_argument: input: required")) << Describe(r);
  EXPECT_TRUE(Contains(r.err, "commands sent")) << Describe(r);
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.runs"), 6);

  // A rerun with the same key creates nothing; --json names each line's run.
  auto again = cli.Run({"submit", "--file", path, "--idempotency-key", "imp", "--json"});
  EXPECT_EQ(again.exit_code, 1) << Describe(again);
  json out = json::parse(again.out);
  EXPECT_EQ(out["created"], 0);
  EXPECT_EQ(out["existing"], 6);
  EXPECT_EQ(out["failed"], 2);
  ASSERT_EQ(out["results"].size(), 8u);
  EXPECT_EQ(out["results"][0]["line"], 1);
  EXPECT_EQ(out["results"][0]["status"], "existing");
  EXPECT_EQ(out["results"][6]["line"], 8);
  EXPECT_EQ(out["results"][6]["error"]["field"], "input");
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.runs"), 6);
  c.WaitForCount("SELECT count(*) FROM synaps.runs WHERE status = 'succeeded'", 6, 60);

  // Nothing to submit from stdin (here /dev/null) is a clean success.
  auto none = cli.Run({"submit", "--file", "-"});
  EXPECT_EQ(none.exit_code, 0) << Describe(none);
  EXPECT_TRUE(Contains(none.out, "submitted 0 commands from stdin")) << Describe(none);
  auto missing = cli.Run({"submit", "--file", path + ".missing"});
  EXPECT_EQ(missing.exit_code, 1) << Describe(missing);
  EXPECT_TRUE(Contains(missing.err, "cannot read")) << Describe(missing);
}

TEST(CliTest, WatchShowsALiveProgressLineOnATerminal) {
  Cluster c;
  c.StartApi();
  c.StartWorker();
  Cli cli(c.base_url(), Cluster::kToken);
  json run = c.SubmitText("progress");
  c.WaitFinished(run["runId"]);
  auto r = cli.RunOnTerminal({"runs", "watch", run["runId"]});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(Contains(r.out, "\r\033[K[")) << r.out;
  EXPECT_TRUE(Contains(r.out, "tasks done")) << r.out;
  EXPECT_TRUE(Contains(r.out, " elapsed")) << r.out;
  auto plain = cli.RunOnTerminal({"runs", "watch", run["runId"], "--no-progress"});
  EXPECT_EQ(plain.exit_code, 0) << plain.out;
  EXPECT_FALSE(Contains(plain.out, "\033[K")) << plain.out;
}

TEST(CliTest, WatchOfACancelledRunExitsOneAndPagingFollowsTheCursor) {
  Cluster c;
  c.StartApi();  // no worker: runs stay queued
  Cli cli(c.base_url(), Cluster::kToken);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(c.SubmitText("queued " + std::to_string(i))["runId"]);

  auto cancel = cli.Run({"runs", "cancel", ids[1]});
  ASSERT_EQ(cancel.exit_code, 0) << Describe(cancel);
  EXPECT_TRUE(Contains(cancel.out, "run " + ids[1] + " cancelled")) << cancel.out;
  auto watched = cli.Run({"runs", "watch", ids[1]});
  EXPECT_EQ(watched.exit_code, 1) << Describe(watched);
  EXPECT_TRUE(Contains(watched.out, "run.cancelled")) << watched.out;
  EXPECT_TRUE(Contains(watched.out, "cancelled by admin")) << watched.out;
  auto watched_json = cli.Run({"runs", "watch", ids[1], "--json"});
  EXPECT_EQ(watched_json.exit_code, 1);
  ExpectDenseEvents(watched_json.JsonLines(), "cancelled");

  auto cancelled_only = cli.Run({"runs", "list", "--status", "cancelled", "--json"});
  ASSERT_EQ(cancelled_only.exit_code, 0) << Describe(cancelled_only);
  json only = json::parse(cancelled_only.out);
  ASSERT_EQ(only["items"].size(), 1u);
  EXPECT_EQ(only["items"][0]["id"], ids[1]);

  // Newest first, two per page, then the rest after the cursor.
  auto first = cli.Run({"runs", "list", "--limit", "2", "--json"});
  ASSERT_EQ(first.exit_code, 0) << Describe(first);
  json p1 = json::parse(first.out);
  ASSERT_EQ(p1["items"].size(), 2u);
  EXPECT_EQ(p1["items"][0]["id"], ids[2]);
  EXPECT_EQ(p1["items"][1]["id"], ids[1]);
  ASSERT_TRUE(p1["nextCursor"].is_string());
  auto human = cli.Run({"runs", "list", "--limit", "2"});
  EXPECT_TRUE(Contains(human.out, "--cursor '" + p1["nextCursor"].get<std::string>() + "'"))
      << human.out;
  auto second = cli.Run({"runs", "list", "--limit", "2", "--cursor", p1["nextCursor"], "--json"});
  ASSERT_EQ(second.exit_code, 0) << Describe(second);
  json p2 = json::parse(second.out);
  ASSERT_EQ(p2["items"].size(), 1u);
  EXPECT_EQ(p2["items"][0]["id"], ids[0]);
  EXPECT_FALSE(p2.contains("nextCursor"));

  auto bad = cli.Run({"runs", "list", "--status", "sleeping"});
  EXPECT_NE(bad.exit_code, 0);
}

TEST(CliTest, WatchReconnectsAfterTheApiRestartsAndShowsEachEventOnce) {
  Cluster c;
  c.StartApi();  // no worker yet: the run waits
  Cli cli(c.base_url(), Cluster::kToken);
  const std::string run_id = c.SubmitText("survive a restart")["runId"];
  auto watch = cli.Start({"runs", "watch", run_id, "--json", "--timeout", "120"});
  ASSERT_TRUE(testing::Eventually(
      [&] {
        std::string out = testing::ReadFile(watch.out_path);
        return std::count(out.begin(), out.end(), '\n') >= 2;  // run.created, task.queued
      },
      30))
      << testing::ReadFile(watch.out_path);

  // While the API is down, a worker (which needs only PostgreSQL) finishes the run: the watcher
  // must get the rest of the events after it reconnects, each once.
  c.api().Stop(std::chrono::seconds(5));
  c.StartWorker();
  c.WaitForCount(
      "SELECT count(*) FROM synaps.runs WHERE id = '" + run_id + "' AND status = 'succeeded'", 1,
      60);
  c.StartApi();

  auto r = cli.Finish(watch, 90);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  ExpectDenseEvents(r.JsonLines(), "succeeded");
  EXPECT_TRUE(Contains(r.err, "reconnecting")) << r.err;
}

TEST(CliTest, KeysCreateAndRevokeRoundTrip) {
  Cluster c;
  c.StartApi();
  Cli cli(c.base_url(), Cluster::kToken);

  auto created = cli.Run({"keys", "create", "--role", "viewer", "--name", "cli-test", "--json"});
  ASSERT_EQ(created.exit_code, 0) << Describe(created);
  json key = json::parse(created.out);
  ASSERT_TRUE(key["token"].is_string());
  EXPECT_TRUE(key["token"].get<std::string>().starts_with("sk_"));
  EXPECT_EQ(key["role"], "viewer");
  EXPECT_EQ(key["tenantId"], "default");
  EXPECT_EQ(key["name"], "cli-test");
  const std::string viewer = key["token"];

  // The viewer reads, but may not cancel or create keys.
  const std::string run_id = c.SubmitText("for the viewer")["runId"];
  auto read = cli.Run({"runs", "get", run_id}, viewer);
  EXPECT_EQ(read.exit_code, 0) << Describe(read);
  auto cancel = cli.Run({"runs", "cancel", run_id}, viewer);
  EXPECT_EQ(cancel.exit_code, 1);
  EXPECT_TRUE(Contains(cancel.err, "permission denied (HTTP 403)")) << cancel.err;
  EXPECT_TRUE(Contains(cancel.err, "role viewer")) << cancel.err;
  auto escalate = cli.Run({"keys", "create", "--role", "admin"}, viewer);
  EXPECT_EQ(escalate.exit_code, 1);
  EXPECT_TRUE(Contains(escalate.err, "HTTP 403")) << escalate.err;

  auto revoked = cli.Run({"keys", "revoke", key["id"]});
  ASSERT_EQ(revoked.exit_code, 0) << Describe(revoked);
  EXPECT_TRUE(Contains(revoked.out, "revoked")) << revoked.out;
  auto after = cli.Run({"runs", "get", run_id}, viewer);
  EXPECT_EQ(after.exit_code, 1);
  EXPECT_TRUE(Contains(after.err, "not authenticated (HTTP 401)")) << after.err;
  auto again = cli.Run({"keys", "revoke", key["id"], "--json"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(json::parse(again.out)["error"]["code"], "not_found") << again.out;

  // Human output: the token on its own line, and a warning that it is shown only once.
  auto human = cli.Run({"keys", "create", "--role", "worker"});
  ASSERT_EQ(human.exit_code, 0) << Describe(human);
  EXPECT_TRUE(Contains(human.out, "\nsk_")) << human.out;
  EXPECT_TRUE(Contains(human.err, "shown only once")) << human.err;
}

TEST(CliTest, AgentSubmitAndApprovalOfAHeldTask) {
  Cluster c;
  c.StartApi();
  c.StartWorker();
  Cli cli(c.base_url(), Cluster::kToken);
  auto put = [&](const std::string& path, const json& spec) {
    auto r = c.Call("PUT", path, json{{"spec", spec}, {"reason", "cli test"}}.dump());
    ASSERT_EQ(r.status / 100, 2) << r.body;
  };
  put("/v1/control/arbiters/review", {{"match", {{"tags", {"review"}}}},
                                      {"checks", {{{"type", "approval"}}}},
                                      {"onFail", "hold"}});

  // An agent naming a tool that does not exist fails clearly (exit 1, the reason printed).
  auto agent = cli.Run({"submit", "--kind", "agent", "--tool", "nope", "--wait", "look around"});
  EXPECT_EQ(agent.exit_code, 1) << Describe(agent);
  EXPECT_TRUE(Contains(agent.out, "tool 'nope' does not exist")) << Describe(agent);
  auto bad = cli.Run({"submit", "--max-steps", "3", "not an agent"});
  EXPECT_EQ(bad.exit_code, 1) << Describe(bad);
  EXPECT_TRUE(Contains(bad.err, "maxSteps")) << Describe(bad);

  // A held task is decided with `synaps tasks approve`.
  auto held = cli.Run({"submit", "--tag", "review", "--json", "check me"});
  ASSERT_EQ(held.exit_code, 0) << Describe(held);
  std::string run_id = json::parse(held.out)["runId"];
  std::string task_id;
  for (int i = 0; i < 600 && task_id.empty(); ++i) {
    json run = json::parse(c.Call("GET", "/v1/runs/" + run_id).body);
    if (run["status"] == "awaiting_approval") task_id = run["tasks"][0]["id"];
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(task_id.empty()) << "the run never waited for approval";
  auto approved = cli.Run({"tasks", "approve", task_id, "--reason", "fine"});
  ASSERT_EQ(approved.exit_code, 0) << Describe(approved);
  EXPECT_TRUE(Contains(approved.out, "approved")) << approved.out;
  auto twice = cli.Run({"tasks", "reject", task_id, "--json"});
  EXPECT_EQ(twice.exit_code, 1) << Describe(twice);
  EXPECT_EQ(json::parse(twice.out)["error"]["code"], "conflict") << twice.out;
  EXPECT_EQ(c.WaitFinished(run_id)["status"], "succeeded");
}

TEST(CliTest, ClearMessagesWhenTheApiIsUnreachableOrTheRunUnknown) {
  auto port = PickFreePort();
  ASSERT_TRUE(port);
  Cli down("http://127.0.0.1:" + std::to_string(*port), "some-token");
  auto list = down.Run({"runs", "list"});
  EXPECT_EQ(list.exit_code, 1);
  EXPECT_TRUE(Contains(list.err, "cannot reach")) << list.err;
  EXPECT_TRUE(Contains(list.err, "Is the API running?")) << list.err;
  auto watch = down.Run({"runs", "watch", "6f1c2a7e-3f4b-4c1e-9a53-2b8f0e4d7c11", "--json"});
  EXPECT_EQ(watch.exit_code, 2);
  EXPECT_EQ(json::parse(watch.out)["error"]["code"], "unavailable") << watch.out;
  auto artifact = down.Run({"artifacts", "get", "6f1c2a7e-3f4b-4c1e-9a53-2b8f0e4d7c11"});
  EXPECT_EQ(artifact.exit_code, 1);
  EXPECT_TRUE(Contains(artifact.err, "Is the API running?")) << artifact.err;

  Cluster c;
  c.StartApi();
  Cli cli(c.base_url(), Cluster::kToken);
  auto unknown = cli.Run({"runs", "watch", "6f1c2a7e-3f4b-4c1e-9a53-2b8f0e4d7c11"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_TRUE(Contains(unknown.err, "not found (HTTP 404)")) << unknown.err;
  Cli anonymous(c.base_url(), "");
  auto no_token = anonymous.Run({"runs", "list"});
  EXPECT_EQ(no_token.exit_code, 1);
  EXPECT_TRUE(Contains(no_token.err, "not authenticated (HTTP 401)")) << no_token.err;
  EXPECT_TRUE(Contains(no_token.err, "set SYNAPS_TOKEN")) << no_token.err;
}

TEST(CliTest, SchedulesAppliedListedTriggeredAndBackfilled) {
  Cluster c;
  c.StartApi();
  c.StartWorker();
  Cli cli(c.base_url(), Cluster::kToken);
  const std::string file = testing::TestStack::Get().TempDir("schedules") + "/hourly.yaml";
  std::ofstream(file) << "kind: schedules\nname: hourly\nspec:\n  cron: \"0 * * * *\"\n"
                         "  overlap: allow\n  command:\n    kind: prompt\n"
                         "    input: {text: hourly}\n";
  auto applied = cli.Run({"control", "apply", "-f", file});
  ASSERT_EQ(applied.exit_code, 0) << Describe(applied);
  auto again = cli.Run({"control", "apply", "-f", file, "--json"});
  ASSERT_EQ(again.exit_code, 0) << Describe(again);
  EXPECT_TRUE(Contains(again.out, "\"action\":\"unchanged\"")) << again.out;

  auto listed = cli.Run({"schedules", "list"});
  ASSERT_EQ(listed.exit_code, 0) << Describe(listed);
  EXPECT_TRUE(Contains(listed.out, "hourly")) << listed.out;
  EXPECT_TRUE(Contains(listed.out, "cron 0 * * * * (UTC)")) << listed.out;
  auto got = cli.Run({"schedules", "get", "hourly", "--json"});
  ASSERT_EQ(got.exit_code, 0) << Describe(got);
  EXPECT_EQ(json::parse(got.out)["nextFireTimes"].size(), 5u) << got.out;

  auto triggered = cli.Run({"schedules", "trigger", "hourly", "--json"});
  ASSERT_EQ(triggered.exit_code, 0) << Describe(triggered);
  EXPECT_EQ(json::parse(triggered.out)["outcome"], "started") << triggered.out;

  auto backfilled = cli.Run({"schedules", "backfill", "hourly", "--from",
                             "2026-01-01T00:00:00Z", "--to", "2026-01-01T03:00:00Z"});
  ASSERT_EQ(backfilled.exit_code, 0) << Describe(backfilled);
  EXPECT_TRUE(Contains(backfilled.out, "3 fire times, 3 started")) << backfilled.out;
  auto runs = cli.Run({"runs", "list", "--schedule", "hourly", "--json"});
  ASSERT_EQ(runs.exit_code, 0) << Describe(runs);
  EXPECT_EQ(json::parse(runs.out)["items"].size(), 4u) << runs.out;

  auto missing = cli.Run({"schedules", "get", "nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(Contains(missing.err, "not found")) << missing.err;
}

}  // namespace
}  // namespace synaps
