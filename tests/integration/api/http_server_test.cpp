// The HTTP server in process, driven over raw sockets: responses that could be split are never
// sent, RFC 9112 framing, connection caps, streams that end when their client goes away, and a
// graceful stop (docs/security.md, docs/reliability.md).
#include "api/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <stdexcept>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/cluster.h"
#include "support/raw_http.h"

namespace synaps::api {
namespace {

using testing::CountStatusLines;
using testing::FirstStatus;
using testing::RawConnection;
using testing::RawExchange;

class CountingObserver : public HttpServerObserver {
 public:
  void HttpRefused(std::string_view reason) override {
    std::lock_guard lock(mu);
    refused[std::string(reason)]++;
  }
  void HttpConnectionsOpen(int64_t n) override { open = n; }
  void HttpAcceptFailed() override { ++accept_failures; }
  int Refused(const std::string& reason) {
    std::lock_guard lock(mu);
    return refused[reason];
  }
  std::mutex mu;
  std::map<std::string, int> refused;
  std::atomic<int64_t> open{0};
  std::atomic<int> accept_failures{0};
};

HttpResponse JsonError(int status, const std::string& code, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.body = nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump();
  return r;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void Serve(HttpServer::Handler handler, HttpServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.observer = &observer_;
    server_ = std::make_unique<HttpServer>(options, std::move(handler), JsonError);
    auto port = server_->Start();
    ASSERT_TRUE(port) << port.error().message;
    port_ = *port;
  }
  std::string Get(const std::string& target, const std::string& extra = {}) {
    return RawExchange(
        port_, "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra + "\r\n");
  }
  CountingObserver observer_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

HttpResponse Echo(const HttpRequest& req) {
  HttpResponse r;
  r.content_type = "text/plain";
  r.body = req.method + " " + req.target + " " + std::to_string(req.body.size());
  return r;
}

TEST_F(HttpServerTest, AResponseWhoseHeaderCouldSplitItIsNeverSent) {
  Serve([](const HttpRequest& req) {
    HttpResponse r;
    r.body = "attacker body";
    if (req.target == "/type") {
      r.content_type = "text/plain\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nX-Smuggled: 1";
    } else {
      r.headers.push_back({"X-Note", "a\r\nSet-Cookie: pwned=1"});
    }
    return r;
  });
  for (const char* target : {"/type", "/header"}) {
    std::string out = Get(target);
    EXPECT_EQ(CountStatusLines(out), 1) << out;
    EXPECT_EQ(FirstStatus(out), 500) << out;
    EXPECT_EQ(out.find("X-Smuggled"), std::string::npos) << out;
    EXPECT_EQ(out.find("Set-Cookie"), std::string::npos) << out;
    EXPECT_EQ(out.find("attacker body"), std::string::npos) << out;
    EXPECT_NE(out.find("\"code\":\"internal\""), std::string::npos) << out;
    EXPECT_NE(out.find("X-Content-Type-Options: nosniff"), std::string::npos) << out;
  }
  EXPECT_EQ(observer_.Refused("unsafe_response_header"), 2);
}

TEST_F(HttpServerTest, RequestsAreParsedStrictly) {
  Serve(Echo, {.body_limit = 1024});
  auto send = [&](const std::string& raw) { return RawExchange(port_, raw); };
  // Served: origin-form and absolute-form, both reaching the handler as a path.
  std::string ok = Get("/v1/runs?x=1");
  EXPECT_EQ(FirstStatus(ok), 200) << ok;
  EXPECT_NE(ok.find("GET /v1/runs?x=1 0"), std::string::npos) << ok;
  std::string absolute = Get("http://x/v1/runs");
  EXPECT_NE(absolute.find("GET /v1/runs 0"), std::string::npos) << absolute;
  // The target is taken exactly as sent: no first character dropped.
  EXPECT_EQ(FirstStatus(Get("Xv1/runs")), 400);
  EXPECT_EQ(FirstStatus(send("GET /v1/runs HTTP/1.1\r\nConnection: close\r\n\r\n")), 400)
      << "HTTP/1.1 without Host";
  EXPECT_EQ(FirstStatus(send("GET /v1/runs HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")), 400);
  EXPECT_EQ(FirstStatus(send("GET /v1/runs HTTP/1.0\r\n\r\n")), 200) << "HTTP/1.0 needs no Host";
  std::string both = send(
      "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\n"
      "hello");
  EXPECT_EQ(FirstStatus(both), 400) << both;
  EXPECT_EQ(CountStatusLines(both), 1) << both;
  EXPECT_EQ(FirstStatus(send("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked"
                             "\r\n\r\n0\r\n\r\n")),
            501);
  std::string chunked = send(
      "POST /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n");
  EXPECT_NE(chunked.find("POST /x 5"), std::string::npos) << chunked;
  std::string big = send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n");
  EXPECT_EQ(FirstStatus(big), 413) << big;
  EXPECT_NE(big.find("payload_too_large"), std::string::npos) << big;
  EXPECT_NE(big.find("application/json"), std::string::npos) << big;
}

TEST_F(HttpServerTest, ConnectionsAreCappedPerAddressAndInTotal) {
  Serve(Echo, {.max_connections = 3, .max_connections_per_address = 2});
  RawConnection a(port_), b(port_);
  ASSERT_TRUE(a.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(b.Send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(FirstStatus(a.ReadUntil("GET /a 0")), 200);
  EXPECT_EQ(FirstStatus(b.ReadUntil("GET /b 0")), 200);
  std::string third = Get("/c");
  EXPECT_EQ(FirstStatus(third), 429) << third;
  EXPECT_NE(third.find("too_many_connections"), std::string::npos) << third;
  EXPECT_EQ(observer_.Refused("connections_per_address"), 1);
  EXPECT_EQ(observer_.open.load(), 2);
  b.Close();
  EXPECT_TRUE(testing::Eventually([&] { return observer_.open.load() == 1; }, 5));
  EXPECT_EQ(FirstStatus(Get("/d")), 200) << "a closed connection frees its slot";
}

TEST_F(HttpServerTest, AStreamStopsAtOnceWhenItsClientGoesAway) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  std::weak_ptr<std::atomic<int>> held;
  Serve([&](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "text/event-stream";
    auto state = std::make_shared<std::atomic<int>>(0);
    held = state;
    // A producer keeps state between its steps (never copied).
    r.stream = [state, calls, step = 0]() mutable {
      ++*calls;
      ++*state;
      return StreamStep{.data = "data: " + std::to_string(++step) + "\n\n",
                        .wait = std::chrono::milliseconds(20)};
    };
    return r;
  });
  {
    RawConnection c(port_);
    ASSERT_TRUE(c.Send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string got = c.ReadUntil("data: 3");
    EXPECT_NE(got.find("data: 1\n\n"), std::string::npos) << got;
    EXPECT_NE(got.find("data: 3\n\n"), std::string::npos) << got;
  }
  // The producer is released (its state freed) and not called again.
  EXPECT_TRUE(testing::Eventually([&] { return held.expired(); }, 2));
  int after_close = calls->load();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_LE(calls->load(), after_close + 1);
  EXPECT_TRUE(testing::Eventually([&] { return observer_.open.load() == 0; }, 2));
}

TEST_F(HttpServerTest, GracefulStopFinishesResponsesInFlight) {
  std::atomic<bool> started{false};
  Serve(
      [&](const HttpRequest&) {
        started = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(700));
        HttpResponse r;
        r.body = "finished";
        return r;
      },
      {.drain_timeout = std::chrono::seconds(5)});
  RawConnection idle(port_);  // an idle keep-alive connection is closed by the stop
  auto inflight = std::async(std::launch::async, [&] {
    return RawExchange(port_, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  });
  ASSERT_TRUE(testing::Eventually([&] { return started.load(); }, 5));
  auto stop_started = std::chrono::steady_clock::now();
  server_->Stop();
  auto stop_took = std::chrono::steady_clock::now() - stop_started;
  std::string out = inflight.get();
  EXPECT_EQ(FirstStatus(out), 200) << out;
  EXPECT_NE(out.find("finished"), std::string::npos) << out;
  EXPECT_NE(out.find("Connection: close"), std::string::npos) << out;
  EXPECT_TRUE(idle.ClosedByServer(std::chrono::seconds(1)));
  EXPECT_LT(stop_took, std::chrono::seconds(4));
  // Nothing is accepted any more.
  RawConnection late(port_);
  EXPECT_FALSE(late.connected() && late.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n") &&
               FirstStatus(late.ReadUntilClosed(std::chrono::milliseconds(500))) == 200);
}

TEST_F(HttpServerTest, GracefulStopIsBounded) {
  Serve(
      [&](const HttpRequest&) {
        std::this_thread::sleep_for(std::chrono::seconds(3));
        return HttpResponse{};
      },
      {.drain_timeout = std::chrono::milliseconds(300)});
  RawConnection c(port_);
  ASSERT_TRUE(c.Send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto t0 = std::chrono::steady_clock::now();
  server_->Stop();  // waits for the handler thread itself, but not for the drain bound
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

// The handler pool's barrier (docs/reliability.md, "Bus and thread barriers"): a handler that
// throws answers 500 internal, and the pool serves the next request.
TEST_F(HttpServerTest, AHandlerThatThrowsAnswers500AndThePoolGoesOn) {
  Serve(
      [](const HttpRequest& req) -> HttpResponse {
        if (req.target == "/throw") throw std::runtime_error("handler bug");
        if (req.target == "/odd") throw 42;
        return Echo(req);
      },
      HttpServerOptions{.handler_threads = 1});
  for (const char* target : {"/throw", "/odd"}) {
    std::string out = Get(target);
    EXPECT_EQ(FirstStatus(out), 500) << out;
    EXPECT_NE(out.find("\"code\":\"internal\""), std::string::npos) << out;
    EXPECT_EQ(out.find("handler bug"), std::string::npos) << "internals stay in the log: " << out;
  }
  std::string ok = Get("/fine");
  EXPECT_EQ(FirstStatus(ok), 200) << ok;
  EXPECT_NE(ok.find("GET /fine 0"), std::string::npos) << ok;
}

}  // namespace
}  // namespace synaps::api
