#include "api/http_server.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>
#include <optional>
#include <thread>
#include <vector>

#include "core/barrier.h"

namespace synaps::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds(75);

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, asio::thread_pool& handlers, const HttpServer::Handler& handler,
          const HttpServer::ErrorResponder& errors, size_t body_limit)
      : stream_(std::move(socket)),
        handlers_(handlers),
        handler_(handler),
        errors_(errors),
        body_limit_(body_limit),
        timer_(stream_.get_executor()) {}

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(body_limit_);
    parser_->header_limit(64 * 1024);
    stream_.expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->OnRead(ec);
                     });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      return WriteRefusal(413, "payload_too_large",
                          "request body exceeds " + std::to_string(body_limit_) + " bytes");
    }
    if (ec) return WriteRefusal(400, "bad_request", "malformed HTTP request: " + ec.message());

    auto& msg = parser_->get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (const auto& f : msg) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers[name] = std::string(f.value());
    }
    req.body = std::move(msg.body());
    beast::error_code ep_ec;
    auto ep = stream_.socket().remote_endpoint(ep_ec);
    if (!ep_ec) req.remote = ep.address().to_string();
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();

    // Handlers may block on the database: run them off the I/O threads.
    asio::post(handlers_, [self = shared_from_this(), req = std::move(req)]() mutable {
      // The handler pool's barrier (core/barrier.h): a handler that throws answers 500.
      Result<HttpResponse> handled = Guarded(
          "HTTP handler for " + req.method + " " + req.target.substr(0, req.target.find('?')),
          [&] { return self->handler_(req); });
      HttpResponse res =
          handled ? std::move(*handled) : self->errors_(500, "internal", "internal error");
      asio::post(self->stream_.get_executor(), [self, res = std::move(res)]() mutable {
        self->Write(std::move(res));
      });
    });
  }

  void WriteRefusal(int status, const std::string& code, const std::string& message) {
    keep_alive_ = false;
    version_ = 11;
    Write(errors_(status, code, message));
  }

  void Write(HttpResponse res) {
    if (res.stream) return StartStream(std::move(res));
    auto out = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(res.status), version_);
    out->set(http::field::server, "synaps");
    out->set(http::field::content_type, res.content_type);
    for (const auto& [k, v] : res.headers) out->set(k, v);
    out->body() = std::move(res.body);
    out->keep_alive(keep_alive_);
    out->prepare_payload();
    stream_.expires_after(kIdleTimeout);
    http::async_write(stream_, *out,
                      [self = shared_from_this(), out](beast::error_code ec, size_t) {
                        if (ec || !self->keep_alive_) return self->Close();
                        self->Read();
                      });
  }

  // Chunked body: header first, then one chunk per producer step, each step produced on the
  // handler pool and written from the session's strand.
  void StartStream(HttpResponse res) {
    auto header = std::make_shared<http::response<http::empty_body>>(
        static_cast<http::status>(res.status), version_);
    header->set(http::field::server, "synaps");
    header->set(http::field::content_type, res.content_type);
    header->set(http::field::cache_control, "no-cache");
    for (const auto& [k, v] : res.headers) header->set(k, v);
    header->keep_alive(keep_alive_);
    header->chunked(true);
    auto serializer = std::make_shared<http::response_serializer<http::empty_body>>(*header);
    stream_.expires_never();
    producer_ = std::move(res.stream);
    http::async_write_header(stream_, *serializer,
                             [self = shared_from_this(), header, serializer](beast::error_code ec,
                                                                             size_t) {
                               if (ec) return self->Close();
                               self->NextStep();
                             });
  }

  void NextStep() {
    asio::post(handlers_, [self = shared_from_this()] {
      Result<StreamStep> produced =
          Guarded("HTTP stream producer", [&] { return self->producer_(); });
      StreamStep step = produced ? std::move(*produced) : StreamStep{.done = true};
      asio::post(self->stream_.get_executor(),
                 [self, step = std::move(step)]() mutable { self->WriteStep(std::move(step)); });
    });
  }

  void WriteStep(StreamStep step) {
    auto data = std::make_shared<std::string>(std::move(step.data));
    auto after = [self = shared_from_this(), done = step.done, wait = step.wait, data](
                     beast::error_code ec, size_t) {
      if (ec) return self->Close();
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
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec || !self->keep_alive_) return self->Close();
                        self->Read();
                      });
  }

  void Close() {
    beast::error_code ec;
    timer_.cancel();
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  asio::thread_pool& handlers_;
  const HttpServer::Handler& handler_;
  const HttpServer::ErrorResponder& errors_;
  const size_t body_limit_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  asio::steady_timer timer_;   // pauses between stream steps
  StreamProducer producer_;    // set while a streamed response is being written
};

}  // namespace

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, Handler handler, ErrorResponder errors)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        errors_(std::move(errors)),
        handlers_(static_cast<size_t>(options_.handler_threads)),
        acceptor_(asio::make_strand(io_)) {}

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
                                               std::to_string(options_.port) + ": " +
                                               ec.message());
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
    asio::post(acceptor_.get_executor(), [this] {
      beast::error_code ec;
      acceptor_.close(ec);
    });
    io_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    handlers_.join();
  }

 private:
  void Accept() {
    acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket s) {
      if (ec) {
        if (ec == asio::error::operation_aborted) return;
        spdlog::warn("accept failed: {}", ec.message());
      } else {
        s.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(s), handlers_, handler_, errors_,
                                  options_.body_limit)
            ->Start();
      }
      Accept();
    });
  }

  const HttpServerOptions options_;
  const Handler handler_;
  const ErrorResponder errors_;
  asio::io_context io_;
  asio::thread_pool handlers_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

HttpServer::HttpServer(HttpServerOptions options, Handler handler, ErrorResponder errors)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler), std::move(errors))) {}
HttpServer::~HttpServer() = default;
Result<uint16_t> HttpServer::Start() { return impl_->Start(); }
void HttpServer::Stop() { impl_->Stop(); }

}  // namespace synaps::api
