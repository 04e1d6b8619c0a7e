#include "core/trace.h"

#include "core/ids.h"

namespace synaps {

namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool AllZero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

bool AcceptableTracestate(std::string_view s) {
  if (s.size() > 512) return false;
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// Random lowercase hex from OpenSSL's DRBG through a per-thread pool (core/ids.h: one DRBG call
// per 4 KiB, not per id), never all zero (an invalid id). Not predictable from the ids a client
// sees in responses, so one tenant cannot guess the trace ids another tenant's requests get.
std::string NonZeroHex(size_t bytes) {
  std::string id = PooledRandomHex(bytes);
  while (AllZero(id)) id = PooledRandomHex(bytes);
  return id;
}

}  // namespace

std::optional<TraceContext> TraceContext::Parse(std::string_view traceparent,
                                                std::string_view tracestate) {
  // version "-" trace-id "-" parent-id "-" trace-flags
  if (traceparent.size() < 55) return std::nullopt;
  std::string_view version = traceparent.substr(0, 2);
  if (!IsLowerHex(version) || version == "ff") return std::nullopt;
  if (version == "00" ? traceparent.size() != 55
                      : traceparent.size() > 55 && traceparent[55] != '-') {
    return std::nullopt;
  }
  if (traceparent[2] != '-' || traceparent[35] != '-' || traceparent[52] != '-') {
    return std::nullopt;
  }
  std::string_view trace_id = traceparent.substr(3, 32);
  std::string_view span_id = traceparent.substr(36, 16);
  std::string_view flags = traceparent.substr(53, 2);
  if (!IsLowerHex(trace_id) || !IsLowerHex(span_id) || !IsLowerHex(flags)) return std::nullopt;
  if (AllZero(trace_id) || AllZero(span_id)) return std::nullopt;
  TraceContext t;
  t.trace_id = trace_id;
  t.span_id = span_id;
  t.sampled = (std::stoi(std::string(flags), nullptr, 16) & 1) != 0;
  if (AcceptableTracestate(tracestate)) t.tracestate = tracestate;
  return t;
}

TraceContext TraceContext::Start() {
  TraceContext t;
  t.trace_id = NonZeroHex(16);
  t.span_id = NonZeroHex(8);
  return t;
}

TraceContext TraceContext::Child() const {
  TraceContext t = *this;
  t.span_id = NonZeroHex(8);
  return t;
}

std::string TraceContext::Traceparent() const {
  return "00-" + trace_id + "-" + span_id + (sampled ? "-01" : "-00");
}

}  // namespace synaps
