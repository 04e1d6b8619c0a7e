// The trace a claimed task belongs to, and the spans the worker records around its attempts
// (docs/observability.md, "Spans"). The API stores the submit request's context in the task's
// spec (`spec.trace.traceparent`); every span here is a child of that request's span, beside the
// attempt's own span (TaskRun):
//
//   synaps.queue.wait   task created -> claimed (first attempt only; includes a notBefore delay)
//   synaps.claim        the claim statement that took the item (shared by its batch)
//   synaps.upload       the answer stored in the object store
//   synaps.complete     the write batch that carried the completion, and its outcome
//
// A value type owned by the worker's in-flight record; not thread-safe. Does nothing for an
// untraced or unsampled task, or when no exporter is configured.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/trace.h"
#include "otel/exporter.h"
#include "store/queue_store.h"

namespace synaps::worker {

// The submit request's context stored in a task's spec; nullopt when absent or malformed.
std::optional<TraceContext> TraceOfSpec(const nlohmann::json& spec);

// The creation time of a version 7 UUID (its first 48 bits, Unix milliseconds), nullopt for
// any other version or a malformed id.
std::optional<int64_t> UuidV7UnixMs(std::string_view id);

class TaskSpans {
 public:
  TaskSpans() = default;
  TaskSpans(otel::Exporter* tracer, const store::ClaimedItem& item);

  // The trace id of the task, "" when it has none (log lines name it: core/log.h).
  const std::string& trace_id() const { return trace_id_; }

  // The claim statement ran from `start_ns` to `end_ns` and took `batch` items; for a first
  // attempt, the queue wait (creation to `end_ns`) too.
  void Claimed(int64_t start_ns, int64_t end_ns, size_t batch) const;
  void Uploaded(int64_t start_ns, int64_t end_ns, size_t bytes, const Status& put) const;
  // `state` is what the batch said of this completion: completed, held, cancelled, lease_lost
  // or (with an error) the batch's failure.
  void Completed(int64_t start_ns, int64_t end_ns, size_t batch, std::string_view state,
                 const Status& written) const;

 private:
  void Emit(std::string name, int64_t start_ns, int64_t end_ns, const Status& status,
            std::vector<std::pair<std::string, nlohmann::json>> attributes) const;

  otel::Exporter* tracer_ = nullptr;  // null: nothing is exported
  std::optional<TraceContext> parent_;
  std::string trace_id_;
  std::string task_id_;
  std::string run_id_;
  int attempt_ = 0;
};

}  // namespace synaps::worker
