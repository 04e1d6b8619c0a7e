// One task's execution against the control snapshot it was claimed under (docs/worker.md):
//
//   1. resolve the plan: prompt template and variables, skill, route and its fallbacks, the
//      tools an agent may call, the arbiters that apply;
//   2. call the model. For kind `agent`, tool calls are run (ToolRunner) and their results sent
//      back, model -> tools -> model, until a final answer or maxSteps model calls;
//   3. run the matching arbiters on the final answer: pass completes, `retry` sends the verdict
//      back as feedback (within the attempts left), `hold` completes into awaiting_approval,
//      `fail` fails the task.
//
// Every tool call, tool result and arbiter verdict is reported through OnEvent as a ledger
// event (tool.called, tool.result, arbiter.verdict); the worker writes them fenced by the lease.
// Lives on the worker's event loop; not thread-safe. Lease handling, storage and completion stay
// with the worker.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/snapshot.h"
#include "core/trace.h"
#include "otel/exporter.h"
#include "providers/registry.h"
#include "store/queue_store.h"
#include "worker/arbiters.h"
#include "worker/provider_stats.h"
#include "worker/rate_gate.h"
#include "worker/tool_runner.h"

namespace synaps::worker {

struct TaskOutcome {
  std::string text;       // the final answer
  nlohmann::json output;  // provider, model, usage, latency, steps, arbiters, `control` versions
  bool hold = false;      // complete into awaiting_approval (an arbiter asked for a person)
  // The task went back to the queue to wait for its route's rate limit (docs/flow-control.md):
  // the database already released the lease; nothing is to be written.
  bool released = false;
};

// What a TaskRun uses from its worker; everything must outlive the TaskRun.
struct TaskRunEnv {
  boost::asio::any_io_executor executor;  // the worker's event loop
  providers::ProviderRegistry* providers = nullptr;
  ToolRunner* tools = nullptr;              // null: every tool call fails with "unavailable"
  nlohmann::json default_route;             // when neither task, skill nor registry names one
  otel::Exporter* tracer = nullptr;         // spans of the attempt, model and tool calls; null: off
  ProviderStats* provider_stats = nullptr;  // every model call's latency and outcome; null: off
  // Slots of routes with `limits`; null: limits are not enforced. A task's first model call
  // whose wait is longer than rate_park_after_ms goes back to the queue (TaskOutcome::released);
  // later calls (agent steps, fallbacks, judges) wait in place.
  RateGate* rate_gate = nullptr;
  int64_t rate_park_after_ms = 250;
};

class TaskRun {
 public:
  // Runs exactly once on the event loop, unless Cancel() came first (then with kCancelled).
  using Done = std::function<void(Result<TaskOutcome>)>;
  using OnDelta = std::function<void(const providers::ChatDelta&)>;
  using OnEvent = std::function<void(std::string type, nlohmann::json data)>;

  // Model calls an agent may make when the submit gives no maxSteps.
  static constexpr int kDefaultMaxSteps = 8;

  // `snapshot` may be null (no control registry loaded yet: built-in behaviour only).
  TaskRun(store::ClaimedItem item, std::shared_ptr<const control::Snapshot> snapshot,
          TaskRunEnv env, OnDelta on_delta, OnEvent on_event, Done done);
  ~TaskRun();
  TaskRun(const TaskRun&) = delete;
  TaskRun& operator=(const TaskRun&) = delete;

  // Call from a posted handler: a plan that cannot be resolved finishes inside Start().
  void Start();
  // Aborts; Done then runs with kCancelled, posted. Never runs Done synchronously.
  void Cancel();

  // Exposed for tests: what a task resolves to.
  struct Plan {
    std::vector<providers::ChatMessage> messages;
    std::vector<nlohmann::json> routes;  // primary, then fallbacks: {name?, version?, provider,
                                         // model, baseUrl?, apiKeyEnv?, params?}
    nlohmann::json versions;  // {snapshotVersion, prompt?, skill?, route?, arbiters?, tools?}
    bool agent = false;       // kind agent: tools are offered and the loop runs
    int max_steps = kDefaultMaxSteps;
    std::vector<const control::Tool*> tools;        // into the snapshot
    std::vector<const control::Arbiter*> arbiters;  // into the snapshot
    std::string task_text;                          // the rendered user text (for judges)
    int feedback_rounds = 0;  // retries with arbiter feedback allowed (the attempts left)
  };
  static Result<Plan> Resolve(const store::ClaimedItem& item, const control::Snapshot* snapshot,
                              const nlohmann::json& default_route);

 private:
  struct Usage {
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;
  };

  void CallModel();
  // Takes a slot of `route`'s limits (when it has any), then runs `call`: at once, after the
  // wait, or never (the task went back to the queue, or was cancelled meanwhile).
  void AfterRateSlot(const nlohmann::json& route, int64_t tokens, bool may_park,
                     std::function<void()> call);
  // The limiter's question for a call of `tokens` on `route`, which has `limits` and a name
  // (without a lease: it may not park).
  store::RateAsk RateAskFor(const nlohmann::json& route, int64_t tokens) const;
  void StartModelCall();
  // A 429's Retry-After on a route with limits is shared with every worker (RateGate::Block).
  // Each retry of the call on such a route takes a slot first (ChatRequest::before_retry).
  void ShareRetryAfter(providers::ChatRequest& req, const nlohmann::json& route);
  // Waits in place for a slot for a retry of the call in flight, then runs `send`; without an
  // answer from the limiter it sends anyway (the provider's own wait was kept).
  void SlotForRetry(const nlohmann::json& route, std::function<void()> send);
  // The tokens a call used, against the estimate charged for it (RateGate::Settle).
  void SettleTokens(const nlohmann::json& route, int64_t used);
  void OnModelAnswer(Result<providers::ChatResponse> r);
  // Runs one step's tool calls concurrently; OnToolsDone once the last result is in.
  void RunTools(std::vector<providers::ToolCall> calls);
  // Why `call` cannot run (answered to the model, which can correct itself), or Ok: no such
  // tool offered, arguments too large or deep, not JSON, not matching the tool's parameters,
  // or a worker without tools.
  Status CheckToolCall(const providers::ToolCall& call, const control::Tool* tool, bool oversized,
                       const nlohmann::json& args) const;
  // What receives call `i`'s result: its tool.result event, its place among the step's
  // results (dropped after the task ended or was cancelled).
  ToolRunner::Done ToolCallFinisher(size_t i, std::string tool_name);
  // Invokes `tool`, inside an execute_tool span when the attempt is traced.
  void InvokeTool(const control::Tool& tool, const nlohmann::json& args, ToolRunner::Done done);
  void OnToolsDone();
  void StartArbiters();
  void NextJudge();
  void Decide();
  void Succeed(bool hold);
  void Finish(Result<TaskOutcome> r);
  // The barrier of every entry from the event loop (Start, a model or judge answer, a tool
  // result): a step that throws — a bug, or a value of an unexpected type in a stored spec or a
  // reply — fails this task alone with kInternal naming the task and the step, and drops what
  // is still on its way to it; the loop goes on with other tasks.
  void Barrier(const char* step, const std::function<void()>& fn);
  std::optional<otel::Span> TraceCall(providers::ChatRequest& req,
                                      const nlohmann::json& route) const;
  // Ends the call's span and records its latency and outcome (provider_stats).
  void EndCall(std::optional<otel::Span> span, const nlohmann::json& route,
               std::chrono::steady_clock::time_point started,
               const Result<providers::ChatResponse>& r) const;
  // One span per arbiter, from the first check to the verdict.
  void ExportArbiterSpans(Decision decision) const;
  // Reports a ledger event, made storable (valid UTF-8, no NUL, bounded depth).
  void Emit(const char* type, const nlohmann::json& data);
  // Posts Done(kCancelled) unless finished; for states with no provider call to cancel.
  void PostCancelled();

  const store::ClaimedItem item_;
  std::optional<TraceContext> trace_;       // this attempt's span; none for specs without a trace
  std::optional<otel::Span> attempt_span_;  // exported at Finish when spans are exported
  int64_t arbiters_started_ns_ = 0;         // when the current round of checks began
  const std::shared_ptr<const control::Snapshot> snapshot_;
  const TaskRunEnv env_;
  OnDelta on_delta_;
  OnEvent on_event_;
  Done done_;
  Plan plan_;
  std::vector<providers::ChatMessage> messages_;          // the conversation so far
  size_t route_index_ = 0;                                // falls forward on outages, never back
  std::unique_ptr<providers::Call> call_;                 // the model or judge call in flight
  std::unique_ptr<boost::asio::steady_timer> rate_wait_;  // waiting for a rate-limit slot
  int64_t charged_tokens_ = 0;            // the estimate charged for the model call in flight
  std::vector<nlohmann::json> failures_;  // routes that failed before one answered

  // The loop's tallies.
  int steps_ = 0;
  int tool_calls_ = 0;
  int feedback_used_ = 0;
  Usage usage_;
  int64_t latency_ms_ = 0;
  int64_t ttft_ms_ = -1;
  int provider_attempts_ = 0;
  providers::ChatResponse last_;  // the last model answer
  nlohmann::json route_used_;

  // Tools of the current step.
  std::vector<providers::ToolCall> pending_calls_;
  std::vector<std::string> tool_results_;
  size_t tools_outstanding_ = 0;

  // Arbiter pass over the final answer.
  std::vector<ArbiterVerdict> verdicts_;
  struct JudgeSlot {
    size_t verdict;
    size_t check;
    const control::ArbiterCheck* spec;
  };
  std::vector<JudgeSlot> judges_;
  size_t next_judge_ = 0;

  bool finished_ = false;
  bool cancel_requested_ = false;
  std::shared_ptr<bool> alive_;  // guards callbacks that outlive this object
};

}  // namespace synaps::worker
