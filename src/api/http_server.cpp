#include "api/http_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/barrier.h"
#include "core/http_grammar.h"

namespace synaps::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds(75);
// A refused connection gets this long to send its request head before it is closed.
constexpr auto kRefusalTimeout = std::chrono::seconds(2);
// Refused connections answered at once at most; beyond, they are closed without an answer.
constexpr int64_t kMaxRefusalsInFlight = 64;
constexpr auto kFirstAcceptBackoff = std::chrono::milliseconds(10);
constexpr auto kMaxAcceptBackoff = std::chrono::milliseconds(1000);

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

namespace {

// Open connections, in total and per client address, and the sessions to close on Stop.
// Thread-safe.
class ConnectionTable {
 public:
  struct Admission {
    bool admitted = false;
    int status = 0;      // when refused: 503 (total) or 429 (per address)
    std::string reason;  // observer reason
  };

  ConnectionTable(int64_t max_total, int64_t max_per_address, HttpServerObserver* observer)
      : max_total_(max_total), max_per_address_(max_per_address), observer_(observer) {}

  Admission Admit(const std::string& address) {
    std::lock_guard lock(mu_);
    if (max_total_ > 0 && total_ >= max_total_) {
      return {false, 503, "connections_total"};
    }
    int64_t& n = per_address_[address];
    if (max_per_address_ > 0 && n >= max_per_address_) {
      if (n == 0) per_address_.erase(address);
      return {false, 429, "connections_per_address"};
    }
    ++n;
    ++total_;
    if (observer_ != nullptr) observer_->HttpConnectionsOpen(total_);
    return {true, 0, {}};
  }

  void Release(const std::string& address) {
    std::lock_guard lock(mu_);
    if (auto it = per_address_.find(address); it != per_address_.end() && --it->second <= 0) {
      per_address_.erase(it);
    }
    --total_;
    if (observer_ != nullptr) observer_->HttpConnectionsOpen(total_);
    drained_.notify_all();
  }

  // Waits until no admitted connection is open or `deadline` passes; true when none is open.
  bool WaitEmpty(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return drained_.wait_until(lock, deadline, [&] { return total_ == 0; });
  }

  std::atomic<int64_t> refusals_in_flight{0};
  // Requests whose body may exceed body_limit being read or handled (max_large_bodies).
  std::atomic<int> large_bodies_in_flight{0};

 private:
  const int64_t max_total_;
  const int64_t max_per_address_;
  HttpServerObserver* const observer_;
  std::mutex mu_;
  std::condition_variable drained_;
  int64_t total_ = 0;                           // guarded by mu_
  std::map<std::string, int64_t> per_address_;  // guarded by mu_
};

// What every session shares with the server; owned by HttpServer::Impl, outlives the sessions.
struct ServerShared {
  const HttpServerOptions& options;
  asio::thread_pool& handlers;
  const HttpServer::Handler& handler;
  const HttpServer::ErrorResponder& errors;
  ConnectionTable& connections;
  std::atomic<bool>& draining;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `admission` says whether the connection was admitted (and counts in the table) or is to be
  // answered with a refusal and closed.
  Session(tcp::socket socket, ServerShared& shared, std::string address,
          ConnectionTable::Admission admission)
      : stream_(std::move(socket)),
        shared_(shared),
        address_(std::move(address)),
        admission_(std::move(admission)),
        timer_(stream_.get_executor()) {}

  ~Session() {
    ReleaseLargeBody();
    if (admission_.admitted) {
      shared_.connections.Release(address_);
    } else {
      --shared_.connections.refusals_in_flight;
    }
  }

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

  // On the session's strand: closes the connection unless a request is being handled; a
  // stream is ended. Used by a graceful stop.
  void CloseIfIdle() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_ || self->producer_) self->Close();
    });
  }

 private:
  void Read() {
    if (shared_.draining) return Close();
    parser_.emplace();
    // The largest limit any target has; OnHeader narrows it once the target is known.
    parser_->body_limit(std::max(shared_.options.body_limit, shared_.options.large_body_limit));
    body_limit_ = shared_.options.body_limit;
    parser_->header_limit(64 * 1024);
    stream_.expires_after(admission_.admitted ? std::chrono::seconds(kIdleTimeout)
                                              : std::chrono::seconds(kRefusalTimeout));
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // large_body_limit for the targets in large_body_routes ("POST /path", query ignored).
  size_t BodyLimitFor(std::string_view method, std::string_view target) const {
    const HttpServerOptions& o = shared_.options;
    if (o.large_body_limit <= o.body_limit || o.large_body_routes.empty()) return o.body_limit;
    std::string route = std::string(method) + " " + std::string(target.substr(0, target.find('?')));
    for (const auto& r : o.large_body_routes) {
      if (r == route) return o.large_body_limit;
    }
    return o.body_limit;
  }

  // For a request with credentials on a large-body route: true when it may read up to
  // large_body_limit — its declared length fits body_limit (no slot needed) or one of the
  // max_large_bodies slots was free (taken until its response is written).
  bool TakeLargeBodySlot() {
    auto length = parser_->content_length();
    if (length && *length <= shared_.options.body_limit) return true;
    auto& in_flight = shared_.connections.large_bodies_in_flight;
    if (in_flight.fetch_add(1) >= shared_.options.max_large_bodies) {
      --in_flight;
      return false;
    }
    holds_large_body_ = true;
    return true;
  }

  void ReleaseLargeBody() {
    if (!holds_large_body_) return;
    holds_large_body_ = false;
    --shared_.connections.large_bodies_in_flight;
  }

  static bool IsDisconnect(beast::error_code ec) {
    return ec == http::error::end_of_stream || ec == beast::error::timeout ||
           ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
           ec == asio::error::eof;
  }

  void OnHeader(beast::error_code ec) {
    if (IsDisconnect(ec)) return Close();
    if (ec == http::error::body_limit) {
      body_limit_ =
          BodyLimitFor(View(parser_->get().method_string()), View(parser_->get().target()));
      return WriteRefusal(413, "payload_too_large",
                          "request body exceeds " + std::to_string(body_limit_) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return WriteRefusal(431, "header_too_large", "request header exceeds 64 KiB");
    }
    if (ec) return WriteRefusal(400, "bad_request", "malformed HTTP request: " + ec.message());
    if (!admission_.admitted) {
      return WriteRefusal(admission_.status, "too_many_connections",
                          admission_.status == 503
                              ? "the server has too many open connections; retry later"
                              : "too many open connections from this address; retry later");
    }
    const auto& head = parser_->get();
    int hosts = 0;
    std::string transfer_encoding;
    for (const auto& f : head) {
      if (f.name() == http::field::host) ++hosts;
      if (f.name() == http::field::transfer_encoding) {
        if (!transfer_encoding.empty()) transfer_encoding += ", ";
        transfer_encoding += std::string(f.value());
      }
    }
    bool has_length = head.find(http::field::content_length) != head.end();
    std::string why;
    int status =
        CheckRequestFraming(head.version(), View(head.method_string()), View(head.target()), hosts,
                            transfer_encoding, has_length, &why);
    if (status != 0) {
      return WriteRefusal(status, status == 501 ? "not_implemented" : "bad_request", why);
    }
    body_limit_ = BodyLimitFor(View(head.method_string()), View(head.target()));
    if (body_limit_ > shared_.options.body_limit) {
      if (head.find(http::field::authorization) == head.end()) {
        // The larger limit is for callers with credentials; the handler answers 401 the rest.
        auto length = parser_->content_length();
        if (length && *length > shared_.options.body_limit) {
          return WriteRefusal(401, "unauthenticated",
                              "a request body over " + std::to_string(shared_.options.body_limit) +
                                  " bytes needs an Authorization header");
        }
        body_limit_ = shared_.options.body_limit;
      } else if (!TakeLargeBodySlot()) {
        return WriteRefusal(503, "too_many_large_requests",
                            "too many large request bodies are being read; retry later");
      }
    }
    parser_->body_limit(body_limit_);
    if (auto length = parser_->content_length(); length && *length > body_limit_) {
      return WriteRefusal(413, "payload_too_large",
                          "request body exceeds " + std::to_string(body_limit_) + " bytes");
    }
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (IsDisconnect(ec)) return Close();
    if (ec == http::error::body_limit) {
      return WriteRefusal(413, "payload_too_large",
                          "request body exceeds " + std::to_string(body_limit_) + " bytes");
    }
    if (ec) return WriteRefusal(400, "bad_request", "malformed HTTP request: " + ec.message());

    auto& msg = parser_->get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = OriginFormTarget(View(msg.target()));
    for (const auto& f : msg) {
      req.headers[Lower(View(f.name_string()))] = std::string(f.value());
    }
    req.body = std::move(msg.body());
    beast::error_code ep_ec;
    auto ep = stream_.socket().remote_endpoint(ep_ec);
    if (!ep_ec) req.remote = ep.address().to_string();
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    busy_ = true;

    // Handlers may block on the database: run them off the I/O threads.
    asio::post(shared_.handlers, [self = shared_from_this(), req = std::move(req)]() mutable {
      // The handler pool's barrier (core/barrier.h): a handler that throws answers 500.
      Result<HttpResponse> handled = Guarded(
          "HTTP handler for " + req.method + " " + req.target.substr(0, req.target.find('?')),
          [&] { return self->shared_.handler(req); });
      HttpResponse res = handled ? std::move(*handled)
                                 : self->shared_.errors(500, "internal", "internal error");
      asio::post(self->stream_.get_executor(),
                 [self, res = std::move(res)]() mutable { self->Write(std::move(res)); });
    });
  }

  void WriteRefusal(int status, const std::string& code, const std::string& message) {
    keep_alive_ = false;
    linger_ = true;
    version_ = 11;
    busy_ = true;
    Write(shared_.errors(status, code, message));
  }

  // A response that could be split is replaced, never sent.
  HttpResponse Sanitized(HttpResponse res) {
    std::string bad = UnsafeResponseHeader(res);
    if (bad.empty()) return res;
    spdlog::error(
        "refused to send a {} response: header {} holds a control character or is "
        "malformed; answered 500 instead",
        res.status, bad);
    if (shared_.options.observer != nullptr) {
      shared_.options.observer->HttpRefused("unsafe_response_header");
    }
    return shared_.errors(500, "internal",
                          "the response was refused: a header value held control characters");
  }

  template <class Message>
  void SetHeaders(Message& out, const HttpResponse& res) {
    out.set(http::field::server, "synaps");
    out.set(http::field::content_type, res.content_type);
    out.set("X-Content-Type-Options", "nosniff");
    for (const auto& [k, v] : res.headers) out.set(k, v);
    if (shared_.draining) keep_alive_ = false;
    out.keep_alive(keep_alive_);
  }

  void Write(HttpResponse res) {
    res = Sanitized(std::move(res));
    if (res.stream) return StartStream(std::move(res));
    auto out = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(res.status), version_);
    SetHeaders(*out, res);
    out->body() = std::move(res.body);
    out->prepare_payload();
    stream_.expires_after(kIdleTimeout);
    http::async_write(stream_, *out,
                      [self = shared_from_this(), out](beast::error_code ec, size_t) {
                        self->busy_ = false;
                        self->ReleaseLargeBody();
                        if (!ec && self->linger_) return self->DrainThenClose();
                        if (ec || !self->keep_alive_) return self->Close();
                        self->Read();
                      });
  }

  // After a refusal the client may still be sending a body we will not read: closing with
  // unread data would reset the connection and could destroy our answer before the client
  // reads it. Stop sending, discard what arrives for a moment, then close.
  void DrainThenClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(1));
    DrainSome(0);
  }

  void DrainSome(size_t drained) {
    stream_.async_read_some(asio::buffer(probe_),
                            [self = shared_from_this(), drained](beast::error_code ec, size_t n) {
                              if (ec || drained + n > (1u << 20)) return self->Close();
                              self->DrainSome(drained + n);
                            });
  }

  // Chunked body: header first, then one chunk per producer step, each step produced on the
  // handler pool and written from the session's strand. The connection closes after a stream;
  // a read watches for the client going away meanwhile.
  void StartStream(HttpResponse res) {
    keep_alive_ = false;
    auto header = std::make_shared<http::response<http::empty_body>>(
        static_cast<http::status>(res.status), version_);
    header->set(http::field::cache_control, "no-cache");
    SetHeaders(*header, res);
    header->chunked(true);
    auto serializer = std::make_shared<http::response_serializer<http::empty_body>>(*header);
    stream_.expires_never();
    producer_ = std::make_shared<StreamProducer>(std::move(res.stream));
    http::async_write_header(
        stream_, *serializer,
        [self = shared_from_this(), header, serializer](beast::error_code ec, size_t) {
          if (ec) return self->Close();
          self->WatchForClientClose();
          self->NextStep();
        });
  }

  // Any read completion during a stream means the client closed (or sent what we will not
  // read): end the stream now rather than at the next write.
  void WatchForClientClose() {
    stream_.socket().async_read_some(asio::buffer(probe_),
                                     [self = shared_from_this()](beast::error_code ec, size_t) {
                                       if (!ec && self->producer_)
                                         return self->WatchForClientClose();
                                       self->Close();
                                     });
  }

  void NextStep() {
    if (!producer_) return;
    asio::post(shared_.handlers, [self = shared_from_this(), producer = producer_] {
      Result<StreamStep> produced =
          Guarded("HTTP stream producer", [&] { return (*producer)(); });
      StreamStep step = produced ? std::move(*produced) : StreamStep{.done = true};
      asio::post(self->stream_.get_executor(),
                 [self, step = std::move(step)]() mutable { self->WriteStep(std::move(step)); });
    });
  }

  void WriteStep(StreamStep step) {
    if (!producer_) return;  // closed meanwhile
    auto data = std::make_shared<std::string>(std::move(step.data));
    auto after = [self = shared_from_this(), done = step.done, wait = step.wait, data](
                     beast::error_code ec, size_t) {
      if (ec || !self->producer_) return self->Close();
      if (done) return self->FinishStream();
      self->timer_.expires_after(wait);
      self->timer_.async_wait([self](beast::error_code tec) {
        if (!tec) self->NextStep();
      });
    };
    if (data->empty()) {
      after({}, 0);
    } else {
      asio::async_write(stream_.socket(), http::make_chunk(asio::buffer(*data)), after);
    }
  }

  void FinishStream() {
    producer_ = nullptr;
    asio::async_write(stream_.socket(), http::make_chunk_last(),
                      [self = shared_from_this()](beast::error_code, size_t) { self->Close(); });
  }

  void Close() {
    beast::error_code ec;
    producer_ = nullptr;  // releases what the stream holds (its slot, its feed) at once
    timer_.cancel();
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  size_t body_limit_ = 0;  // of the request being read
  ServerShared& shared_;
  const std::string address_;
  const ConnectionTable::Admission admission_;
  bool keep_alive_ = true;
  bool busy_ = false;    // a request is being handled or its response written
  bool linger_ = false;  // a refusal: drain the unread request before closing
  bool holds_large_body_ = false;  // one of the max_large_bodies slots (TakeLargeBodySlot)
  unsigned version_ = 11;
  asio::steady_timer timer_;     // pauses between stream steps
  // Set while a streamed response is being written. Shared with the step running on the
  // handler pool (producers keep state between steps, so they are never copied); Close drops
  // this reference, the running step the other.
  std::shared_ptr<StreamProducer> producer_;
  std::array<char, 512> probe_;  // discards what a client sends during a stream
};

}  // namespace

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, Handler handler, ErrorResponder errors)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        errors_(std::move(errors)),
        connections_(options_.max_connections, options_.max_connections_per_address,
                     options_.observer),
        shared_{options_, handlers_, handler_, errors_, connections_, draining_},
        work_(asio::make_work_guard(io_)),
        handlers_(static_cast<size_t>(options_.handler_threads)),
        acceptor_(asio::make_strand(io_)),
        accept_timer_(acceptor_.get_executor()) {}

  ~Impl() { Stop(); }

  Result<uint16_t> Start() {
    beast::error_code ec;
    auto addr = asio::ip::make_address(options_.host, ec);
    if (ec) return Fail(ErrorCode::kInvalidArgument, "bad listen address " + options_.host);
    tcp::endpoint ep(addr, options_.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Fail(ErrorCode::kUnavailable, "cannot listen on " + options_.host + ":" +
                                               std::to_string(options_.port) + ": " + ec.message());
    }
    uint16_t port = acceptor_.local_endpoint().port();
    Accept();
    for (int i = 0; i < options_.io_threads; ++i) {
      threads_.emplace_back([this] { RunGuarded("HTTP I/O loop", io_); });
    }
    return port;
  }

  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    draining_ = true;
    asio::post(acceptor_.get_executor(), [this] {
      beast::error_code ec;
      acceptor_.close(ec);
      accept_timer_.cancel();
    });
    if (!threads_.empty()) {
      CloseIdleSessions();
      auto deadline = std::chrono::steady_clock::now() + options_.drain_timeout;
      if (!connections_.WaitEmpty(deadline)) {
        spdlog::warn("graceful stop: connections still open after {} ms; closing them",
                     options_.drain_timeout.count());
      }
    }
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    handlers_.join();
  }

 private:
  void Accept() {
    acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || draining_) return;
      if (ec) return BackOff(ec);
      backoff_ = kFirstAcceptBackoff;
      OnAccepted(std::move(s));
      Accept();
    });
  }

  // EMFILE and friends: the pending connection stays in the backlog and accept() would fail
  // again at once; wait before the next try so the loop does not spin.
  void BackOff(beast::error_code ec) {
    if (options_.observer != nullptr) options_.observer->HttpAcceptFailed();
    auto now = std::chrono::steady_clock::now();
    if (now - last_accept_warning_ > std::chrono::seconds(10)) {
      last_accept_warning_ = now;
      spdlog::warn("accept failed: {}; retrying in {} ms (backing off up to {} ms)", ec.message(),
                   backoff_.count(), kMaxAcceptBackoff.count());
    }
    accept_timer_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(kMaxAcceptBackoff));
    accept_timer_.async_wait([this](beast::error_code tec) {
      if (!tec && !draining_) Accept();
    });
  }

  void OnAccepted(tcp::socket s) {
    beast::error_code ec;
    s.set_option(tcp::no_delay(true), ec);
    auto ep = s.remote_endpoint(ec);
    std::string address = ec ? std::string() : ep.address().to_string();
    auto admission = connections_.Admit(address);
    if (!admission.admitted) {
      if (options_.observer != nullptr) options_.observer->HttpRefused(admission.reason);
      if (++connections_.refusals_in_flight > kMaxRefusalsInFlight) {
        --connections_.refusals_in_flight;
        s.close(ec);
        return;
      }
    }
    auto session = std::make_shared<Session>(std::move(s), shared_, address, admission);
    if (admission.admitted) Track(session);
    session->Start();
  }

  void Track(const std::shared_ptr<Session>& session) {
    std::lock_guard lock(sessions_mu_);
    if (++tracked_since_sweep_ > 1024) {
      std::erase_if(sessions_, [](const auto& w) { return w.expired(); });
      tracked_since_sweep_ = 0;
    }
    sessions_.push_back(session);
  }

  void CloseIdleSessions() {
    std::vector<std::weak_ptr<Session>> all;
    {
      std::lock_guard lock(sessions_mu_);
      all.swap(sessions_);
    }
    for (auto& w : all) {
      if (auto s = w.lock()) s->CloseIfIdle();
    }
  }

  const HttpServerOptions options_;
  const Handler handler_;
  const ErrorResponder errors_;
  ConnectionTable connections_;  // outlives the sessions, which release their slots in it
  std::atomic<bool> draining_{false};
  ServerShared shared_;
  asio::io_context io_;
  // Keeps the event loops running while nothing is pending on them (a handler busy on the
  // pool during a graceful stop, after the acceptor closed) until Stop ends them.
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::thread_pool handlers_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_timer_;
  std::chrono::milliseconds backoff_ = kFirstAcceptBackoff;  // on the acceptor's strand
  std::chrono::steady_clock::time_point last_accept_warning_{};
  std::mutex sessions_mu_;
  std::vector<std::weak_ptr<Session>> sessions_;  // guarded by sessions_mu_
  int tracked_since_sweep_ = 0;                   // guarded by sessions_mu_
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

HttpServer::HttpServer(HttpServerOptions options, Handler handler, ErrorResponder errors)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler), std::move(errors))) {}
HttpServer::~HttpServer() = default;
Result<uint16_t> HttpServer::Start() { return impl_->Start(); }
void HttpServer::Stop() { impl_->Stop(); }

}  // namespace synaps::api
