// Process-wide logging setup. Components log through spdlog directly; this only configures it.
#pragma once

#include <string>

namespace synaps {

// Configures the default spdlog logger: JSON lines on stderr when `json` is true (services),
// plain text otherwise (CLI verbs). `level` is one of trace, debug, info, warn, error, off;
// anything else is a ConfigError.
void InitLogging(const std::string& level, bool json);

}  // namespace synaps
