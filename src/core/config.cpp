#include "core/config.h"

#include <cstdlib>
#include <stdexcept>

#include "core/error.h"

namespace synaps::config {

std::optional<std::string> Env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

std::string EnvOr(const char* name, const std::string& fallback) {
  return Env(name).value_or(fallback);
}

std::string FlagOrEnv(const std::optional<std::string>& flag, const char* name,
                      const std::string& fallback) {
  return flag ? *flag : EnvOr(name, fallback);
}

int64_t ParseInt(const std::string& what, const std::string& value, int64_t min, int64_t max) {
  size_t used = 0;
  int64_t n = 0;
  try {
    n = std::stoll(value, &used, 10);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size()) {
    throw ConfigError(what + "='" + value + "' is not an integer");
  }
  if (n < min || n > max) {
    throw ConfigError(what + "=" + value + " is out of range: use a value from " +
                      std::to_string(min) + " to " + std::to_string(max));
  }
  return n;
}

int64_t EnvInt(const char* name, int64_t fallback, int64_t min, int64_t max) {
  auto v = Env(name);
  if (!v) return fallback;
  return ParseInt(name, *v, min, max);
}

std::vector<std::string> SplitList(const std::string& value) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= value.size()) {
    size_t end = value.find(',', start);
    if (end == std::string::npos) end = value.size();
    std::string item = value.substr(start, end - start);
    size_t b = item.find_first_not_of(" \t");
    size_t e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
    start = end + 1;
  }
  return out;
}

HostPort ParseHostPort(const std::string& what, const std::string& value) {
  size_t colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw ConfigError(what + "='" + value + "' must be host:port, e.g. 0.0.0.0:8081");
  }
  HostPort hp;
  hp.host = value.substr(0, colon);
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  hp.port = static_cast<uint16_t>(ParseInt(what + " port", value.substr(colon + 1), 0, 65535));
  return hp;
}

}  // namespace synaps::config
