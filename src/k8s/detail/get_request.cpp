#include "k8s/detail/get_request.h"

namespace synaps::k8s::detail {

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

Result<GetRequest> BuildGetRequest(std::string_view method, std::string_view server,
                                   std::string_view path, const ListQuery& query) {
  if (method != "GET") {
    return Fail(ErrorCode::kPermissionDenied,
                "the Kubernetes client is read-only: only GET requests can be built, not '" +
                    std::string(method) + "'");
  }
  if (!(path.starts_with("/api/") || path.starts_with("/apis/")) ||
      path.find_first_of("?# \t\r\n%") != std::string_view::npos ||
      path.find("..") != std::string_view::npos || path.find("//") != std::string_view::npos) {
    return Fail(ErrorCode::kInvalidArgument,
                "not a Kubernetes API path: '" + std::string(path) + "'", "path");
  }
  if (query.limit < 0) {
    return Fail(ErrorCode::kInvalidArgument, "limit must not be negative", "limit");
  }
  std::string url = std::string(server) + std::string(path);
  char separator = '?';
  auto add = [&](std::string_view key, std::string_view value) {
    url += separator;
    url += key;
    url += '=';
    url += PercentEncode(value);
    separator = '&';
  };
  if (query.limit > 0) add("limit", std::to_string(query.limit));
  if (!query.label_selector.empty()) add("labelSelector", query.label_selector);
  if (!query.field_selector.empty()) add("fieldSelector", query.field_selector);
  return GetRequest{std::string(method), std::move(url)};
}

}  // namespace synaps::k8s::detail
