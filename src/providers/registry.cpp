#include "providers/registry.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/config.h"
#include "providers/local_provider.h"
#include "providers/openai_provider.h"

namespace synaps::providers {

using nlohmann::json;

namespace {

struct KindDefaults {
  const char* base_url;     // "" when the route must give one
  const char* api_key_env;  // "" when no key is needed by default
};

const std::map<std::string, KindDefaults>& RemoteKinds() {
  static const std::map<std::string, KindDefaults> kinds = {
      {"openai", {"https://api.openai.com/v1", "OPENAI_API_KEY"}},
      {"kimi", {"https://api.moonshot.ai/v1", "MOONSHOT_API_KEY"}},
      {"openai-compatible", {"", ""}},
  };
  return kinds;
}

Result<std::string> NormalizeBaseUrl(std::string url) {
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    return Fail(ErrorCode::kInvalidArgument,
                "baseUrl '" + url + "' must start with http:// or https://", "baseUrl");
  }
  if (url.find_first_of(" \t\r\n?#") != std::string::npos) {
    return Fail(ErrorCode::kInvalidArgument,
                "baseUrl '" + url + "' must not contain spaces, a query or a fragment",
                "baseUrl");
  }
  while (url.ends_with("/")) url.pop_back();
  if (url.ends_with("/chat/completions")) {
    return Fail(ErrorCode::kInvalidArgument,
                "baseUrl '" + url + "' names the endpoint; give the API root (e.g. ending in /v1)",
                "baseUrl");
  }
  return url;
}

std::chrono::milliseconds EnvMs(const char* name, std::chrono::milliseconds fallback,
                                int64_t min, int64_t max) {
  return std::chrono::milliseconds(config::EnvInt(name, fallback.count(), min, max));
}

}  // namespace

Result<ProviderSpec> ProviderSpecFromJson(const json& route) {
  if (!route.is_object()) {
    return Fail(ErrorCode::kInvalidArgument, "the route must be a JSON object", "route");
  }
  ProviderSpec spec;
  auto read = [&](const char* key, std::string& out) -> Status {
    auto it = route.find(key);
    if (it == route.end() || it->is_null()) return Ok();
    if (!it->is_string()) {
      return Fail(ErrorCode::kInvalidArgument, std::string("route.") + key + " must be a string",
                  std::string("route.") + key);
    }
    out = it->get<std::string>();
    return Ok();
  };
  RETURN_IF_ERROR(read("provider", spec.provider));
  RETURN_IF_ERROR(read("baseUrl", spec.base_url));
  RETURN_IF_ERROR(read("apiKeyEnv", spec.api_key_env));
  if (spec.provider.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "the route names no provider", "route.provider");
  }
  return spec;
}

ProviderSettings ProviderSettingsFromEnv() {
  ProviderSettings s;
  s.connect_timeout =
      EnvMs("SYNAPS_PROVIDER_CONNECT_TIMEOUT_MS", s.connect_timeout, 100, 600'000);
  s.request_timeout = EnvMs("SYNAPS_PROVIDER_TIMEOUT_MS", s.request_timeout, 100, 86'400'000);
  s.idle_timeout = EnvMs("SYNAPS_PROVIDER_IDLE_TIMEOUT_MS", s.idle_timeout, 0, 86'400'000);
  s.retry.max_attempts =
      static_cast<int>(config::EnvInt("SYNAPS_PROVIDER_MAX_ATTEMPTS", s.retry.max_attempts, 1, 20));
  s.retry.base_delay = EnvMs("SYNAPS_PROVIDER_RETRY_BASE_MS", s.retry.base_delay, 1, 600'000);
  s.retry.max_delay = EnvMs("SYNAPS_PROVIDER_RETRY_CAP_MS", s.retry.max_delay, 1, 3'600'000);
  s.retry.max_retry_after =
      EnvMs("SYNAPS_PROVIDER_MAX_RETRY_AFTER_MS", s.retry.max_retry_after, 0, 3'600'000);
  s.max_idle_connections = static_cast<long>(
      config::EnvInt("SYNAPS_PROVIDER_MAX_IDLE_CONNECTIONS", s.max_idle_connections, 0, 100'000));
  s.local_latency_ms =
      static_cast<int>(config::EnvInt("SYNAPS_LOCAL_LATENCY_MS", s.local_latency_ms, 0, 3'600'000));
  s.address_policy = net::AddressPolicy::FromEnvironment();
  s.key_hosts = KeyHostBindings::FromEnvironment();
  return s;
}

ProviderRegistry::ProviderRegistry(boost::asio::any_io_executor executor,
                                   ProviderSettings settings)
    : executor_(std::move(executor)), settings_(std::move(settings)) {}

ProviderRegistry::~ProviderRegistry() = default;

const std::vector<std::string>& ProviderRegistry::Kinds() {
  static const std::vector<std::string> kinds = {"openai", "kimi", "openai-compatible", "local"};
  return kinds;
}

Result<Provider*> ProviderRegistry::Get(const ProviderSpec& spec) {
  if (spec.provider == "local") {
    if (!spec.base_url.empty() || !spec.api_key_env.empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  "the local provider is built in: it takes no baseUrl or apiKeyEnv", "provider");
    }
    auto& slot = providers_["local"];
    if (!slot) slot = std::make_unique<LocalProvider>(executor_, settings_.local_latency_ms);
    return slot.get();
  }
  auto kind = RemoteKinds().find(spec.provider);
  if (kind == RemoteKinds().end()) {
    return Fail(ErrorCode::kInvalidArgument,
                "unknown provider '" + spec.provider +
                    "' (known: openai, kimi, openai-compatible, local)",
                "provider");
  }
  std::string base = spec.base_url.empty() ? kind->second.base_url : spec.base_url;
  if (base.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                "provider '" + spec.provider +
                    "' needs a baseUrl, e.g. http://vllm:8000/v1 or http://ollama:11434/v1",
                "baseUrl");
  }
  ASSIGN_OR_RETURN(std::string base_url, NormalizeBaseUrl(base));
  auto target = net::ParseTarget(base_url, net::kProviderSender);
  if (!target) {
    return Fail(target.error().code, "baseUrl: " + target.error().message, "baseUrl");
  }
  ASSIGN_OR_RETURN(base_url, NormalizeBaseUrl(target->url));
  std::string key_env = spec.api_key_env.empty() ? kind->second.api_key_env : spec.api_key_env;
  if (!key_env.empty() && !IsKeyVariableName(key_env)) {
    return Fail(ErrorCode::kInvalidArgument,
                "apiKeyEnv '" + key_env +
                    "' is not allowed: name an environment variable ending in _API_KEY "
                    "(upper case, digits, underscores)",
                "apiKeyEnv");
  }
  if (!key_env.empty()) RETURN_IF_ERROR(settings_.key_hosts.Check(key_env, *target));
  std::string cache_key = spec.provider + "|" + base_url + "|" + key_env;
  if (auto it = providers_.find(cache_key); it != providers_.end()) return it->second.get();

  std::string api_key;
  if (!key_env.empty()) {
    auto value = config::Env(key_env.c_str());
    if (!value) {
      return Fail(ErrorCode::kInvalidArgument,
                  "provider '" + spec.provider + "' needs an API key, but " + key_env +
                      " is not set in the worker's environment: set it (e.g. from a Kubernetes "
                      "Secret) or name another variable with the route's apiKeyEnv",
                  "apiKeyEnv");
    }
    // Secrets mounted from files often end in a newline; anything else would corrupt the
    // Authorization header.
    size_t b = value->find_first_not_of(" \t\r\n");
    size_t e = value->find_last_not_of(" \t\r\n");
    api_key = b == std::string::npos ? "" : value->substr(b, e - b + 1);
    bool clean = !api_key.empty() && std::none_of(api_key.begin(), api_key.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x21 || c == 0x7f;
    });
    if (!clean) {
      return Fail(ErrorCode::kInvalidArgument,
                  key_env + " is empty or contains spaces or control characters: check the "
                            "Secret it comes from",
                  "apiKeyEnv");
    }
  }
  OpenAiOptions o;
  o.name = spec.provider;
  o.base_url = base_url;
  o.api_key = std::move(api_key);
  o.connect_timeout = settings_.connect_timeout;
  o.request_timeout = settings_.request_timeout;
  o.idle_timeout = settings_.idle_timeout;
  o.retry = settings_.retry;
  o.connections.max_idle_connections = settings_.max_idle_connections;
  o.address_policy = settings_.address_policy;
  auto provider = std::make_unique<OpenAiCompatibleProvider>(executor_, std::move(o));
  Provider* raw = provider.get();
  providers_.emplace(std::move(cache_key), std::move(provider));
  return raw;
}

Result<uint64_t> RaiseOpenFileLimit(uint64_t wanted) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return Fail(ErrorCode::kInternal, std::string("getrlimit: ") + std::strerror(errno));
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted) {
    rlim_t target = wanted;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < target) target = limit.rlim_max;
    limit.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      return Fail(ErrorCode::kInternal, std::string("setrlimit: ") + std::strerror(errno));
    }
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted) {
    return Fail(ErrorCode::kResourceExhausted,
                "open-file limit is " + std::to_string(limit.rlim_cur) + " (hard limit), below the " +
                    std::to_string(wanted) + " wanted: raise it (ulimit -n, or the container's "
                    "nofile limit) or lower SYNAPS_WORKER_CONCURRENCY");
  }
  return static_cast<uint64_t>(limit.rlim_cur);
}

}  // namespace synaps::providers
