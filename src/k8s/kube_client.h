// A read-only client of the Kubernetes API for the worker: it lists the pods and the events of
// its own namespace, as the pod's service account, and can do nothing else. Every request is a
// GET built by detail::BuildGetRequest; no other verb exists in src/k8s (a test checks the
// sources), and the chart's Role grants only get/list/watch on pods and events besides.
//
// Requests run on the worker's Boost.Asio event loop through libcurl's multi interface
// (providers/detail/curl_multi.h): any number in flight on one thread, connections reused.
// TLS is always verified against the cluster CA; the bearer token is read from its file per
// request (ServiceAccountToken re-reads it when the kubelet rotates it) and never logged.
//
// Thread safety: none. Construct, call and destroy the client on its executor's thread. Each
// callback runs exactly once, on that thread, never inside the call that started it. Destroying
// the client abandons the requests in flight: their callbacks never run.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "k8s/detail/get_request.h"
#include "k8s/in_cluster_config.h"

namespace synaps::k8s {

using ListQuery = detail::ListQuery;

class KubeClient {
 public:
  // The list object as the API server sent it (a PodList or EventList: `items`, and
  // `metadata.continue` when `limit` cut it short), or the error:
  //   kUnauthenticated   401: the token was refused (expired, or not this cluster's), or the
  //                      token file is missing or empty
  //   kPermissionDenied  403: the service account may not list this (the RBAC Role is missing)
  //   kNotFound          404: no such namespace or resource
  //   kInvalidArgument   other 4xx, e.g. a malformed selector (the server's message is kept)
  //   kDeadlineExceeded  no answer within the timeout (also 408, 504)
  //   kUnavailable       cannot connect, TLS verification failed (the server's certificate is
  //                      not from the cluster CA), the connection broke, 429, 5xx
  //   kResourceExhausted the answer is larger than max_response_bytes
  //   kInternal          the answer is not JSON, or not a list
  // Messages start with "kubernetes: " and name the request (method and path).
  using Done = std::function<void(Result<nlohmann::json>)>;

  KubeClient(boost::asio::any_io_executor executor, InClusterConfig config,
             KubeClientOptions options = {});
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  // GET /api/v1/namespaces/{namespace}/pods
  void ListPods(const ListQuery& query, Done done);
  // GET /api/v1/namespaces/{namespace}/events
  void ListEvents(const ListQuery& query, Done done);

  // The namespace every request reads (from the service account).
  const std::string& namespace_name() const;
  const InClusterConfig& config() const;
  // Requests started whose callbacks have not run yet.
  size_t requests_in_flight() const;
  // How often the token file was actually read.
  int64_t token_reads() const;

  struct Core;

 private:
  void List(const std::string& resource, const std::string& list_kind, const ListQuery& query,
            Done done);

  std::unique_ptr<Core> core_;
};

}  // namespace synaps::k8s
