#include "providers/key_hosts.h"

#include "core/config.h"

namespace synaps::providers {

namespace {

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

std::string Joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

bool IsKeyVariableName(std::string_view name) {
  static constexpr std::string_view kSuffix = "_API_KEY";
  if (name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) return false;
  if (!(name[0] >= 'A' && name[0] <= 'Z')) return false;
  for (char c : name) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

KeyHostBindings::KeyHostBindings()
    : hosts_{{"OPENAI_API_KEY", {"api.openai.com"}},
             {"MOONSHOT_API_KEY", {"api.moonshot.ai", "api.moonshot.cn"}}} {}

Result<KeyHostBindings> KeyHostBindings::Parse(std::string_view text) {
  KeyHostBindings out;
  size_t i = 0;
  while (i <= text.size()) {
    size_t comma = std::min(text.find(',', i), text.size());
    std::string entry = Trim(text.substr(i, comma - i));
    i = comma + 1;
    if (entry.empty()) continue;
    size_t eq = entry.find('=');
    std::string var = eq == std::string::npos ? entry : Trim(entry.substr(0, eq));
    std::string host = eq == std::string::npos ? "" : Trim(entry.substr(eq + 1));
    if (eq == std::string::npos || !IsKeyVariableName(var) || host.empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  "entry \"" + entry + "\" must be VAR_API_KEY=host[:port]");
    }
    if (std::string problem = net::HostPatternProblem(host); !problem.empty()) {
      return Fail(ErrorCode::kInvalidArgument, "entry \"" + entry + "\": " + problem);
    }
    out.hosts_[var].push_back(host);
  }
  return out;
}

KeyHostBindings KeyHostBindings::FromEnvironment() {
  auto text = config::Env("SYNAPS_PROVIDER_KEY_HOSTS");
  if (!text) return KeyHostBindings();
  auto parsed = Parse(*text);
  if (!parsed) {
    throw ConfigError("SYNAPS_PROVIDER_KEY_HOSTS: " + parsed.error().message +
                      " (e.g. DEMO_API_KEY=127.0.0.1:47090,OPENAI_API_KEY=gateway.corp:443)");
  }
  return *parsed;
}

std::vector<std::string> KeyHostBindings::HostsOf(const std::string& key_env) const {
  auto it = hosts_.find(key_env);
  return it == hosts_.end() ? std::vector<std::string>{} : it->second;
}

Status KeyHostBindings::Check(const std::string& key_env, const net::Target& target) const {
  std::vector<std::string> hosts = HostsOf(key_env);
  for (const auto& pattern : hosts) {
    if (net::MatchHost(pattern, target.host, target.port) != net::HostMatch::kNone) return Ok();
  }
  std::string bound = hosts.empty() ? key_env + " is bound to no host"
                                    : key_env + " may be sent only to " + Joined(hosts);
  return Fail(ErrorCode::kPermissionDenied,
              bound + ", not to " + target.HostPort() +
                  ": a route cannot choose where a key goes; the operator binds a key to more "
                  "hosts with SYNAPS_PROVIDER_KEY_HOSTS=" +
                  key_env + "=" + target.HostPort(),
              "apiKeyEnv");
}

}  // namespace synaps::providers
