#include "bus/nats_bus.h"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <thread>

#include "bus/messages.h"
#include "core/barrier.h"
#include "core/config.h"

namespace synaps::bus {
namespace {

std::string NatsError(natsStatus s) { return natsStatus_GetText(s); }

struct OptionsDeleter {
  void operator()(natsOptions* o) const { natsOptions_Destroy(o); }
};
struct MsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using OptionsPtr = std::unique_ptr<natsOptions, OptionsDeleter>;
using MsgPtr = std::unique_ptr<natsMsg, MsgDeleter>;

// How long a closing connection waits for nats.c's last callback on it.
constexpr auto kCloseWait = std::chrono::seconds(5);

// The headers of a delivered message (none for a message without any), at most kMaxHeaders.
Headers ReadHeaders(natsMsg* msg) {
  constexpr int kMaxHeaders = 32;
  Headers out;
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(msg, &keys, &count) != NATS_OK) return out;
  for (int i = 0; i < count && i < kMaxHeaders; ++i) {
    const char* value = nullptr;
    if (natsMsgHeader_Get(msg, keys[i], &value) == NATS_OK && value != nullptr) {
      out.emplace_back(keys[i], value);
    }
  }
  free(static_cast<void*>(keys));  // nats.c: the array is the caller's, the strings are not
  return out;
}

// Header names and values go on the wire as text lines: printable ASCII only, names without
// ':' or spaces.
bool SendableHeader(const std::string& name, const std::string& value) {
  auto printable = [](const std::string& t, bool name_rules) {
    for (unsigned char c : t) {
      if (c < 0x20 || c > 0x7e) return false;
      if (name_rules && (c == ':' || c == ' ')) return false;
    }
    return true;
  };
  return !name.empty() && printable(name, true) && printable(value, false);
}

// One asynchronous subscription. nats.c calls OnMessage on the subscription's delivery thread
// with `State` as the closure; OnComplete runs on that thread once the subscription is closed
// and the handler's last call has returned. The destructor unsubscribes and waits for
// OnComplete, so the handler (and whatever it points to) is never used after it.
class NatsSubscription final : public Subscription {
 public:
  static Result<std::unique_ptr<NatsSubscription>> Start(natsConnection* conn,
                                                         const std::string& subject,
                                                         Bus::MessageHandler handler,
                                                         RejectedMessages* rejected,
                                                         int flush_timeout_ms) {
    std::unique_ptr<NatsSubscription> self(new NatsSubscription(std::move(handler), rejected));
    natsStatus s = natsConnection_Subscribe(&self->sub_, conn, subject.c_str(), &OnMessage,
                                            self->state_.get());
    if (s != NATS_OK) {
      // Nothing was created: no handler call can come.
      self->state_->completed = true;
      return Fail(ErrorCode::kUnavailable, "subscribe to " + subject + " failed: " + NatsError(s));
    }
    s = natsSubscription_SetOnCompleteCB(self->sub_, &OnComplete, self->state_.get());
    if (s != NATS_OK) {
      // Closed already (the connection is closing): its end cannot be awaited, so the state is
      // left to any late handler call rather than freed under it.
      natsSubscription_Destroy(self->sub_);
      self->sub_ = nullptr;
      (void)self->state_.release();  // deliberately leaked, see above
      return Fail(ErrorCode::kUnavailable, "subscription to " + subject + " closed at once");
    }
    // Registered at the server before Subscribe returns, so that what is published next is
    // delivered. Disconnected: the subscription is sent on reconnect.
    if (natsConnection_Status(conn) == NATS_CONN_STATUS_CONNECTED) {
      s = natsConnection_FlushTimeout(conn, flush_timeout_ms);
      if (s != NATS_OK) {
        return Fail(ErrorCode::kUnavailable,
                    "subscribe to " + subject + " not confirmed by the server: " + NatsError(s));
      }
    }
    return self;
  }

  ~NatsSubscription() override {
    if (sub_ == nullptr) return;
    // Fails only when the subscription is closed already; OnComplete comes either way.
    (void)natsSubscription_Unsubscribe(sub_);
    if (state_->delivering.load() == std::this_thread::get_id()) {
      // Destroyed from inside its own handler: that call is the last, and OnComplete (after it
      // returns) frees the state.
      std::lock_guard lock(state_->mu);
      state_->orphaned = true;
      (void)state_.release();  // owned by OnComplete from here on
    } else {
      std::unique_lock lock(state_->mu);
      while (
          !state_->cv.wait_for(lock, std::chrono::seconds(5), [&] { return state_->completed; })) {
        spdlog::warn("bus: still waiting for a subscription's handler to return");
      }
    }
    natsSubscription_Destroy(sub_);
  }

 private:
  struct State {
    Bus::MessageHandler handler;
    RejectedMessages* rejected;  // the bus's, which outlives its subscriptions
    std::mutex mu;
    std::condition_variable cv;
    bool completed = false;  // guarded by mu
    bool orphaned = false;   // guarded by mu: OnComplete deletes the state
    std::atomic<std::thread::id> delivering{};
  };

  NatsSubscription(Bus::MessageHandler handler, RejectedMessages* rejected)
      : state_(new State{.handler = std::move(handler), .rejected = rejected}) {}

  static void OnMessage(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) noexcept {
    MsgPtr msg(raw);
    auto* state = static_cast<State*>(closure);
    state->delivering.store(std::this_thread::get_id());
    // The barrier of the nats.c thread: nothing may unwind into C.
    Status handled = Guarded("bus message handler", [&]() -> Status {
      const char* subject_text = natsMsg_GetSubject(msg.get());
      std::string subject = subject_text != nullptr ? subject_text : "";
      int length = natsMsg_GetDataLength(msg.get());
      if (length < 0 || static_cast<size_t>(length) > kMaxPayloadBytes) {
        state->rejected->Record(subject,
                                Error{ErrorCode::kInvalidArgument,
                                      "payload of " + std::to_string(length) + " bytes exceeds " +
                                          std::to_string(kMaxPayloadBytes),
                                      {}});
        return Ok();
      }
      const char* data = natsMsg_GetData(msg.get());
      Message m{.subject = std::move(subject),
                .payload = data != nullptr ? std::string(data, length) : std::string(),
                .headers = ReadHeaders(msg.get())};
      msg.reset();
      Status r = Guarded("bus handler for " + SubjectFamily(m.subject),
                         [&] { return state->handler(m); });
      if (!r) state->rejected->Record(m.subject, r.error());
      return Ok();
    });
    (void)handled;  // an exception outside the handler was logged by the barrier; dropped
    state->delivering.store(std::thread::id());
  }

  static void OnComplete(void* closure) noexcept {
    auto* state = static_cast<State*>(closure);
    bool orphaned;
    {
      std::lock_guard lock(state->mu);
      state->completed = true;
      orphaned = state->orphaned;
      state->cv.notify_all();
    }
    if (orphaned) delete state;
  }

  std::unique_ptr<State> state_;
  natsSubscription* sub_ = nullptr;
};

}  // namespace

namespace detail {

void JsCtxDeleter::operator()(jsCtx* js) const { jsCtx_Destroy(js); }

// Owns a natsConnection and the closure of its callbacks. The destructor closes the connection
// and waits for its closed callback, the last one nats.c makes, before destroying it.
class NatsConnection {
 public:
  static Result<std::unique_ptr<NatsConnection>> Connect(const NatsOptions& o) {
    std::unique_ptr<NatsConnection> self(new NatsConnection());
    natsOptions* raw = nullptr;
    natsStatus s = natsOptions_Create(&raw);
    OptionsPtr opts(raw);
    Events* events = self->events_.get();
    if (s == NATS_OK) s = natsOptions_SetURL(opts.get(), o.url.c_str());
    if (s == NATS_OK) s = natsOptions_SetName(opts.get(), o.name.c_str());
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts.get(), -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts.get(), 250);
    if (s == NATS_OK) s = natsOptions_SetReconnectJitter(opts.get(), 250, 1000);
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts.get(), 2000);
    // With a connected callback the first connect is asynchronous: Connect returns at once even
    // when the server is down (with a null callback it would block until it comes up).
    if (s == NATS_OK)
      s = natsOptions_SetRetryOnFailedConnect(opts.get(), true, &OnConnected, events);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts.get(), &OnConnected, events);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(opts.get(), &OnClosed, events);
    if (s != NATS_OK) {
      return Fail(ErrorCode::kInvalidArgument, "'" + o.url + "' is not usable: " + NatsError(s));
    }
    s = natsConnection_Connect(&self->conn_, opts.get());
    if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
      self->conn_ = nullptr;  // nats.c frees a connection that failed
      return Fail(ErrorCode::kInvalidArgument, "'" + o.url + "': " + NatsError(s));
    }
    return self;
  }

  ~NatsConnection() {
    if (conn_ == nullptr) return;
    natsConnection_Close(conn_);
    {
      std::unique_lock lock(events_->mu);
      if (!events_->cv.wait_for(lock, kCloseWait, [&] { return events_->closed; })) {
        spdlog::error("NATS: no closed callback within {} s; leaving its state to it",
                      std::chrono::duration_cast<std::chrono::seconds>(kCloseWait).count());
        lock.unlock();
        (void)events_.release();  // deliberately leaked: a late callback still finds it
      }
    }
    natsConnection_Destroy(conn_);
  }

  natsConnection* get() const { return conn_; }
  // Connections made in the background (first connect after a failed one, reconnects).
  uint64_t connects() const { return events_->connects.load(); }

 private:
  struct Events {
    std::atomic<uint64_t> connects{0};
    std::mutex mu;
    std::condition_variable cv;
    bool closed = false;  // guarded by mu
  };

  NatsConnection() : events_(std::make_unique<Events>()) {}

  static void OnConnected(natsConnection*, void* closure) noexcept {
    static_cast<Events*>(closure)->connects.fetch_add(1);
    (void)Guarded("NATS connected callback", [] { spdlog::info("connected to NATS"); });
  }

  static void OnClosed(natsConnection*, void* closure) noexcept {
    auto* events = static_cast<Events*>(closure);
    std::lock_guard lock(events->mu);
    events->closed = true;
    events->cv.notify_all();
  }

  std::unique_ptr<Events> events_;
  natsConnection* conn_ = nullptr;
};

}  // namespace detail

NatsOptions NatsOptionsFromEnv(std::string url, std::string name) {
  NatsOptions o;
  o.url = std::move(url);
  o.name = std::move(name);
  o.stream_replicas = static_cast<int>(config::EnvInt("SYNAPS_NATS_STREAM_REPLICAS", 1, 1, 5));
  o.stream_max_age_seconds =
      static_cast<int>(config::EnvInt("SYNAPS_NATS_STREAM_MAX_AGE_SECONDS", 600, 1, 86400));
  return o;
}

NatsBus::NatsBus(NatsOptions options)
    : options_(std::move(options)), rejected_(options_.reject_log_interval) {
  auto conn = detail::NatsConnection::Connect(options_);
  if (!conn) throw ConfigError("SYNAPS_NATS_URL=" + conn.error().message);
  conn_ = std::move(*conn);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options_.publish_timeout_ms;
  jsCtx* js = nullptr;
  natsStatus s = natsConnection_JetStream(&js, conn_->get(), &jo);
  if (s != NATS_OK) throw ConfigError("cannot create a JetStream context: " + NatsError(s));
  js_.reset(js);
  if (!connected()) {
    spdlog::warn("NATS at {} is not reachable yet; retrying in the background", options_.url);
  }
}

// The JetStream context goes first (declared after the connection), then the connection.
NatsBus::~NatsBus() = default;

bool NatsBus::connected() const {
  return natsConnection_Status(conn_->get()) == NATS_CONN_STATUS_CONNECTED;
}

std::map<std::string, uint64_t> NatsBus::RejectedCounts() const { return rejected_.Counts(); }

Status NatsBus::EnsureStream() {
  std::lock_guard lock(stream_mu_);
  const uint64_t connects = conn_->connects();
  if (stream_ready_at_ == connects) return Ok();
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js_.get(), "SYNAPS", nullptr, &jerr);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
    stream_ready_at_ = connects;
    return Ok();
  }
  if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
    return Fail(ErrorCode::kUnavailable, "JetStream unavailable: " + NatsError(s));
  }
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subjects[] = {"synaps.>"};
  cfg.Name = "SYNAPS";
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.MaxAge = static_cast<int64_t>(options_.stream_max_age_seconds) * 1000000000LL;
  cfg.Duplicates = static_cast<int64_t>(options_.duplicate_window_seconds) * 1000000000LL;
  cfg.Replicas = options_.stream_replicas;
  s = js_AddStream(&si, js_.get(), &cfg, nullptr, &jerr);
  if (si) jsStreamInfo_Destroy(si);
  if (s != NATS_OK && jerr != JSStreamNameExistErr) {
    return Fail(ErrorCode::kUnavailable, "cannot create JetStream stream SYNAPS: " + NatsError(s));
  }
  stream_ready_at_ = connects;
  return Ok();
}

Result<uint64_t> NatsBus::StreamMessageCount() {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js_.get(), "SYNAPS", nullptr, &jerr);
  if (s != NATS_OK) return Fail(ErrorCode::kUnavailable, "stream info: " + NatsError(s));
  uint64_t n = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  return n;
}

Status NatsBus::Publish(const std::string& subject, const std::string& payload,
                        const std::string& msg_id, const Headers& headers) {
  for (const auto& [name, value] : headers) {
    if (!SendableHeader(name, value)) {
      return Fail(ErrorCode::kInvalidArgument,
                  "header '" + name + "' of a message to " + subject + " is not sendable");
    }
  }
  if (!connected()) return Fail(ErrorCode::kUnavailable, "NATS is not connected");
  RETURN_IF_ERROR(EnsureStream());
  natsMsg* raw = nullptr;
  natsStatus made = natsMsg_Create(&raw, subject.c_str(), nullptr, payload.data(),
                                   static_cast<int>(payload.size()));
  if (made != NATS_OK) {
    return Fail(ErrorCode::kInternal, "message to " + subject + ": " + NatsError(made));
  }
  MsgPtr msg(raw);
  for (const auto& [name, value] : headers) {
    made = natsMsgHeader_Set(msg.get(), name.c_str(), value.c_str());
    if (made != NATS_OK) {
      return Fail(ErrorCode::kInvalidArgument, "header '" + name + "': " + NatsError(made));
    }
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = msg_id.c_str();
  po.MaxWait = options_.publish_timeout_ms;
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_PublishMsg(&ack, js_.get(), msg.get(), &po, &jerr);
  if (ack) jsPubAck_Destroy(ack);
  if (s != NATS_OK) {
    if (s == NATS_NO_RESPONDERS || jerr == JSStreamNotFoundErr) {
      std::lock_guard lock(stream_mu_);
      stream_ready_at_ = kNever;
    }
    return Fail(ErrorCode::kUnavailable, "publish to " + subject + " failed: " + NatsError(s));
  }
  return Ok();
}

Result<std::unique_ptr<Subscription>> NatsBus::SubscribeMessages(const std::string& subject,
                                                                 MessageHandler handler) {
  ASSIGN_OR_RETURN(auto sub,
                   NatsSubscription::Start(conn_->get(), subject, std::move(handler), &rejected_,
                                           options_.subscribe_flush_timeout_ms));
  return std::unique_ptr<Subscription>(std::move(sub));
}

}  // namespace synaps::bus
