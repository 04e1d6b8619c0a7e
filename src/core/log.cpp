#include "core/log.h"

#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace synaps {
namespace {

thread_local std::string t_trace_id;

// One JSON object per line: {"ts_ms","level","msg","traceId"?}; the message is escaped, so any
// text is safe.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto secs = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch());
    nlohmann::json line = {
        {"ts_ms", secs.count()},
        {"level", spdlog::level::to_string_view(msg.level).data()},
        {"msg", std::string(msg.payload.data(), msg.payload.size())},
    };
    if (!t_trace_id.empty()) line["traceId"] = t_trace_id;
    std::string s = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    s.push_back('\n');
    dest.append(s.data(), s.data() + s.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// Text lines: " trace=<id>" after the message while a LogTraceScope is active.
class TraceFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    if (t_trace_id.empty()) return;
    static constexpr std::string_view kPrefix = " trace=";
    dest.append(kPrefix.data(), kPrefix.data() + kPrefix.size());
    dest.append(t_trace_id.data(), t_trace_id.data() + t_trace_id.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<TraceFlag>();
  }
};

}  // namespace

LogTraceScope::LogTraceScope(std::string trace_id) : previous_(std::move(t_trace_id)) {
  t_trace_id = std::move(trace_id);
}

LogTraceScope::~LogTraceScope() { t_trace_id = std::move(previous_); }

const std::string& CurrentLogTraceId() { return t_trace_id; }

void InitLogging(const std::string& level, bool json) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    throw ConfigError("SYNAPS_LOG_LEVEL='" + level +
                      "' is not a level: use trace, debug, info, warn, error or off");
  }
  auto logger = spdlog::get("synaps");
  if (!logger) logger = spdlog::stderr_logger_mt("synaps");
  spdlog::set_default_logger(logger);
  spdlog::set_level(lvl);
  if (json) {
    spdlog::set_formatter(std::make_unique<JsonFormatter>());
  } else {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<TraceFlag>('*').set_pattern("%H:%M:%S.%e %^%l%$ %v%*");
    spdlog::set_formatter(std::move(formatter));
  }
  spdlog::flush_on(spdlog::level::info);
}

}  // namespace synaps
