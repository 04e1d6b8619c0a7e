#include "api/http_types.h"

#include <string>
#include <vector>

#include "core/http_grammar.h"

namespace synaps::api {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string UnsafeResponseHeader(const HttpResponse& response) {
  if (!IsSafeHeaderValue(response.content_type)) return "Content-Type";
  for (const auto& [name, value] : response.headers) {
    if (!IsHttpToken(name)) return name.empty() ? "(empty name)" : "(malformed name)";
    if (!IsSafeHeaderValue(value)) return name;
  }
  return {};
}

std::string OriginFormTarget(std::string_view target) {
  if (!target.empty() && target.front() == '/') return std::string(target);
  // absolute-form (RFC 9112 §3.2.2): scheme "://" authority path-abempty [ "?" query ].
  std::string lowered = Lower(target.substr(0, 8));
  size_t skip = lowered.starts_with("http://") ? 7 : lowered.starts_with("https://") ? 8 : 0;
  if (skip == 0) return {};
  size_t path = target.find_first_of("/?", skip);
  if (path == skip) return {};  // no authority
  if (path == std::string_view::npos) return "/";
  if (target[path] == '?') return "/" + std::string(target.substr(path));
  return std::string(target.substr(path));
}

int CheckRequestFraming(unsigned version, std::string_view method, std::string_view target,
                        int host_fields, std::string_view transfer_encoding,
                        bool has_content_length, std::string* why) {
  auto refuse = [&](int status, std::string reason) {
    if (why != nullptr) *why = std::move(reason);
    return status;
  };
  if (version != 10 && version != 11) return refuse(505, "only HTTP/1.0 and HTTP/1.1 are served");
  if (host_fields > 1) return refuse(400, "more than one Host header field");
  if (version == 11 && host_fields == 0) {
    return refuse(400, "an HTTP/1.1 request needs a Host header field (RFC 9112 §3.2)");
  }
  if (method == "CONNECT") return refuse(400, "CONNECT is not served");
  if (OriginFormTarget(target).empty()) {
    return refuse(400, "the request target must be an absolute path (origin-form, \"/...\")");
  }
  if (transfer_encoding.empty()) return 0;
  if (version == 10) return refuse(400, "Transfer-Encoding in an HTTP/1.0 request");
  if (has_content_length) {
    return refuse(400, "Transfer-Encoding and Content-Length together (RFC 9112 §6.1)");
  }
  std::vector<std::string> codings;
  std::string_view rest = transfer_encoding;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    if (!item.empty()) codings.push_back(Lower(item));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (codings.size() == 1 && codings[0] == "chunked") return 0;
  for (const auto& c : codings) {
    if (!IsHttpToken(c)) return refuse(400, "malformed Transfer-Encoding");
  }
  if (codings.empty() || codings.back() != "chunked") {
    return refuse(400, "the final transfer coding of a request must be chunked");
  }
  return refuse(501, "transfer codings other than chunked are not implemented");
}

}  // namespace synaps::api
