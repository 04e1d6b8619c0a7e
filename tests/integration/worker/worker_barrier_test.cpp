// A worker in process against a real PostgreSQL (docs/reliability.md, "Bus and thread
// barriers"): a job that throws on the upload pool, and a task whose stored spec holds a value of
// the wrong type (a throw on the event loop), each fail their own task with a clear error while
// the worker goes on serving every other task. And its slots: never more tasks running than
// its concurrency, and every slot back once its task finished or failed.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "db/connection.h"
#include "objstore/file_store.h"
#include "store/run_store.h"
#include "support/test_stack.h"
#include "worker/worker.h"

namespace synaps::worker {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A file store whose first `throws` Puts throw, as a buggy store client would.
class ThrowingStore final : public objstore::ObjectStore {
 public:
  ThrowingStore(std::string root, int throws) : inner_(std::move(root)), throws_(throws) {}
  Status Put(const std::string& key, const std::string& data,
             const std::string& content_type) override {
    if (throws_.fetch_sub(1) > 0) throw std::runtime_error("store client bug");
    return inner_.Put(key, data, content_type);
  }
  Result<std::string> Get(const std::string& key) override { return inner_.Get(key); }
  Result<std::string> GetAtMost(const std::string& key, uint64_t max_bytes) override {
    return inner_.GetAtMost(key, max_bytes);
  }
  Result<std::string> GetRange(const std::string& key, uint64_t offset, uint64_t length) override {
    return inner_.GetRange(key, offset, length);
  }
  Result<bool> Exists(const std::string& key) override { return inner_.Exists(key); }
  Result<std::vector<objstore::ObjectInfo>> List(const std::string& prefix) override {
    return inner_.List(prefix);
  }
  Status Delete(const std::string& key) override { return inner_.Delete(key); }
  std::string Describe() const override { return "throwing " + inner_.Describe(); }

 private:
  objstore::FileObjectStore inner_;
  std::atomic<int> throws_;
};

class WorkerBarrierTest : public ::testing::Test {
 protected:
  WorkerBarrierTest() : url_(testing::TestStack::Get().FreshDatabase()) {
    auto c = db::Connection::Connect(url_);
    EXPECT_TRUE(c) << c.error().message;
    conn_ = std::move(*c);
  }

  WorkerOptions Options() {
    WorkerOptions o;
    o.database_url = url_;
    o.name = "barrier-test";
    o.concurrency = 4;
    o.poll_interval_ms = 50;
    o.drain_seconds = 5;
    o.backoff = {.base_ms = 10, .cap_ms = 50};
    o.answer_artifact_min_bytes = 0;  // every answer is uploaded (the uploads are under test)
    return o;
  }

  // Submits a one-task run with `spec`; returns the run id.
  std::string Submit(const json& spec, int max_attempts = 3) {
    store::SubmitRequest req;
    req.tenant_id = "t";
    req.actor = "test";
    req.request_hash = "h" + std::to_string(++submitted_);
    req.kind = "prompt";
    req.payload = json::object();
    req.max_attempts = max_attempts;
    req.tasks.push_back({"main", "prompt", spec, {}});
    auto r = store::SubmitCommand(conn_, req);
    EXPECT_TRUE(r) << r.error().message;
    return r ? r->response["runId"].get<std::string>() : "";
  }

  std::string RunStatus(const std::string& run_id) {
    auto r = conn_.Exec("SELECT status FROM synaps.runs WHERE id = $1::uuid", {run_id});
    return r && r->rows() == 1 ? r->GetString(0, 0) : "";
  }

  // Waits until every run has finished; returns their statuses.
  std::vector<std::string> WaitFinished(const std::vector<std::string>& runs) {
    auto deadline = steady_clock::now() + std::chrono::seconds(30);
    std::vector<std::string> out;
    while (steady_clock::now() < deadline) {
      out.clear();
      for (const auto& id : runs) out.push_back(RunStatus(id));
      bool done = std::all_of(out.begin(), out.end(), [](const std::string& s) {
        return s == "succeeded" || s == "failed" || s == "cancelled";
      });
      if (done) return out;
      std::this_thread::sleep_for(milliseconds(20));
    }
    ADD_FAILURE() << "runs did not finish";
    return out;
  }

  // The error recorded with the task's events of `type` (task.retry_scheduled, task.failed).
  std::vector<std::string> Errors(const std::string& run_id, const std::string& type) {
    auto r = conn_.Exec(
        "SELECT data->'error'->>'message' FROM synaps.ledger_events"
        " WHERE run_id = $1::uuid AND type = $2 ORDER BY seq",
        {run_id, type});
    std::vector<std::string> out;
    for (int i = 0; r && i < r->rows(); ++i) out.push_back(r->GetString(i, 0));
    return out;
  }

  std::string url_;
  db::Connection conn_;
  int submitted_ = 0;
};

// Runs a worker on its own thread for the duration of a scope.
class RunningWorker {
 public:
  RunningWorker(WorkerOptions options, objstore::ObjectStore* store)
      : worker_(std::move(options), nullptr, store), thread_([this] { worker_.Run(); }) {}
  ~RunningWorker() {
    worker_.Stop();
    thread_.join();
  }
  Worker& worker() { return worker_; }

 private:
  Worker worker_;
  std::thread thread_;
};

TEST_F(WorkerBarrierTest, AnUploadThatThrowsFailsItsAttemptAndThePoolGoesOn) {
  ThrowingStore store(testing::TestStack::Get().TempDir("throwing-store"), 1);
  std::vector<std::string> runs;
  for (int i = 0; i < 4; ++i)
    runs.push_back(Submit({{"input", {{"text", "hello " + std::to_string(i)}}}}));
  {
    RunningWorker w(Options(), &store);
    auto statuses = WaitFinished(runs);
    EXPECT_EQ(statuses, std::vector<std::string>(4, "succeeded"));
  }
  // Exactly one attempt met the throw; it was retried like any failed upload.
  int retried = 0;
  for (const auto& id : runs) {
    for (const auto& message : Errors(id, "task.retry_scheduled")) {
      ++retried;
      EXPECT_NE(message.find("store client bug"), std::string::npos) << message;
      EXPECT_NE(message.find("upload of item"), std::string::npos) << message;
    }
  }
  EXPECT_EQ(retried, 1);
  // The failed attempt's ledger still has what the model answered (its deltas waited for a
  // completion that never came): a task.progress of attempt 1 before its task.retry_scheduled.
  for (const auto& id : runs) {
    auto r = conn_.Exec(
        "SELECT string_agg(type || ':' || attempt, ' ' ORDER BY seq) FROM synaps.ledger_events"
        " WHERE run_id = $1::uuid AND type IN ('task.progress', 'task.retry_scheduled')",
        {id});
    ASSERT_TRUE(r) << r.error().message;
    std::string types = r->IsNull(0, 0) ? "" : r->GetString(0, 0);
    if (types.find("task.retry_scheduled") == std::string::npos) continue;
    EXPECT_TRUE(types.starts_with("task.progress:1 ")) << id << ": " << types;
    EXPECT_TRUE(types.ends_with(" task.retry_scheduled:1")) << id << ": " << types;
  }
}

TEST_F(WorkerBarrierTest, AStoredSpecOfTheWrongTypeFailsItsTaskAloneWithAClearError) {
  ThrowingStore store(testing::TestStack::Get().TempDir("store"), 0);
  std::string good_before = Submit({{"input", {{"text", "before"}}}});
  std::string bad = Submit({{"input", {{"text", "x"}}}, {"maxAttempts", "three"}});
  std::string good_after = Submit({{"input", {{"text", "after"}}}});
  RunningWorker w(Options(), &store);
  auto statuses = WaitFinished({good_before, bad, good_after});
  EXPECT_EQ(statuses, (std::vector<std::string>{"succeeded", "failed", "succeeded"}));
  auto errors = Errors(bad, "task.failed");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("maxAttempts"), std::string::npos) << errors[0];
  // The worker still serves.
  std::string later = Submit({{"input", {{"text", "later"}}}});
  EXPECT_EQ(WaitFinished({later}), std::vector<std::string>{"succeeded"});
}

TEST_F(WorkerBarrierTest, ACorruptRowFailsItsTaskAloneWithAClearError) {
  ThrowingStore store(testing::TestStack::Get().TempDir("store"), 0);
  std::string good = Submit({{"input", {{"text", "fine"}}}});
  std::string corrupt = Submit({{"input", {{"text", "to be corrupted"}}}});
  // jsonb keeps a number no double can hold: the row reads back as invalid JSON for the worker.
  ASSERT_TRUE(
      conn_.Exec("UPDATE synaps.tasks SET spec = '{\"input\": {\"text\": \"x\"}, "
                 "\"n\": 1e400}' WHERE run_id = $1::uuid",
                 {corrupt}));
  RunningWorker w(Options(), &store);
  EXPECT_EQ(WaitFinished({good, corrupt}), (std::vector<std::string>{"succeeded", "failed"}));
  auto errors = Errors(corrupt, "task.failed");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("'s spec stored in PostgreSQL does not read as JSON"), std::string::npos)
      << errors[0];
  EXPECT_NE(errors[0].find("number overflow"), std::string::npos) << errors[0];
  std::string later = Submit({{"input", {{"text", "later"}}}});
  EXPECT_EQ(WaitFinished({later}), std::vector<std::string>{"succeeded"});
}

// The worker keeps count of its running tasks as they start, answer, fail and leave (it does not
// walk them on every claim): with 2 slots and a model that answers after 200 ms, 8 tasks — 2
// of them failing on their spec — take at least three rounds of 200 ms (more running at once
// would finish sooner), and all finish (a slot not given back would leave some queued).
TEST_F(WorkerBarrierTest, NoMoreTasksRunThanItsSlotsAndFailuresGiveTheirSlotsBack) {
  ThrowingStore store(testing::TestStack::Get().TempDir("store"), 0);
  std::vector<std::string> runs;
  for (int i = 0; i < 8; ++i) {
    json spec = {{"input", {{"text", "slot " + std::to_string(i)}}}};
    if (i == 1 || i == 4) spec["maxAttempts"] = "three";  // fails on the event loop
    runs.push_back(Submit(spec));
  }
  WorkerOptions o = Options();
  o.concurrency = 2;
  o.provider_settings.local_latency_ms = 200;
  auto started = steady_clock::now();
  std::vector<std::string> statuses;
  {
    RunningWorker w(o, &store);
    statuses = WaitFinished(runs);
  }
  auto elapsed = steady_clock::now() - started;
  std::vector<std::string> expected(8, "succeeded");
  expected[1] = expected[4] = "failed";
  EXPECT_EQ(statuses, expected);
  // 6 answers of 200 ms on 2 slots: three rounds at the least.
  EXPECT_GE(elapsed, milliseconds(600));
  auto r = conn_.Exec("SELECT string_agg(status, ',' ORDER BY status) FROM synaps.queue_items");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->GetString(0, 0), "dead,dead");  // the two failed tasks' items, nothing claimed
}

}  // namespace
}  // namespace synaps::worker
