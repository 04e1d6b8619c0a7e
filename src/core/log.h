// Process-wide logging setup. Components log through spdlog directly; this only configures it.
#pragma once

#include <string>

namespace synaps {

// Configures the default spdlog logger: JSON lines on stderr when `json` is true (services),
// plain text otherwise (CLI verbs). `level` is one of trace, debug, info, warn, error, off;
// anything else is a ConfigError.
void InitLogging(const std::string& level, bool json);

// While alive, every log line this thread writes names `trace_id` ("traceId" in JSON lines,
// " trace=<id>" appended in text): the API sets it for the request it serves, the worker for the
// task step it runs, so a trace id found in a collector finds the log lines too. Scopes nest; the
// innermost wins. Not copyable; must end on the thread that began it.
class LogTraceScope {
 public:
  explicit LogTraceScope(std::string trace_id);
  ~LogTraceScope();
  LogTraceScope(const LogTraceScope&) = delete;
  LogTraceScope& operator=(const LogTraceScope&) = delete;

 private:
  std::string previous_;
};

// The trace id of this thread's innermost LogTraceScope, "" when none.
const std::string& CurrentLogTraceId();

}  // namespace synaps
