#include "providers/openai_provider.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cctype>
#include <optional>
#include <unordered_set>

#include "core/barrier.h"
#include "curl/handles.h"
#include "providers/detail/openai_wire.h"
#include "providers/detail/sse_parser.h"

namespace synaps::providers {

namespace asio = boost::asio;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace detail {

class ChatCall;

}  // namespace detail

struct OpenAiCompatibleProvider::Core {
  Core(asio::any_io_executor ex, OpenAiOptions opts);
  ~Core();

  asio::any_io_executor executor;
  OpenAiOptions options;
  std::string url;
  Result<net::Target> target;  // base_url under the outbound policy, or why it is refused
  curl::HeaderList stream_headers;  // must outlive `multi`: declared before it
  curl::HeaderList plain_headers;
  std::mt19937_64 rng{std::random_device{}()};
  std::unordered_set<detail::ChatCall*> live;  // started, not finished
  detail::CurlMulti multi;
};

namespace detail {
namespace {

curl::HeaderList MakeHeaders(const OpenAiOptions& o, const char* accept);

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::chrono::milliseconds Since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t);
}

}  // namespace

// One chat call: its attempts, the transfer in flight, the stream being assembled. Owned
// jointly by the caller's handle, the transfer's completion and any queued handler, so it
// lives exactly as long as something can still touch it.
class ChatCall final : public std::enable_shared_from_this<ChatCall> {
 public:
  ChatCall(OpenAiCompatibleProvider::Core* core, const ChatRequest& request, std::string body,
           Provider::Done done)
      : core_(core),
        executor_(core->executor),
        done_(std::move(done)),
        on_delta_(request.on_delta),
        on_retry_after_(request.on_retry_after),
        before_retry_(request.before_retry),
        body_(std::move(body)),
        stream_(request.stream),
        traceparent_(request.traceparent),
        tracestate_(request.tracestate),
        timeout_(request.timeout.count() > 0 ? request.timeout : core->options.request_timeout),
        max_attempts_(request.max_attempts > 0 ? request.max_attempts
                                               : std::max(1, core->options.retry.max_attempts)),
        started_(Clock::now()),
        backoff_(core->executor) {}

  const asio::any_io_executor& executor() const { return executor_; }

  void Begin() {
    core_->live.insert(this);
    // The first attempt starts from the loop, never inside Start(): a caller may start calls
    // from a delta callback, where libcurl cannot take new transfers.
    asio::post(executor_, [self = shared_from_this()] { self->StartAttempt(); });
  }

  void Cancel() {
    if (finished_ || cancelled_) return;
    cancelled_ = true;  // from here on no delta is delivered
    switch (phase_) {
      case Phase::kTransferring:
        if (core_ != nullptr && core_->multi.InsideCurl()) {
          // libcurl cannot drop a transfer from inside its own callback; if this call's own
          // write is running it aborts the transfer itself, otherwise this removes it.
          asio::post(executor_, [self = shared_from_this()] { self->StopTransfer(); });
          return;
        }
        StopTransfer();
        return;
      case Phase::kWaiting:
        backoff_.cancel();
        Finish(Fail(ErrorCode::kCancelled, "call cancelled"));
        return;
      case Phase::kIdle:
        Finish(Fail(ErrorCode::kCancelled, "call cancelled"));
        return;
    }
  }

  // The provider is going away: forget everything without calling back.
  void Abandon() {
    finished_ = true;
    core_ = nullptr;
    done_ = nullptr;
    on_delta_ = nullptr;
    on_retry_after_ = nullptr;
    before_retry_ = nullptr;
    backoff_.cancel();
  }

 private:
  enum class Phase { kIdle, kTransferring, kWaiting };
  enum class BodyMode { kUnknown, kEventStream, kWhole };

  // What a failed attempt means for the call.
  struct Failure {
    Error error;
    bool retry = false;
    std::optional<std::chrono::milliseconds> retry_after;
  };

  void StopTransfer() {
    if (finished_) return;
    if (phase_ == Phase::kTransferring && core_ != nullptr) {
      core_->multi.Remove(easy_.get());
      phase_ = Phase::kIdle;
      easy_.reset();
    }
    Finish(Fail(ErrorCode::kCancelled, "call cancelled"));
  }

  void StartAttempt() {
    if (finished_ || core_ == nullptr) return;
    ++attempt_;
    mode_ = BodyMode::kUnknown;
    status_ = 0;
    content_type_.clear();
    retry_after_.clear();
    retry_after_ms_.clear();
    should_retry_.clear();
    request_id_.clear();
    raw_body_.clear();
    sse_ = SseParser();
    assembler_ = StreamAssembler();
    done_seen_ = false;
    abort_.reset();
    error_buffer_[0] = '\0';

    easy_ = curl::NewEasy();
    if (!easy_) {
      Finish(Fail(ErrorCode::kInternal, "curl_easy_init failed"));
      return;
    }
    const OpenAiOptions& o = core_->options;
    CURL* e = easy_.get();
    curl_easy_setopt(e, CURLOPT_URL, core_->url.c_str());
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body_.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_.size()));
    curl_slist* headers = stream_ ? core_->stream_headers.get() : core_->plain_headers.get();
    if (!traceparent_.empty()) {
      call_headers_ = MakeHeaders(o, stream_ ? "text/event-stream" : "application/json");
      call_headers_.Append("traceparent: " + traceparent_);
      if (!tracestate_.empty()) call_headers_.Append("tracestate: " + tracestate_);
      headers = call_headers_.get();
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "synaps");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &ChatCall::OnBodyThunk);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &ChatCall::OnHeaderThunk);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error_buffer_);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout.count()));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
    if (stream_ && o.idle_timeout.count() > 0) {
      curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                       std::max(1L, static_cast<long>(o.idle_timeout.count() / 1000)));
    }
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &ChatCall::OnOpenSocketThunk);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, this);
    // Wait for a connection that can multiplex rather than opening a new one per call — over
    // TLS only, where ALPN can offer HTTP/2. A cleartext http:// server (vLLM, Ollama, llama.cpp)
    // speaks HTTP/1.1, and waiting there held every call of a burst until the first answer's
    // headers arrived: a whole model latency (1 s in the in-flight benchmark) before the rest
    // even connected.
    if (core_->url.starts_with("https://")) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);

    phase_ = Phase::kTransferring;
    auto added = core_->multi.Add(e, [self = shared_from_this()](CURLcode rc) {
      self->OnTransferDone(rc);
    });
    if (!added) {
      phase_ = Phase::kIdle;
      easy_.reset();
      Finish(std::unexpected(added.error()));
    }
  }

  static curl_socket_t OnOpenSocketThunk(void* self, curlsocktype, curl_sockaddr* address) {
    return static_cast<ChatCall*>(self)->OnOpenSocket(address);
  }

  // The address libcurl resolved and is about to connect to passes the outbound policy, or the
  // attempt fails (not retried) saying why: DNS cannot steer a call to a forbidden address.
  curl_socket_t OnOpenSocket(curl_sockaddr* address) {
    std::optional<net::IpAddress> ip = net::AddressOf(&address->addr);
    Status ok = ip ? net::CheckAddress(*core_->target, *ip, core_->options.address_policy,
                                       net::kProviderSender)
                   : Fail(ErrorCode::kPermissionDenied,
                          "provider host " + core_->target->host + " resolves to a non-IP address");
    if (!ok) {
      abort_ = Failure{ok.error()};
      return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  }

  static size_t OnHeaderThunk(char* data, size_t size, size_t count, void* self) {
    static_cast<ChatCall*>(self)->OnHeader(std::string_view(data, size * count));
    return size * count;
  }

  void OnHeader(std::string_view line) {
    if (line.starts_with("HTTP/")) {
      // A new response (after a 100 Continue or a proxy's CONNECT): forget the previous one.
      content_type_.clear();
      retry_after_.clear();
      retry_after_ms_.clear();
      should_retry_.clear();
      request_id_.clear();
      return;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return;
    std::string key = Lower(std::string(line.substr(0, colon)));
    std::string value = Trim(line.substr(colon + 1));
    if (key == "content-type") content_type_ = Lower(value);
    else if (key == "retry-after") retry_after_ = value;
    else if (key == "retry-after-ms") retry_after_ms_ = value;
    else if (key == "x-should-retry") should_retry_ = Lower(value);
    else if (key == "x-request-id" || key == "request-id") request_id_ = value;
  }

  static size_t OnBodyThunk(char* data, size_t size, size_t count, void* self) {
    return static_cast<ChatCall*>(self)->OnBody(std::string_view(data, size * count));
  }

  // Returning less than the size given aborts the transfer (CURLE_WRITE_ERROR).
  size_t OnBody(std::string_view bytes) {
    if (cancelled_ || finished_ || abort_) return 0;
    if (mode_ == BodyMode::kUnknown) {
      curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &status_);
      bool ok = status_ >= 200 && status_ <= 299;
      mode_ = ok && content_type_.find("text/event-stream") != std::string::npos
                  ? BodyMode::kEventStream
                  : BodyMode::kWhole;
    }
    if (mode_ == BodyMode::kWhole) {
      if (raw_body_.size() + bytes.size() > core_->options.max_response_bytes) {
        abort_ = Failure{Error{ErrorCode::kInternal,
                               "the answer is larger than " +
                                   std::to_string(core_->options.max_response_bytes) + " bytes",
                               {}}};
        return 0;
      }
      raw_body_.append(bytes);
      return bytes.size();
    }
    auto status = sse_.Feed(bytes, [this](const SseEvent& e) { return OnEvent(e); });
    if (status == SseParser::Status::kOverflow) {
      abort_ = Failure{Error{ErrorCode::kInternal, "a stream event exceeds the size limit", {}}};
    }
    if (abort_ || cancelled_) return 0;
    return bytes.size();
  }

  // One SSE event; false stops reading.
  bool OnEvent(const SseEvent& event) {
    if (done_seen_) return true;  // nothing after [DONE] matters
    if (event.data == "[DONE]") {
      done_seen_ = true;
      return true;
    }
    json chunk = json::parse(event.data, nullptr, /*allow_exceptions=*/false);
    if (chunk.is_discarded()) {
      std::string shown = event.data.substr(0, 200);
      abort_ = Failure{Error{ErrorCode::kInternal,
                             "the provider sent invalid JSON in the stream: " + shown, {}}};
      return false;
    }
    // Whatever a provider sends fails this call at most (core/barrier.h), never the worker.
    auto delta = Guarded("reading a stream chunk", [&] { return assembler_.Apply(chunk); });
    if (!delta) {
      abort_ = Failure{delta.error(), delta.error().code == ErrorCode::kUnavailable};
      return false;
    }
    Deliver(*delta);
    return !cancelled_ && !finished_;
  }

  void Deliver(ChatDelta& delta) {
    if (delta.text.empty() && delta.reasoning.empty()) return;
    if (!first_token_) first_token_ = Since(started_);
    if (!on_delta_) return;
    delta.attempt = attempt_;
    on_delta_(delta);
  }

  void OnTransferDone(CURLcode rc) {
    phase_ = Phase::kIdle;
    if (status_ == 0 && easy_) curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &status_);
    std::string detail = error_buffer_;
    easy_.reset();  // the connection stays in the multi handle's cache
    if (finished_) return;
    if (!cancelled_) {
      auto outcome = Evaluate(rc, detail);
      if (!outcome) {
        OnFailure(std::move(outcome.error()));
        return;
      }
      if (!cancelled_) {
        outcome->attempts = attempt_;
        outcome->latency = Since(started_);
        outcome->time_to_first_token = first_token_.value_or(outcome->latency);
        Finish(std::move(*outcome));
        return;
      }
    }
    Finish(Fail(ErrorCode::kCancelled, "call cancelled"));
  }

  // What the finished attempt produced: the answer, or why it failed.
  std::expected<ChatResponse, Failure> Evaluate(CURLcode rc, const std::string& detail) {
    using Failed = std::unexpected<Failure>;
    if (abort_) {
      Failure f = std::move(*abort_);
      if (f.error.code == ErrorCode::kUnavailable) f.retry = true;
      return Failed(std::move(f));
    }
    if (rc != CURLE_OK) {
      HttpFailure f = ClassifyCurlError(rc, detail);
      if (mode_ == BodyMode::kEventStream) {
        f.error.message = "the stream broke before the answer was complete: " + f.error.message;
      }
      return Failed(Failure{std::move(f.error), f.retry, std::nullopt});
    }
    if (status_ < 200 || status_ > 299) {
      HttpFailure f = ClassifyHttpStatus(status_, raw_body_, should_retry_);
      auto wait = ParseRetryAfter(retry_after_, retry_after_ms_, std::chrono::system_clock::now());
      return Failed(Failure{std::move(f.error), f.retry, wait});
    }
    if (mode_ == BodyMode::kEventStream) {
      sse_.Finish([this](const SseEvent& e) { return OnEvent(e); });
      if (abort_) return Evaluate(CURLE_OK, detail);
      if (!done_seen_ && !assembler_.finished()) {
        return Failed(Failure{Error{ErrorCode::kUnavailable,
                                    "the stream ended before the answer was complete (no "
                                    "finish_reason, no [DONE])",
                                    {}},
                              true, std::nullopt});
      }
      return assembler_.Take();
    }
    if (raw_body_.find_first_not_of(" \t\r\n") == std::string::npos) {
      return Failed(Failure{Error{ErrorCode::kUnavailable, "the provider sent an empty answer", {}},
                            true, std::nullopt});
    }
    json body = json::parse(raw_body_, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) {
      return Failed(Failure{
          Error{ErrorCode::kInternal,
                "the provider's answer is not valid JSON: " + raw_body_.substr(0, 200), {}},
          false, std::nullopt});
    }
    auto parsed = Guarded("reading the provider's answer", [&] { return ParseCompletion(body); });
    if (!parsed) {
      bool retry = parsed.error().code == ErrorCode::kUnavailable;
      return Failed(Failure{parsed.error(), retry, std::nullopt});
    }
    if (stream_) {
      // The server ignored stream: true and answered in one piece; report it as one delta.
      ChatDelta whole{attempt_, parsed->text, parsed->reasoning};
      Deliver(whole);
    }
    return std::move(*parsed);
  }

  void OnFailure(Failure f) {
    if (finished_ || core_ == nullptr) return;
    const OpenAiOptions& o = core_->options;
    std::string where = o.name + ": ";
    std::string suffix = request_id_.empty() ? "" : " (request id " + request_id_ + ")";
    // Shared with every worker on the route, capped like an in-call wait: a provider's "come
    // back tomorrow" must not stop every tenant's calls on the route for a day.
    if (f.retry_after && status_ == 429 && on_retry_after_) {
      on_retry_after_(std::min(*f.retry_after, o.retry.max_retry_after));
    }
    if (f.retry && attempt_ < max_attempts_) {
      if (f.retry_after && *f.retry_after > o.retry.max_retry_after) {
        f.error.message = where + f.error.message + suffix + "; the provider asked to wait " +
                          std::to_string(f.retry_after->count() / 1000) +
                          " s, longer than the in-call limit";
        if (!f.error.retryable()) f.error.code = ErrorCode::kUnavailable;
        Finish(std::unexpected(std::move(f.error)));
        return;
      }
      auto delay = f.retry_after ? *f.retry_after
                                 : BackoffDelay(o.retry, attempt_ + 1, core_->rng);
      spdlog::info("{}attempt {} of {} failed: {}{}; retrying in {} ms", where, attempt_,
                   max_attempts_, f.error.message, suffix, delay.count());
      phase_ = Phase::kWaiting;
      backoff_.expires_after(delay);
      backoff_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (ec || self->finished_) return;
        if (!self->before_retry_) {
          self->phase_ = Phase::kIdle;
          return self->StartAttempt();
        }
        // Still kWaiting while the retry waits for its slot: Cancel() finishes the call.
        auto before_retry = self->before_retry_;  // the hook may outlive a Finish() inside it
        before_retry([self] {
          if (self->finished_ || self->phase_ != Phase::kWaiting) return;
          self->phase_ = Phase::kIdle;
          self->StartAttempt();
        });
      });
      return;
    }
    f.error.message = where + f.error.message + suffix;
    if (attempt_ > 1) f.error.message += " (gave up after " + std::to_string(attempt_) + " attempts)";
    Finish(std::unexpected(std::move(f.error)));
  }

  void Finish(Result<ChatResponse> result) {
    if (finished_) return;
    finished_ = true;
    if (core_ != nullptr) core_->live.erase(this);
    on_delta_ = nullptr;
    on_retry_after_ = nullptr;
    before_retry_ = nullptr;
    asio::post(executor_, [self = shared_from_this(), result = std::move(result)]() mutable {
      auto done = std::move(self->done_);
      self->done_ = nullptr;
      if (done) done(std::move(result));
    });
  }

  OpenAiCompatibleProvider::Core* core_;  // null once the provider is destroyed
  asio::any_io_executor executor_;
  Provider::Done done_;
  DeltaCallback on_delta_;
  std::function<void(std::chrono::milliseconds)> on_retry_after_;  // 429 with Retry-After
  std::function<void(std::function<void()>)> before_retry_;        // a slot for each retry
  const std::string body_;
  const bool stream_;
  const std::string traceparent_;
  const std::string tracestate_;
  const std::chrono::milliseconds timeout_;
  const int max_attempts_;
  const Clock::time_point started_;
  std::optional<std::chrono::milliseconds> first_token_;
  asio::steady_timer backoff_;
  Phase phase_ = Phase::kIdle;
  int attempt_ = 0;
  bool cancelled_ = false;
  bool finished_ = false;

  // The current attempt. The header list outlives the easy handle that points at it.
  curl::HeaderList call_headers_;  // base headers plus the trace context; empty without one
  curl::EasyHandle easy_;
  char error_buffer_[CURL_ERROR_SIZE] = {};
  BodyMode mode_ = BodyMode::kUnknown;
  long status_ = 0;
  std::string content_type_;
  std::string retry_after_;
  std::string retry_after_ms_;
  std::string should_retry_;
  std::string request_id_;
  std::string raw_body_;  // a non-stream body (answers, error bodies)
  SseParser sse_;
  StreamAssembler assembler_;
  bool done_seen_ = false;
  std::optional<Failure> abort_;  // why we stopped reading, when we did
};

namespace {

class ChatCallHandle final : public Call {
 public:
  explicit ChatCallHandle(std::shared_ptr<ChatCall> call) : call_(std::move(call)) {}
  void Cancel() override {
    asio::dispatch(call_->executor(), [call = call_] { call->Cancel(); });
  }

 private:
  std::shared_ptr<ChatCall> call_;
};

// A call refused before anything was sent: its error is reported from the loop as always, or
// kCancelled if it is cancelled first.
class RefusedCall final : public Call {
 public:
  RefusedCall(asio::any_io_executor executor, Provider::Done done, Error error)
      : state_(std::make_shared<State>(State{std::move(executor), std::move(done),
                                             std::move(error)})) {
    asio::post(state_->executor, [state = state_] {
      auto done = std::move(state->done);
      if (state->cancelled) {
        done(Fail(ErrorCode::kCancelled, "call cancelled"));
      } else {
        done(std::unexpected(std::move(state->error)));
      }
    });
  }
  void Cancel() override {
    asio::dispatch(state_->executor, [state = state_] { state->cancelled = true; });
  }

 private:
  struct State {
    asio::any_io_executor executor;
    Provider::Done done;
    Error error;
    bool cancelled = false;
  };
  std::shared_ptr<State> state_;
};

curl::HeaderList MakeHeaders(const OpenAiOptions& o, const char* accept) {
  curl::HeaderList list;
  list.Append("Content-Type: application/json");
  list.Append(std::string("Accept: ") + accept);
  list.Append("Expect:");  // no 100-continue round trip for large bodies
  if (!o.api_key.empty()) list.Append("Authorization: Bearer " + o.api_key);
  for (const auto& h : o.extra_headers) list.Append(h);
  return list;
}

}  // namespace
}  // namespace detail

OpenAiCompatibleProvider::Core::Core(asio::any_io_executor ex, OpenAiOptions opts)
    : executor(ex),
      options(std::move(opts)),
      target(net::ParseTarget(options.base_url, net::kProviderSender)),
      stream_headers(detail::MakeHeaders(options, "text/event-stream")),
      plain_headers(detail::MakeHeaders(options, "application/json")),
      multi(ex, options.connections) {
  std::string base = options.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  url = base + "/chat/completions";
}

OpenAiCompatibleProvider::Core::~Core() {
  auto calls = std::move(live);
  for (detail::ChatCall* call : calls) call->Abandon();
}

OpenAiCompatibleProvider::OpenAiCompatibleProvider(asio::any_io_executor executor,
                                                   OpenAiOptions options)
    : core_(std::make_unique<Core>(std::move(executor), std::move(options))) {}

OpenAiCompatibleProvider::~OpenAiCompatibleProvider() = default;

std::string OpenAiCompatibleProvider::name() const { return core_->options.name; }

std::unique_ptr<Call> OpenAiCompatibleProvider::Start(const ChatRequest& request, Done done) {
  if (!core_->target) {
    Error e = core_->target.error();
    e.message = core_->options.name + ": " + e.message;
    e.field = "baseUrl";
    return std::make_unique<detail::RefusedCall>(core_->executor, std::move(done), std::move(e));
  }
  auto body = detail::BuildChatBody(request, request.stream, core_->options.include_usage);
  if (!body) {
    Error e = body.error();
    e.message = core_->options.name + ": " + e.message;
    return std::make_unique<detail::RefusedCall>(core_->executor, std::move(done), std::move(e));
  }
  auto call = std::make_shared<detail::ChatCall>(core_.get(), request, body->dump(),
                                                 std::move(done));
  call->Begin();
  return std::make_unique<detail::ChatCallHandle>(std::move(call));
}

size_t OpenAiCompatibleProvider::calls_in_flight() const { return core_->live.size(); }
size_t OpenAiCompatibleProvider::watched_sockets() const { return core_->multi.watched_sockets(); }

}  // namespace synaps::providers
