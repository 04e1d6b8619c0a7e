// Compact summaries of Kubernetes lists for a language model: the few fields an agent needs to
// reason about its namespace's health, in a bounded amount of JSON. Pure functions of their
// input (and the time given), so they are tested without a server.
//
// A pod:   {"name", "status", "phase", "ready": "1/2", "restarts", "node", "age",
//           "containers": [{"name", "image", "ready", "restarts", "state", "lastState"?}], ...}
//   `status` is what `kubectl get pods` shows in its STATUS column (CrashLoopBackOff,
//   Init:0/1, Terminating, Completed, ...); `phase` is the pod's phase. `state` reads
//   "running", "waiting: ImagePullBackOff (message)" or "terminated: OOMKilled (exit code 137)".
// An event: {"type", "reason", "object": "Pod/web-1", "message", "count", "last", "age"}.
#pragma once

#include <chrono>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace synaps::k8s {

struct SummaryLimits {
  size_t max_bytes = 16 * 1024;  // the summary's JSON text stays below this
  size_t max_text_chars = 300;   // a message or reason longer than this is cut, with "..."
  size_t max_containers = 10;    // containers shown per pod
};

// Summarizes a PodList: {"namespace", "count", "pods": [...], "more"?, "omitted"?}. `more` is
// true when there are pods beyond those shown (the server cut the list at its limit, or the size
// cap dropped some: `omitted` counts those).
nlohmann::json SummarizePods(const nlohmann::json& pod_list, const std::string& namespace_name,
                             std::chrono::system_clock::time_point now,
                             const SummaryLimits& limits = {});

// Summarizes an EventList, newest first, at most `limit` events: {"namespace", "count",
// "events": [...], "more"?, "omitted"?}.
nlohmann::json SummarizeEvents(const nlohmann::json& event_list, const std::string& namespace_name,
                               size_t limit, std::chrono::system_clock::time_point now,
                               const SummaryLimits& limits = {});

// The way kubectl shows ages: "45s", "5m30s", "120m", "5h3m", "30h", "3d4h", "120d", "2y35d".
std::string FormatAge(std::chrono::seconds age);

// Parses an RFC 3339 time as the API server writes it ("2024-05-01T12:00:00Z", with optional
// fractional seconds and numeric offset). nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> ParseTimestamp(std::string_view text);

}  // namespace synaps::k8s
