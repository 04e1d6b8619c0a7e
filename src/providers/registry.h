// Makes providers from route settings and keeps them: one provider per (kind, base URL, key
// variable), so calls to one endpoint share connections. API keys are read from the
// environment variable the route names (or the kind's default), at first use, and are never
// stored anywhere else.
//
// Outbound policy (docs/security.md, "Outbound requests"): the base URL passes
// net::ParseTarget (no metadata or never-reachable address in any spelling, canonical host),
// every connection a provider opens is checked against net::CheckAddress and
// ProviderSettings::address_policy at the socket (so a name that resolves to a forbidden or,
// under SYNAPS_TOOLS_DENY_PRIVATE, an internal address is never connected to), and a key goes
// only to the hosts it is bound to (providers/key_hosts.h).
//
// Kinds:
//   openai             https://api.openai.com/v1   key OPENAI_API_KEY (required)
//   kimi               https://api.moonshot.ai/v1  key MOONSHOT_API_KEY (required)
//   openai-compatible  baseUrl required            key optional (apiKeyEnv names it)
//   local              built in, offline (providers/local_provider.h)
//
// Thread safety: none; use it on the worker's event loop, like the providers it makes.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "net/url_policy.h"
#include "providers/key_hosts.h"
#include "providers/provider.h"
#include "providers/retry.h"

namespace synaps::providers {

// Which provider a route uses.
struct ProviderSpec {
  std::string provider;     // openai, kimi, openai-compatible, local
  std::string base_url;     // overrides the kind's default; required for openai-compatible
  // Environment variable holding the key; empty means the kind's default (none for
  // openai-compatible). Must end in _API_KEY, so that a route cannot send other secrets of
  // the worker (database URL, JWT secret, S3 keys) to a model server.
  std::string api_key_env;
};

// Reads {provider, baseUrl?, apiKeyEnv?} from a route object; other members are ignored (they
// belong to the route: model, params, fallbacks, ...). kInvalidArgument naming the member when
// one has the wrong type.
Result<ProviderSpec> ProviderSpecFromJson(const nlohmann::json& route);

// Settings shared by every provider a registry makes.
struct ProviderSettings {
  std::chrono::milliseconds connect_timeout{10'000};   // SYNAPS_PROVIDER_CONNECT_TIMEOUT_MS
  std::chrono::milliseconds request_timeout{600'000};  // SYNAPS_PROVIDER_TIMEOUT_MS
  std::chrono::milliseconds idle_timeout{300'000};     // SYNAPS_PROVIDER_IDLE_TIMEOUT_MS
  // SYNAPS_PROVIDER_MAX_ATTEMPTS, SYNAPS_PROVIDER_RETRY_BASE_MS, SYNAPS_PROVIDER_RETRY_CAP_MS,
  // SYNAPS_PROVIDER_MAX_RETRY_AFTER_MS
  RetryPolicy retry;
  // SYNAPS_PROVIDER_MAX_IDLE_CONNECTIONS: connections kept open per provider, in use or idle
  // (detail::CurlMultiOptions); the worker raises it to its slots unless the variable is set.
  long max_idle_connections = 256;
  int local_latency_ms = 0;                            // SYNAPS_LOCAL_LATENCY_MS
  net::AddressPolicy address_policy;                   // SYNAPS_TOOLS_DENY_PRIVATE
  KeyHostBindings key_hosts;                           // SYNAPS_PROVIDER_KEY_HOSTS
};

// Reads ProviderSettings from the environment; throws ConfigError naming the variable.
ProviderSettings ProviderSettingsFromEnv();

class ProviderRegistry {
 public:
  ProviderRegistry(boost::asio::any_io_executor executor, ProviderSettings settings = {});
  // Destroys the providers; calls still in flight are abandoned without callbacks.
  ~ProviderRegistry();
  ProviderRegistry(const ProviderRegistry&) = delete;
  ProviderRegistry& operator=(const ProviderRegistry&) = delete;

  // The provider for `spec`, made on first use; owned by the registry. kInvalidArgument (with
  // `field` set to provider, baseUrl or apiKeyEnv) for an unknown kind, a bad base URL, a bad
  // key variable name, or a key variable that is not set in the worker's environment;
  // kPermissionDenied when the outbound policy refuses the base URL (field baseUrl) or the key
  // is not bound to its host (field apiKeyEnv).
  Result<Provider*> Get(const ProviderSpec& spec);

  const ProviderSettings& settings() const { return settings_; }

  // The kinds Get() knows.
  static const std::vector<std::string>& Kinds();

 private:
  boost::asio::any_io_executor executor_;
  ProviderSettings settings_;
  std::map<std::string, std::unique_ptr<Provider>> providers_;  // by kind|base URL|key variable
};

// Raises this process's soft limit on open files to `wanted` (at most the hard limit) and
// returns the limit in force. A call in flight over HTTP/1.1 holds one socket, so a worker
// with N calls in flight needs somewhat more than N descriptors; the usual default of 1024
// is too low for thousands. kResourceExhausted when the hard limit is below `wanted`.
Result<uint64_t> RaiseOpenFileLimit(uint64_t wanted);

}  // namespace synaps::providers
