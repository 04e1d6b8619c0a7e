// The Kubernetes tools the worker offers to agents, read-only and confined to the worker's own
// namespace:
//
//   k8s.pods    (wire name k8s_pods)    pods: status, readiness, restarts, node, age, containers
//   k8s.events  (wire name k8s_events)  events, newest first: type, reason, object, message
//
// Both take {"limit"?: 1..100 (default 20), "labelSelector"?: string, "fieldSelector"?: string}
// and answer with a compact JSON summary of at most 16 KiB (k8s/summary.h).
//
// Names. The control registry, skills and the ledger use the canonical names with a dot. Model
// providers want function names matching ^[a-zA-Z0-9_-]{1,64}$ (OpenAI refuses a dot), so
// Definitions() carries the wire names, which are what a model calls; Invoke() accepts either.
//
// Use from the agent loop, on the worker's event loop:
//   auto tools = k8s::BuiltinTools::FromEnvironment(io.get_executor());
//   request.tools = k8s::BuiltinTools::Definitions();       // or those the skill allows
//   tools->InvokeText(call.name, call.arguments, [&](Result<nlohmann::json> r) {
//     std::string content = (r ? *r : k8s::BuiltinTools::ErrorResult(r.error())).dump();
//     messages.push_back({"tool", content, {}, call.id});
//   });
//
// Thread safety: none; construct, call and destroy on the executor's thread. Every callback
// runs exactly once, on that thread, never inside Invoke(); none runs after destruction.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "k8s/kube_client.h"
#include "k8s/summary.h"
#include "providers/provider.h"

namespace synaps::k8s {

struct BuiltinToolsOptions {
  int default_limit = 20;  // items when the call gives no limit
  int max_limit = 100;     // the largest limit a call may ask for
  // Events are listed by the server in name order, not by time: this many are fetched, sorted
  // newest first, and the call's limit taken from those.
  int event_scan_limit = 500;
  SummaryLimits summary;
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
};

class BuiltinTools {
 public:
  // The tool's result (a JSON object to give the model), or the error: kNotFound for an
  // unknown tool or when the worker is not in a cluster, kInvalidArgument for bad arguments
  // (`field` names the argument, e.g. "arguments.limit"), else the client's errors
  // (k8s/kube_client.h).
  using Done = std::function<void(Result<nlohmann::json>)>;

  static constexpr std::string_view kPods = "k8s.pods";
  static constexpr std::string_view kEvents = "k8s.events";

  // Tools backed by `client`, which they own.
  BuiltinTools(boost::asio::any_io_executor executor, std::unique_ptr<KubeClient> client,
               BuiltinToolsOptions options = {});
  // Tools without a cluster: every call fails with `unavailable` (e.g. LoadInClusterConfig's
  // "not running in a Kubernetes cluster" error).
  BuiltinTools(boost::asio::any_io_executor executor, Error unavailable,
               BuiltinToolsOptions options = {});
  ~BuiltinTools();
  BuiltinTools(const BuiltinTools&) = delete;
  BuiltinTools& operator=(const BuiltinTools&) = delete;

  // In-cluster configuration from the pod (k8s/in_cluster_config.h) and client settings from
  // the environment. Not in a cluster is not an error here: the tools then report it per call,
  // and available() is false. Throws ConfigError for malformed SYNAPS_K8S_* settings.
  static std::unique_ptr<BuiltinTools> FromEnvironment(boost::asio::any_io_executor executor);

  // The tools' definitions for a ChatRequest, under their wire names.
  static const std::vector<providers::ToolDefinition>& Definitions();
  // The canonical names, "k8s.pods" and "k8s.events".
  static const std::vector<std::string>& Names();
  // "k8s.pods" for "k8s.pods" or "k8s_pods"; nullopt for a name that is not a builtin tool.
  static std::optional<std::string> CanonicalName(std::string_view name);
  // A function name providers accept (^[a-zA-Z0-9_-]{1,64}$): every other character becomes
  // '_', and the name is cut to 64. "k8s.pods" -> "k8s_pods". Usable for any tool name; the
  // mapping is not reversible in general, so keep a table from wire name to tool.
  static std::string WireName(std::string_view name);
  // {"error": {"code": "permission_denied", "message": "..."}}: an error as a tool result.
  static nlohmann::json ErrorResult(const Error& error);

  // Runs tool `name` (canonical or wire name) with `arguments` (a JSON object; null means {}).
  void Invoke(std::string_view name, const nlohmann::json& arguments, Done done);
  // The same with the arguments as the model wrote them (ToolCall::arguments): kInvalidArgument
  // when they are not valid JSON. An empty text means {}.
  void InvokeText(std::string_view name, std::string_view arguments, Done done);

  // True when backed by a client (running in a cluster).
  bool available() const { return client_ != nullptr; }
  // Why not, when !available().
  const std::optional<Error>& unavailable_reason() const { return unavailable_; }
  KubeClient* client() const { return client_.get(); }

 private:
  void Reply(Done done, Result<nlohmann::json> result);

  boost::asio::any_io_executor executor_;
  BuiltinToolsOptions options_;
  std::optional<Error> unavailable_;
  std::shared_ptr<char> alive_;  // posted replies hold it weakly: none runs after destruction
  std::unique_ptr<KubeClient> client_;
};

}  // namespace synaps::k8s
