// Reading configuration from the environment. Every reader throws ConfigError naming the
// variable when its value is malformed, so bad configuration fails at startup, never later.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace synaps::config {

// The variable's value, or nullopt when unset or empty.
std::optional<std::string> Env(const char* name);
std::string EnvOr(const char* name, const std::string& fallback);
// A command-line flag wins over the environment: `flag` when given, else EnvOr(name, fallback).
std::string FlagOrEnv(const std::optional<std::string>& flag, const char* name,
                      const std::string& fallback = {});
// An integer in [min, max]; `fallback` when unset.
int64_t EnvInt(const char* name, int64_t fallback, int64_t min, int64_t max);
// Parses `value` as an integer in [min, max]; `what` names it in the error.
int64_t ParseInt(const std::string& what, const std::string& value, int64_t min, int64_t max);
// A comma-separated list with blanks trimmed and empties dropped.
std::vector<std::string> SplitList(const std::string& value);

// host:port, as used by SYNAPS_LISTEN. Port 0 asks the OS for a free one.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
HostPort ParseHostPort(const std::string& what, const std::string& value);

}  // namespace synaps::config
