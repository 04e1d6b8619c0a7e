// OpenTelemetry span export over OTLP/HTTP with JSON encoding (docs/observability.md,
// "Exporting spans"). Configured by the standard variables: OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, used as is), OTEL_EXPORTER_OTLP_HEADERS (and _TRACES_
// HEADERS), OTEL_EXPORTER_OTLP_TIMEOUT (ms), OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
// OTEL_TRACES_SAMPLER (+ _ARG) and OTEL_TRACES_EXPORTER=none.
//
// Off the hot path: Export() only appends to a bounded queue (it never blocks and never does
// I/O); one thread sends batches. A full queue drops the span and counts it; an unreachable or
// failing collector costs the batch it was sent and a counter, nothing else. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/trace.h"

namespace synaps::otel {

enum class SpanKind { kInternal = 1, kServer = 2, kClient = 3 };

struct Span {
  std::string trace_id;        // 32 hex
  std::string span_id;         // 16 hex
  std::string parent_span_id;  // 16 hex; "" for a root span
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  int64_t start_unix_nano = 0;
  int64_t end_unix_nano = 0;
  // Attribute values: strings, integers, doubles or booleans (other JSON is sent as its text).
  std::vector<std::pair<std::string, nlohmann::json>> attributes;
  bool error = false;
  std::string status_message;  // with error
};

// Unix time in nanoseconds, now.
int64_t NowUnixNano();

struct ExporterOptions {
  std::string url;                   // the traces endpoint, e.g. http://collector:4318/v1/traces
  std::vector<std::string> headers;  // "Name: value", sent with every batch
  std::map<std::string, std::string> resource;  // service.name and OTEL_RESOURCE_ATTRIBUTES
  std::chrono::milliseconds timeout{10000};
  size_t max_queue = 2048;
  size_t max_batch = 512;
  std::chrono::milliseconds interval{1000};  // a batch leaves at least this often
};

// OTEL_TRACES_SAMPLER: always_on, always_off, traceidratio, parentbased_always_on (the
// default), parentbased_always_off, parentbased_traceidratio; OTEL_TRACES_SAMPLER_ARG is the
// ratio (0..1, default 1).
struct SamplerConfig {
  enum class Root { kOn, kOff, kRatio } root = Root::kOn;
  bool parent_based = true;
  double ratio = 1.0;

  static Result<SamplerConfig> Parse(const std::string& name, const std::string& arg);
  // Whether a trace this process starts is recorded (ratio: by the trace id's low 64 bits).
  bool SampleRoot(const std::string& trace_id) const;
  // Whether a span under a parent with `parent_sampled` is recorded.
  bool SampleChild(bool parent_sampled, const std::string& trace_id) const {
    return parent_based ? parent_sampled : SampleRoot(trace_id);
  }
};

class Exporter {
 public:
  explicit Exporter(ExporterOptions options);
  // Sends what is queued, then stops; with the collector failing, it waits for one batch's
  // timeout at most and drops the rest.
  ~Exporter();
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  // From the environment; nullptr when no endpoint is set or OTEL_TRACES_EXPORTER is "none".
  // kInvalidArgument for a malformed variable (a bad URL, header or sampler).
  static Result<std::unique_ptr<Exporter>> FromEnvironment(const std::string& service_name);

  const SamplerConfig& sampler() const { return sampler_; }
  void set_sampler(SamplerConfig s) { sampler_ = s; }

  // Queues the span (never blocks). Spans of unsampled traces should not be passed in.
  void Export(Span span);

  uint64_t exported() const { return exported_.load(); }
  uint64_t dropped() const { return dropped_.load(); }  // queue full, or the collector failed
  uint64_t failed_batches() const { return failed_batches_.load(); }

  // The OTLP/JSON request body of `spans` (ExportTraceServiceRequest), as sent.
  static std::string EncodeText(const std::vector<Span>& spans,
                                const std::map<std::string, std::string>& resource);
  // The same, parsed (tests and readers).
  static nlohmann::json Encode(const std::vector<Span>& spans,
                               const std::map<std::string, std::string>& resource);

 private:
  void Loop();
  // Posts one batch; false when the collector could not take it (the spans are counted dropped).
  bool Send(std::vector<Span> batch);

  const ExporterOptions options_;
  SamplerConfig sampler_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Span> queue_;  // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  std::atomic<uint64_t> exported_{0}, dropped_{0}, failed_batches_{0};
  std::thread thread_;
};

// A span of `ctx` (its span id) under `parent_span_id`, started now.
Span StartSpan(const TraceContext& ctx, std::string parent_span_id, std::string name,
               SpanKind kind);

}  // namespace synaps::otel
