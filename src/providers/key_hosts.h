// Which hosts each provider key may be sent to (docs/security.md, "Outbound requests"). A route
// names a key variable (apiKeyEnv) and a baseUrl; without this binding, whoever writes a route
// could ship OPENAI_API_KEY to a host of their choosing. A key goes only to the hosts it is
// bound to:
//
//   OPENAI_API_KEY     api.openai.com                        (built in)
//   MOONSHOT_API_KEY   api.moonshot.ai, api.moonshot.cn      (built in)
//   any other          none, until the operator binds it
//
// SYNAPS_PROVIDER_KEY_HOSTS adds bindings: comma-separated VAR=host entries, host as in
// net::MatchHost ("vllm.internal:8000", "*.example.com", "127.0.0.1:47090", "[fd00::7]"), e.g.
//   SYNAPS_PROVIDER_KEY_HOSTS="DEMO_API_KEY=127.0.0.1:47090,OPENAI_API_KEY=gateway.corp:443"
// The worker's environment is the operator's, not a route author's: the registry can name a
// variable but never widen where it goes.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "net/url_policy.h"

namespace synaps::providers {

class KeyHostBindings {
 public:
  // The built-in bindings only.
  KeyHostBindings();

  // The built-in bindings plus those of `text` (SYNAPS_PROVIDER_KEY_HOSTS's syntax).
  // kInvalidArgument naming the bad entry.
  static Result<KeyHostBindings> Parse(std::string_view text);
  // Parse(SYNAPS_PROVIDER_KEY_HOSTS); throws ConfigError naming the variable.
  static KeyHostBindings FromEnvironment();

  // Ok when the key in `key_env` may be sent to `target`; kPermissionDenied (field apiKeyEnv)
  // saying where it may go and how to bind more, otherwise.
  Status Check(const std::string& key_env, const net::Target& target) const;

  // The host patterns `key_env` is bound to (empty when none).
  std::vector<std::string> HostsOf(const std::string& key_env) const;

 private:
  std::map<std::string, std::vector<std::string>> hosts_;  // by variable name
};

// True for an environment variable a route may name for its key: upper case, digits and
// underscores, ending in _API_KEY (so that no other secret of the worker can be named).
bool IsKeyVariableName(std::string_view name);

}  // namespace synaps::providers
