// HTTP/1.1 server on Boost.Beast with keep-alive. Network I/O runs on a few event-loop threads;
// handlers (which may block on PostgreSQL) run on a separate pool, so a slow handler never
// stalls accepting or reading other connections.
//
// Requests are parsed strictly (RFC 9112), and refused with a JSON error before any handler
// runs: a header larger than 64 KiB or a malformed message 400; HTTP/1.1 without exactly one
// Host 400; a request target that is not origin-form ("/path?query") or absolute-form 400;
// Transfer-Encoding together with Content-Length, or on HTTP/1.0, 400; a transfer coding other
// than a single "chunked" 501; a body over `body_limit` (or `large_body_limit`) 413; more large
// bodies at once than `max_large_bodies` 503. The target
// reaches the handler as sent (absolute-form reduced to its path and query).
//
// Responses: a response whose header names or values could split it (control characters;
// UnsafeResponseHeader in http_types.h) is never sent — a 500 JSON error goes instead, logged.
// Every response carries X-Content-Type-Options: nosniff.
//
// Limits: at most `max_connections` open connections in total (more get 503) and
// `max_connections_per_address` per client address (more get 429); each refusal answers the
// first request and closes. An accept error (EMFILE, ENFILE, ENOBUFS) pauses accepting, 10 ms
// doubling to 1 s, instead of spinning. A streamed response notices at once when its client
// goes away: the producer is released and never called again.
//
// Stop() is graceful: it stops accepting, closes idle connections, ends streams, lets the
// requests in flight finish and write their responses (with Connection: close) for at most
// `drain_timeout`, then closes whatever is left and joins the threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/http_types.h"
#include "core/error.h"

namespace synaps::api {

// What the server reports about itself (metrics). Called from event-loop threads; must be
// thread-safe and must not block.
class HttpServerObserver {
 public:
  virtual ~HttpServerObserver() = default;
  // A connection refused by a cap: reason "connections_total" or "connections_per_address".
  // Also "unsafe_response_header" for a response refused before it was sent.
  virtual void HttpRefused(std::string_view reason) = 0;
  // The number of open connections changed.
  virtual void HttpConnectionsOpen(int64_t open) = 0;
  // accept() failed (the server backs off before the next try).
  virtual void HttpAcceptFailed() = 0;
};

struct HttpServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8081;  // 0 = any free port
  int io_threads = 2;
  int handler_threads = 8;
  size_t body_limit = 1 << 20;                 // bytes
  // A larger limit for a few targets, each "METHOD /path" (origin-form; absolute-form targets
  // get `body_limit`): the batch submit. Not larger than body_limit: unused. The larger limit
  // is granted only to a request that carries an Authorization header (the handler checks it;
  // without one the body is held to `body_limit`), and to at most `max_large_bodies` requests
  // at once whose body may exceed `body_limit` (a declared length over it, or chunked): more
  // get 503 too_many_large_requests. So unauthenticated clients cannot make the server hold
  // more than `body_limit` per connection, and all clients together at most
  // max_large_bodies × large_body_limit in large bodies.
  size_t large_body_limit = 0;
  std::vector<std::string> large_body_routes;
  int max_large_bodies = 4;
  int64_t max_connections = 10000;             // 0 = no cap
  int64_t max_connections_per_address = 1000;  // 0 = no cap
  std::chrono::milliseconds drain_timeout{10000};
  HttpServerObserver* observer = nullptr;  // may be null; must outlive the server
};

class HttpServer {
 public:
  // Runs on a handler thread; must not throw (exceptions become 500s).
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  // Builds the JSON error response for transport-level refusals (400, 413, 429, 500, 501, 503).
  using ErrorResponder =
      std::function<HttpResponse(int status, const std::string& code, const std::string& message)>;

  HttpServer(HttpServerOptions options, Handler handler, ErrorResponder error_responder);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving; returns the bound port. kUnavailable when the address is in use.
  Result<uint16_t> Start();
  // Stops accepting, drains (see above), joins threads. Idempotent.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace synaps::api
