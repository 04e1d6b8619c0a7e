#include "api/console_assets.h"

#include <array>

namespace synaps::api {
namespace {

// Paths the console must never answer for, even when no route matched: a typo under /v1 is a
// JSON 404 from the API, not the console's HTML.
bool IsApiPath(std::string_view path) {
  static constexpr std::array<std::string_view, 5> kExact = {"/healthz", "/readyz", "/metrics",
                                                             "/openapi.json", "/v1"};
  for (auto p : kExact) {
    if (path == p) return true;
  }
  return path.starts_with("/v1/");
}

bool AcceptsGzip(std::string_view accept_encoding) {
  // "gzip" listed without q=0; a client that sends "gzip;q=0" gets identity.
  size_t at = accept_encoding.find("gzip");
  if (at == std::string_view::npos) return false;
  std::string_view rest = accept_encoding.substr(at + 4);
  size_t comma = rest.find(',');
  std::string_view params = rest.substr(0, comma);
  return params.find("q=0") == std::string_view::npos || params.find("q=0.") != std::string_view::npos;
}

const ConsoleAsset* Find(std::span<const ConsoleAsset> assets, std::string_view path) {
  for (const auto& a : assets) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

HttpResponse AssetResponse(const ConsoleAsset& a, std::string_view accept_encoding) {
  HttpResponse r;
  r.status = 200;
  r.content_type = std::string(a.content_type);
  bool gzip = !a.gzip.empty() && AcceptsGzip(accept_encoding);
  r.body = std::string(gzip ? a.gzip : a.body);
  if (gzip) r.headers.push_back({"Content-Encoding", "gzip"});
  if (!a.gzip.empty()) r.headers.push_back({"Vary", "Accept-Encoding"});
  r.headers.push_back({"Cache-Control", a.immutable ? "public, max-age=31536000, immutable"
                                                    : "no-cache"});
  r.headers.push_back({"Content-Security-Policy", std::string(kConsoleCsp)});
  r.headers.push_back({"X-Content-Type-Options", "nosniff"});
  r.headers.push_back({"Referrer-Policy", "no-referrer"});
  r.headers.push_back({"X-Frame-Options", "DENY"});
  return r;
}

}  // namespace

std::optional<HttpResponse> ServeConsole(std::span<const ConsoleAsset> assets,
                                         std::string_view path,
                                         std::string_view accept_encoding) {
  if (assets.empty() || IsApiPath(path)) return std::nullopt;
  if (path == "/") path = "/index.html";
  if (const ConsoleAsset* a = Find(assets, path)) return AssetResponse(*a, accept_encoding);
  // A missing file (a name with an extension, or anything under /assets/) is a 404, so that a
  // stale hashed script never receives HTML; every other path is a client route.
  std::string_view last = path.substr(path.rfind('/') + 1);
  if (path.starts_with("/assets/") || last.find('.') != std::string_view::npos) {
    return std::nullopt;
  }
  if (const ConsoleAsset* index = Find(assets, "/index.html")) {
    return AssetResponse(*index, accept_encoding);
  }
  return std::nullopt;
}

}  // namespace synaps::api
