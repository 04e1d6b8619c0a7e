#include "worker/task_trace.h"

#include <charconv>

namespace synaps::worker {

using nlohmann::json;

std::optional<TraceContext> TraceOfSpec(const json& spec) {
  if (!spec.is_object()) return std::nullopt;
  auto t = spec.find("trace");
  if (t == spec.end() || !t->is_object()) return std::nullopt;
  auto parent = t->find("traceparent");
  if (parent == t->end() || !parent->is_string()) return std::nullopt;
  auto state = t->find("tracestate");
  return TraceContext::Parse(parent->get<std::string>(),
                             state != t->end() && state->is_string() ? state->get<std::string>()
                                                                      : std::string());
}

std::optional<int64_t> UuidV7UnixMs(std::string_view id) {
  // xxxxxxxx-xxxx-7xxx-...: the first 12 hex digits are the milliseconds, digit 15 the version.
  if (id.size() != 36 || id[8] != '-' || id[13] != '-' || id[14] != '7') return std::nullopt;
  std::string hex = std::string(id.substr(0, 8)) + std::string(id.substr(9, 4));
  int64_t ms = 0;
  auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), ms, 16);
  if (ec != std::errc() || end != hex.data() + hex.size()) return std::nullopt;
  return ms;
}

TaskSpans::TaskSpans(otel::Exporter* tracer, const store::ClaimedItem& item)
    : parent_(TraceOfSpec(item.spec)),
      task_id_(item.task_id),
      run_id_(item.run_id),
      attempt_(item.attempt) {
  if (parent_) trace_id_ = parent_->trace_id;
  if (parent_ && parent_->sampled) tracer_ = tracer;
}

void TaskSpans::Emit(std::string name, int64_t start_ns, int64_t end_ns, const Status& status,
                     std::vector<std::pair<std::string, json>> attributes) const {
  if (tracer_ == nullptr) return;
  otel::Span span = otel::StartSpan(parent_->Child(), parent_->span_id, std::move(name),
                                    otel::SpanKind::kInternal);
  span.start_unix_nano = start_ns;
  span.end_unix_nano = std::max(end_ns, start_ns);
  span.attributes = {{"synaps.task.id", task_id_},
                     {"synaps.run.id", run_id_},
                     {"synaps.task.attempt", attempt_}};
  for (auto& a : attributes) span.attributes.push_back(std::move(a));
  if (!status) {
    span.error = true;
    span.status_message = status.error().message;
  }
  tracer_->Export(std::move(span));
}

void TaskSpans::Claimed(int64_t start_ns, int64_t end_ns, size_t batch) const {
  if (tracer_ == nullptr) return;
  if (attempt_ == 1) {
    if (auto created_ms = UuidV7UnixMs(task_id_)) {
      Emit("synaps.queue.wait", *created_ms * 1'000'000, end_ns, Ok(), {});
    }
  }
  Emit("synaps.claim", start_ns, end_ns, Ok(),
       {{"synaps.claim.batch_size", static_cast<int64_t>(batch)}});
}

void TaskSpans::Uploaded(int64_t start_ns, int64_t end_ns, size_t bytes,
                         const Status& put) const {
  Emit("synaps.upload", start_ns, end_ns, put, {{"synaps.upload.bytes", static_cast<int64_t>(bytes)}});
}

void TaskSpans::Completed(int64_t start_ns, int64_t end_ns, size_t batch, std::string_view state,
                          const Status& written) const {
  Emit("synaps.complete", start_ns, end_ns, written,
       {{"synaps.complete.batch_size", static_cast<int64_t>(batch)},
        {"synaps.complete.outcome", std::string(state)}});
}

}  // namespace synaps::worker
