// Where the Kubernetes API is and who the worker is to it, read the way every in-cluster client
// reads it (client-go's rest.InClusterConfig):
//   KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT   the API server (set by the kubelet)
//   <dir>/token       the pod's service-account token (a bound token the kubelet rotates)
//   <dir>/ca.crt      the cluster CA that signs the API server's certificate
//   <dir>/namespace   the pod's namespace; POD_NAMESPACE when the file is absent
// where <dir> is /var/run/secrets/kubernetes.io/serviceaccount, or SYNAPS_K8S_SERVICE_ACCOUNT_DIR
// when set (for tests and for running a worker outside a cluster against a fake).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "core/error.h"

namespace synaps::k8s {

inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

struct InClusterConfig {
  std::string server;          // "https://10.96.0.1:443" ("https://[fd00::1]:443" for IPv6)
  std::string token_path;      // read on every request, re-read when it changes
  std::string ca_path;         // PEM bundle the server's certificate must chain to
  std::string namespace_name;  // the only namespace the client reads
};

// Where LoadInClusterConfig looks. The defaults are the real ones.
struct InClusterSources {
  // Empty: SYNAPS_K8S_SERVICE_ACCOUNT_DIR if set, else kServiceAccountDir.
  std::string service_account_dir;
  // The environment; nullopt for unset or empty. Defaults to the process environment.
  std::function<std::optional<std::string>(const char* name)> env;
};

// The configuration of the pod this process runs in. Errors:
//   kNotFound         not in a cluster: KUBERNETES_SERVICE_HOST/PORT unset, or no token or CA
//                     file (a pod without a mounted service-account token); the message says
//                     which and what to do
//   kInvalidArgument  a value is malformed (port, namespace); `field` names it
Result<InClusterConfig> LoadInClusterConfig(const InClusterSources& sources = {});

// Settings of the client, from the environment; throws ConfigError naming the variable.
struct KubeClientOptions {
  std::chrono::milliseconds connect_timeout{5'000};   // SYNAPS_K8S_CONNECT_TIMEOUT_MS
  std::chrono::milliseconds request_timeout{15'000};  // SYNAPS_K8S_TIMEOUT_MS, whole request
  size_t max_response_bytes = 16 << 20;               // a larger answer is refused
};
KubeClientOptions KubeClientOptionsFromEnv();

// True for a valid namespace name (an RFC 1123 label: [a-z0-9-], at most 63, alphanumeric at
// both ends).
bool ValidNamespace(std::string_view name);

}  // namespace synaps::k8s
