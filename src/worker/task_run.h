// One task's execution against the control snapshot it was claimed under: resolve the plan
// (prompt template and variables, skill, route and its fallbacks), call the model, and report
// the answer with the control versions it used. Lives on the worker's event loop; not
// thread-safe. Lease handling, storage and completion stay with the worker.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/snapshot.h"
#include "providers/registry.h"
#include "store/queue_store.h"

namespace synaps::worker {

struct TaskOutcome {
  std::string text;       // the final answer
  nlohmann::json output;  // provider, model, usage, latency, ... and `control` (versions used)
};

class TaskRun {
 public:
  // Runs exactly once on the event loop, unless Cancel() came first (then with kCancelled).
  using Done = std::function<void(Result<TaskOutcome>)>;
  using OnDelta = std::function<void(const providers::ChatDelta&)>;

  // `snapshot` may be null (no control registry loaded yet: built-in behaviour only).
  TaskRun(store::ClaimedItem item, std::shared_ptr<const control::Snapshot> snapshot,
          nlohmann::json default_route, providers::ProviderRegistry* providers, OnDelta on_delta,
          Done done);
  ~TaskRun();
  TaskRun(const TaskRun&) = delete;
  TaskRun& operator=(const TaskRun&) = delete;

  // Call from a posted handler: a plan that cannot be resolved finishes inside Start().
  void Start();
  // Aborts; Done then runs with kCancelled (posted by the provider, or from Start() when it has
  // not run yet). Never runs Done synchronously.
  void Cancel();

  // Exposed for tests: the messages and route list a task resolves to.
  struct Plan {
    std::vector<providers::ChatMessage> messages;
    std::vector<nlohmann::json> routes;  // primary, then fallbacks: {name?, version?, provider,
                                         // model, baseUrl?, apiKeyEnv?, params?}
    nlohmann::json versions;             // {snapshotVersion, prompt?, skill?, route?}
  };
  static Result<Plan> Resolve(const store::ClaimedItem& item, const control::Snapshot* snapshot,
                              const nlohmann::json& default_route);

 private:
  void CallRoute(size_t index);
  void OnAnswer(size_t index, Result<providers::ChatResponse> r);
  void Finish(Result<TaskOutcome> r);

  const store::ClaimedItem item_;
  const std::shared_ptr<const control::Snapshot> snapshot_;
  const nlohmann::json default_route_;
  providers::ProviderRegistry* const providers_;
  OnDelta on_delta_;
  Done done_;
  Plan plan_;
  std::unique_ptr<providers::Call> call_;
  std::vector<nlohmann::json> failures_;  // routes tried before the one that answered
  bool finished_ = false;
  bool cancel_requested_ = false;
  std::shared_ptr<bool> alive_;  // guards callbacks that outlive this object
};

}  // namespace synaps::worker
