#include "support/fake_openai.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <cstdio>
#include <istream>
#include <sstream>
#include <thread>

namespace synaps::testing {

namespace asio = boost::asio;
using asio::ip::tcp;
using nlohmann::json;

namespace {

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Hex(size_t n) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%zx", n);
  return buf;
}

}  // namespace

// Handlers hold a plain Impl*: the destructor stops and joins the loop before Impl goes away,
// and members are declared so that the io_context (whose pending handlers own the sessions)
// is destroyed before the counters the sessions touch.
struct FakeOpenAi::Impl {
  explicit Impl(Handler h) : handler(std::move(h)), acceptor(io) {}

  Handler handler;
  std::atomic<int> counter{0};
  std::atomic<int> open{0};
  std::atomic<int> accepted{0};
  mutable std::mutex mu;
  std::vector<FakeRequest> seen;  // guarded by mu
  asio::io_context io;
  tcp::acceptor acceptor;
  std::thread thread;

  void Accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec != asio::error::operation_aborted) Accept();
        return;
      }
      std::make_shared<Session>(this, std::move(socket))->ReadRequest();
      Accept();
    });
  }

  // One client connection: requests are read and answered one after another (keep-alive).
  struct Session : std::enable_shared_from_this<Session> {
    Session(Impl* owner, tcp::socket s) : impl(owner), socket(std::move(s)), timer(impl->io) {
      ++impl->open;
      ++impl->accepted;
    }
    ~Session() { --impl->open; }

    Impl* impl;
    tcp::socket socket;
    asio::steady_timer timer;
    asio::streambuf in;
    FakeReply reply;
    size_t next_event = 0;
    std::string out;
    char probe = 0;

    void ReadRequest() {
      asio::async_read_until(socket, in, "\r\n\r\n",
                             [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                               if (!ec) self->OnHead(n);
                             });
    }

    void OnHead(size_t head_size) {
      std::string head(asio::buffers_begin(in.data()),
                       asio::buffers_begin(in.data()) + static_cast<std::ptrdiff_t>(head_size));
      in.consume(head_size);
      auto request = std::make_shared<FakeRequest>();
      std::istringstream lines(head);
      std::string line;
      std::getline(lines, line);
      std::istringstream first(line);
      first >> request->method >> request->target;
      size_t length = 0;
      while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string key = Lower(line.substr(0, colon));
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        request->headers[key] = value;
        if (key == "content-length") length = std::stoul(value);
      }
      size_t have = std::min(in.size(), length);
      auto body_start = asio::buffers_begin(in.data());
      request->body.assign(body_start, body_start + static_cast<std::ptrdiff_t>(have));
      in.consume(have);
      if (have == length) {
        OnRequest(request);
        return;
      }
      auto rest = std::make_shared<std::string>(length - have, '\0');
      asio::async_read(socket, asio::buffer(*rest),
                       [self = shared_from_this(), request, rest](boost::system::error_code ec,
                                                                  size_t) {
                         if (ec) return;
                         request->body += *rest;
                         self->OnRequest(request);
                       });
    }

    void OnRequest(const std::shared_ptr<FakeRequest>& request) {
      int index = impl->counter++;
      {
        std::lock_guard<std::mutex> lock(impl->mu);
        impl->seen.push_back(*request);
      }
      reply = impl->handler(*request, index);
      if (reply.hang) {
        WaitForClientToLeave();
        return;
      }
      if (reply.delay.count() > 0) {
        timer.expires_after(reply.delay);
        timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
          if (!ec) self->SendHead();
        });
        return;
      }
      SendHead();
    }

    // Reads until the client closes; the session then ends.
    void WaitForClientToLeave() {
      socket.async_read_some(asio::buffer(&probe, 1),
                             [self = shared_from_this()](boost::system::error_code ec, size_t) {
                               if (!ec) self->WaitForClientToLeave();
                             });
    }

    void SendHead() {
      bool streaming = !reply.events.empty();
      out = "HTTP/1.1 " + std::to_string(reply.status) + " " + Reason(reply.status) + "\r\n";
      out += "Content-Type: " +
             std::string(streaming ? "text/event-stream" : reply.content_type) + "\r\n";
      for (const auto& [k, v] : reply.headers) out += k + ": " + v + "\r\n";
      if (!streaming) {
        out += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n\r\n" + reply.body;
        Write([](Session& s) { s.ReadRequest(); });
        return;
      }
      if (reply.stream_end == FakeReply::StreamEnd::kCloseClean) {
        out += "Connection: close\r\n\r\n";
      } else {
        out += "Transfer-Encoding: chunked\r\n\r\n";
      }
      next_event = 0;
      Write([](Session& s) { s.SendEvent(); });
    }

    void SendEvent() {
      if (next_event == reply.events.size()) {
        switch (reply.stream_end) {
          case FakeReply::StreamEnd::kComplete:
            out = "0\r\n\r\n";
            Write([](Session& s) { s.ReadRequest(); });
            return;
          case FakeReply::StreamEnd::kStall:
            WaitForClientToLeave();
            return;
          case FakeReply::StreamEnd::kDrop:
          case FakeReply::StreamEnd::kCloseClean: {
            boost::system::error_code ignored;
            socket.shutdown(tcp::socket::shutdown_both, ignored);
            socket.close(ignored);
            return;
          }
        }
      }
      std::string event = "data: " + reply.events[next_event++] + "\n\n";
      if (reply.stream_end == FakeReply::StreamEnd::kCloseClean) {
        out = event;
      } else {
        out = Hex(event.size()) + "\r\n" + event + "\r\n";
      }
      Write([](Session& s) {
        if (s.reply.event_interval.count() == 0) {
          s.SendEvent();
          return;
        }
        s.timer.expires_after(s.reply.event_interval);
        s.timer.async_wait([self = s.shared_from_this()](boost::system::error_code ec) {
          if (!ec) self->SendEvent();
        });
      });
    }

    void Write(void (*then)(Session&)) {
      asio::async_write(socket, asio::buffer(out),
                        [self = shared_from_this(), then](boost::system::error_code ec, size_t) {
                          if (!ec) then(*self);
                        });
    }
  };
};

FakeOpenAi::FakeOpenAi(Handler handler) : impl_(std::make_unique<Impl>(std::move(handler))) {
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen(asio::socket_base::max_listen_connections);
  impl_->Accept();
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

FakeOpenAi::~FakeOpenAi() {
  impl_->io.stop();
  impl_->thread.join();
}

int FakeOpenAi::port() const { return impl_->acceptor.local_endpoint().port(); }

std::string FakeOpenAi::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port()) + "/v1";
}

int FakeOpenAi::request_count() const { return impl_->counter.load(); }

std::vector<FakeRequest> FakeOpenAi::requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->seen;
}

int FakeOpenAi::open_connections() const { return impl_->open.load(); }
int FakeOpenAi::accepted_connections() const { return impl_->accepted.load(); }

bool FakeOpenAi::WaitFor(const std::function<bool()>& condition,
                         std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

FakeReply FakeOpenAi::Completion(const std::string& text, int prompt_tokens,
                                 int completion_tokens) {
  json body = {
      {"id", "chatcmpl-fake"},
      {"object", "chat.completion"},
      {"model", "fake-model"},
      {"choices",
       {{{"index", 0},
         {"message", {{"role", "assistant"}, {"content", text}}},
         {"finish_reason", "stop"}}}},
      {"usage",
       {{"prompt_tokens", prompt_tokens},
        {"completion_tokens", completion_tokens},
        {"total_tokens", prompt_tokens + completion_tokens}}}};
  FakeReply r;
  r.body = body.dump();
  return r;
}

std::string FakeOpenAi::Chunk(const json& delta, const std::string& finish_reason) {
  json chunk = {{"id", "chatcmpl-fake"},
                {"object", "chat.completion.chunk"},
                {"model", "fake-model"},
                {"choices",
                 {{{"index", 0},
                   {"delta", delta},
                   {"finish_reason",
                    finish_reason.empty() ? json(nullptr) : json(finish_reason)}}}}};
  return chunk.dump();
}

FakeReply FakeOpenAi::Stream(const std::vector<std::string>& pieces, int prompt_tokens,
                             int completion_tokens) {
  FakeReply r;
  r.events.push_back(Chunk({{"role", "assistant"}, {"content", ""}}));
  for (const auto& p : pieces) r.events.push_back(Chunk({{"content", p}}));
  r.events.push_back(Chunk(json::object(), "stop"));
  json usage = {{"id", "chatcmpl-fake"},
                {"object", "chat.completion.chunk"},
                {"model", "fake-model"},
                {"choices", json::array()},
                {"usage",
                 {{"prompt_tokens", prompt_tokens},
                  {"completion_tokens", completion_tokens},
                  {"total_tokens", prompt_tokens + completion_tokens}}}};
  r.events.push_back(usage.dump());
  r.events.push_back("[DONE]");
  return r;
}

FakeReply FakeOpenAi::Error(int status, const std::string& message, const std::string& code) {
  json error = {{"message", message}, {"type", "fake_error"}};
  error["code"] = code.empty() ? json(nullptr) : json(code);
  FakeReply r;
  r.status = status;
  r.body = json{{"error", error}}.dump();
  return r;
}

}  // namespace synaps::testing
