// The web console (web/, docs/console.md): its built files are embedded in the binary at build
// time (web/scripts/embed.mjs writes the table) and served by the API at `/`. Client routes
// (`/runs/…`) fall back to index.html; the API's own paths are never shadowed.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "api/http_types.h"

namespace synaps::api {

// One embedded file. `gzip` is its gzip-compressed form, empty when compression did not pay.
struct ConsoleAsset {
  std::string_view path;          // "/index.html", "/assets/index-3f2a9c.js"
  std::string_view content_type;
  std::string_view body;
  std::string_view gzip;
  bool immutable;                 // content-hashed name: cacheable forever
};

// Every embedded file; empty when the binary was built without the console
// (-DSYNAPS_BUILD_CONSOLE=OFF). Defined by the generated console_assets_data.cpp.
std::span<const ConsoleAsset> EmbeddedConsoleAssets();

// The Content-Security-Policy of every console response: no inline script or style, no
// framing, connections to this origin only.
inline constexpr std::string_view kConsoleCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

// The response for a GET of `path` (no query) that matched no API route, or nullopt when the
// console does not serve it (an API path, or no console embedded). `accept_encoding` is the
// request's Accept-Encoding header. Thread-safe.
std::optional<HttpResponse> ServeConsole(std::span<const ConsoleAsset> assets,
                                         std::string_view path,
                                         std::string_view accept_encoding);

}  // namespace synaps::api
