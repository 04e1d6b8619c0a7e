// HTTP/1.1 server on Boost.Beast with keep-alive. Network I/O runs on a few event-loop threads;
// handlers (which may block on PostgreSQL) run on a separate pool, so a slow handler never
// stalls accepting or reading other connections. Bodies over `body_limit` get a 413 before the
// handler sees them; unparseable requests get a 400.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "api/http_types.h"
#include "core/error.h"

namespace synaps::api {

struct HttpServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8081;         // 0 = any free port
  int io_threads = 2;
  int handler_threads = 8;
  size_t body_limit = 1 << 20;  // bytes
};

class HttpServer {
 public:
  // Runs on a handler thread; must not throw (exceptions become 500s).
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  // Builds the JSON error response for transport-level refusals (413, 400).
  using ErrorResponder = std::function<HttpResponse(int status, const std::string& code,
                                                    const std::string& message)>;

  HttpServer(HttpServerOptions options, Handler handler, ErrorResponder error_responder);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving; returns the bound port. kUnavailable when the address is in use.
  Result<uint16_t> Start();
  // Stops accepting, closes connections, joins threads. Idempotent.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace synaps::api
