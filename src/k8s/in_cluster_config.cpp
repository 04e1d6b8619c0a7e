#include "k8s/in_cluster_config.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "core/config.h"

namespace synaps::k8s {

namespace {

std::string Trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool IsRegularFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::optional<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

bool ValidNamespace(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return name.front() != '-' && name.back() != '-';
}

Result<InClusterConfig> LoadInClusterConfig(const InClusterSources& sources) {
  auto env = sources.env ? sources.env : [](const char* name) { return config::Env(name); };
  auto host = env("KUBERNETES_SERVICE_HOST");
  auto port = env("KUBERNETES_SERVICE_PORT");
  if (!host || !port) {
    return Fail(ErrorCode::kNotFound,
                std::string("not running in a Kubernetes cluster: ") +
                    (host ? "KUBERNETES_SERVICE_PORT" : "KUBERNETES_SERVICE_HOST") +
                    " is not set (the Kubernetes tools work only in a worker running as a pod "
                    "with a service account)",
                host ? "KUBERNETES_SERVICE_PORT" : "KUBERNETES_SERVICE_HOST");
  }
  int port_number = 0;
  try {
    port_number = static_cast<int>(config::ParseInt("KUBERNETES_SERVICE_PORT", *port, 1, 65535));
  } catch (const ConfigError& e) {
    return Fail(ErrorCode::kInvalidArgument, e.what(), "KUBERNETES_SERVICE_PORT");
  }
  if (host->find_first_of("/?#@ \t\r\n") != std::string::npos) {
    return Fail(ErrorCode::kInvalidArgument,
                "KUBERNETES_SERVICE_HOST='" + *host + "' is not a host name or address",
                "KUBERNETES_SERVICE_HOST");
  }
  bool ipv6 = host->find(':') != std::string::npos;

  std::string dir = sources.service_account_dir;
  if (dir.empty()) dir = env("SYNAPS_K8S_SERVICE_ACCOUNT_DIR").value_or(kServiceAccountDir);
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();

  InClusterConfig config;
  config.server =
      "https://" + (ipv6 ? "[" + *host + "]" : *host) + ":" + std::to_string(port_number);
  config.token_path = dir + "/token";
  config.ca_path = dir + "/ca.crt";
  if (!IsRegularFile(config.token_path)) {
    return Fail(ErrorCode::kNotFound,
                "no service-account token at " + config.token_path +
                    ": the pod has no token mounted (automountServiceAccountToken is false; in "
                    "the Helm chart, worker.kubernetesAccess=true mounts it)",
                "token");
  }
  if (!IsRegularFile(config.ca_path)) {
    return Fail(ErrorCode::kNotFound,
                "no cluster CA at " + config.ca_path +
                    ": without it the API server's certificate cannot be verified",
                "ca.crt");
  }
  std::string namespace_path = dir + "/namespace";
  if (auto text = ReadSmallFile(namespace_path)) {
    config.namespace_name = Trim(*text);
  } else if (auto pod_namespace = env("POD_NAMESPACE")) {
    config.namespace_name = Trim(*pod_namespace);
  } else {
    return Fail(
        ErrorCode::kNotFound,
        "the pod's namespace is unknown: no " + namespace_path + " and POD_NAMESPACE is not set",
        "namespace");
  }
  if (!ValidNamespace(config.namespace_name)) {
    return Fail(ErrorCode::kInvalidArgument,
                "'" + config.namespace_name + "' is not a valid namespace name", "namespace");
  }
  return config;
}

KubeClientOptions KubeClientOptionsFromEnv() {
  KubeClientOptions options;
  options.connect_timeout = std::chrono::milliseconds(config::EnvInt(
      "SYNAPS_K8S_CONNECT_TIMEOUT_MS", options.connect_timeout.count(), 100, 600'000));
  options.request_timeout = std::chrono::milliseconds(
      config::EnvInt("SYNAPS_K8S_TIMEOUT_MS", options.request_timeout.count(), 100, 600'000));
  return options;
}

}  // namespace synaps::k8s
