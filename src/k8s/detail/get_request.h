// The one place where the Kubernetes client decides what it sends. It builds reads and nothing
// else: the only verb it accepts is GET, and the client has no other way to put a request on
// the wire (tests/unit/k8s/read_only_test.cpp checks both the builder and the sources).
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"

namespace synaps::k8s::detail {

// Parameters of a list call, sent as `limit`, `labelSelector` and `fieldSelector`. Empty or
// zero members are left out of the query.
struct ListQuery {
  int limit = 0;
  std::string label_selector;
  std::string field_selector;
};

// A read of the Kubernetes API: the verb (always "GET") and the full URL.
struct GetRequest {
  std::string method;
  std::string url;
};

// Builds the request for `path` (which must start with "/api/" or "/apis/" and carry no query
// or fragment) on `server` ("https://host:port"), with `query` percent-encoded. kPermissionDenied
// for any `method` other than "GET": the client is read-only. kInvalidArgument for a malformed
// path or a negative limit.
Result<GetRequest> BuildGetRequest(std::string_view method, std::string_view server,
                                   std::string_view path, const ListQuery& query = {});

// RFC 3986 percent-encoding of everything but the unreserved characters.
std::string PercentEncode(std::string_view text);

}  // namespace synaps::k8s::detail
