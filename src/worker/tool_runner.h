// How the agent loop runs a tool the model called. The worker's implementation (MakeToolRunner)
// sends `builtin` tools to k8s::BuiltinTools and `http` tools to tools::HttpTools, which enforces
// the tool's allowHosts and refuses link-local and metadata addresses; tests substitute their
// own.
#pragma once

#include <functional>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json.hpp>

#include "control/spec.h"
#include "core/error.h"
#include "core/trace.h"

namespace synaps::worker {

class ToolRunner {
 public:
  // The tool's result for the model (any JSON), or why the call failed (refused by the network
  // policy, timed out, not available here...). The agent loop shows either to the model.
  using Done = std::function<void(Result<nlohmann::json>)>;

  virtual ~ToolRunner() = default;

  // Runs `tool` with `arguments` (already validated against tool.parameters). `done` runs
  // exactly once on the event loop, never inside Invoke, and not after the runner is destroyed.
  virtual void Invoke(const control::Tool& tool, const nlohmann::json& arguments, Done done) = 0;
  // The same as the span `trace` (core/trace.h): http tools send it as `traceparent`. Runners
  // that do not carry trace context need not override it.
  virtual void InvokeTraced(const control::Tool& tool, const nlohmann::json& arguments,
                            const TraceContext& trace, Done done) {
    (void)trace;
    Invoke(tool, arguments, std::move(done));
  }
};

// The worker's runner, on `executor` (the worker's event loop): builtin tools from the in-cluster
// configuration (k8s::BuiltinTools::FromEnvironment), http tools through tools::HttpTools.
std::unique_ptr<ToolRunner> MakeToolRunner(boost::asio::any_io_executor executor);

}  // namespace synaps::worker
