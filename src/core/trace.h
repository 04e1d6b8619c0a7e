// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` and `tracestate`
// a request arrives with, carried from the API through the task's spec to the worker and on to
// the model provider and HTTP tools, so one trace spans submit to model call
// (docs/observability.md, "Trace context").
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace synaps {

struct TraceContext {
  std::string trace_id;    // 32 lowercase hex digits, not all zero
  std::string span_id;     // 16 lowercase hex digits, not all zero: the span this context names
  bool sampled = true;     // trace-flags bit 0
  std::string tracestate;  // carried unchanged; "" when absent or not acceptable

  // The context of a `traceparent` header (and its `tracestate`), or nullopt when the header is
  // absent or malformed: the caller then starts a new trace, as the specification says. Version
  // 00 must be exactly 55 characters; a later version is read by its first four fields.
  // `tracestate` is kept only when it is at most 512 printable ASCII characters.
  static std::optional<TraceContext> Parse(std::string_view traceparent,
                                           std::string_view tracestate = {});
  // A new trace (random ids), sampled.
  static TraceContext Start();
  // The same trace under a new span id (a child of this span).
  TraceContext Child() const;
  // "00-<trace_id>-<span_id>-<flags>".
  std::string Traceparent() const;
};

}  // namespace synaps
