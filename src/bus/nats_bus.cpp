#include "bus/nats_bus.h"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include "core/config.h"

namespace synaps::bus {
namespace {

std::string NatsError(natsStatus s) { return natsStatus_GetText(s); }

class NatsSubscription final : public Subscription {
 public:
  NatsSubscription(Bus::Handler handler) : handler_(std::move(handler)) {}
  ~NatsSubscription() override {
    if (sub_) {
      natsSubscription_Unsubscribe(sub_);
      natsSubscription_Destroy(sub_);
    }
  }
  static void OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<NatsSubscription*>(closure);
    std::string subject = natsMsg_GetSubject(msg);
    std::string payload(natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
    natsMsg_Destroy(msg);
    self->handler_(subject, payload);
  }
  natsSubscription* sub_ = nullptr;

 private:
  Bus::Handler handler_;
};

}  // namespace

NatsOptions NatsOptionsFromEnv(std::string url, std::string name) {
  NatsOptions o;
  o.url = std::move(url);
  o.name = std::move(name);
  o.stream_replicas = static_cast<int>(config::EnvInt("SYNAPS_NATS_STREAM_REPLICAS", 1, 1, 5));
  o.stream_max_age_seconds =
      static_cast<int>(config::EnvInt("SYNAPS_NATS_STREAM_MAX_AGE_SECONDS", 600, 1, 86400));
  return o;
}

NatsBus::NatsBus(NatsOptions options) : options_(std::move(options)) {
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, options_.url.c_str());
  if (s == NATS_OK) s = natsOptions_SetName(opts, options_.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 250);
  if (s == NATS_OK) s = natsOptions_SetReconnectJitter(opts, 250, 1000);
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 2000);
  // With a connected callback the first connect is asynchronous: Connect returns at once even
  // when the server is down (with a null callback it would block until it comes up).
  if (s == NATS_OK) {
    s = natsOptions_SetRetryOnFailedConnect(opts, true, &NatsBus::OnReconnected, this);
  }
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, &NatsBus::OnReconnected, this);
  if (s != NATS_OK) {
    natsOptions_Destroy(opts);
    throw ConfigError("SYNAPS_NATS_URL='" + options_.url + "' is not usable: " + NatsError(s));
  }
  s = natsConnection_Connect(&conn_, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    throw ConfigError("SYNAPS_NATS_URL='" + options_.url + "': " + NatsError(s));
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options_.publish_timeout_ms;
  s = natsConnection_JetStream(&js_, conn_, &jo);
  if (s != NATS_OK) throw ConfigError("cannot create a JetStream context: " + NatsError(s));
  if (s == NATS_OK && natsConnection_Status(conn_) != NATS_CONN_STATUS_CONNECTED) {
    spdlog::warn("NATS at {} is not reachable yet; retrying in the background", options_.url);
  }
}

NatsBus::~NatsBus() {
  if (js_) jsCtx_Destroy(js_);
  if (conn_) {
    natsConnection_Close(conn_);
    natsConnection_Destroy(conn_);
  }
}

void NatsBus::OnReconnected(natsConnection*, void* closure) {
  auto* self = static_cast<NatsBus*>(closure);
  // The server may be a fresh one without our stream.
  self->stream_ready_ = false;
  spdlog::info("reconnected to NATS");
}

bool NatsBus::connected() const {
  return natsConnection_Status(conn_) == NATS_CONN_STATUS_CONNECTED;
}

Status NatsBus::EnsureStream() {
  std::lock_guard lock(stream_mu_);
  if (stream_ready_) return Ok();
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js_, "SYNAPS", nullptr, &jerr);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
    stream_ready_ = true;
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
  s = js_AddStream(&si, js_, &cfg, nullptr, &jerr);
  if (si) jsStreamInfo_Destroy(si);
  if (s != NATS_OK && jerr != JSStreamNameExistErr) {
    return Fail(ErrorCode::kUnavailable, "cannot create JetStream stream SYNAPS: " + NatsError(s));
  }
  stream_ready_ = true;
  return Ok();
}

Result<uint64_t> NatsBus::StreamMessageCount() {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js_, "SYNAPS", nullptr, &jerr);
  if (s != NATS_OK) return Fail(ErrorCode::kUnavailable, "stream info: " + NatsError(s));
  uint64_t n = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  return n;
}

Status NatsBus::Publish(const std::string& subject, const std::string& payload,
                        const std::string& msg_id) {
  if (!connected()) return Fail(ErrorCode::kUnavailable, "NATS is not connected");
  RETURN_IF_ERROR(EnsureStream());
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = msg_id.c_str();
  po.MaxWait = options_.publish_timeout_ms;
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_Publish(&ack, js_, subject.c_str(), payload.data(),
                            static_cast<int>(payload.size()), &po, &jerr);
  if (ack) jsPubAck_Destroy(ack);
  if (s != NATS_OK) {
    if (s == NATS_NO_RESPONDERS || jerr == JSStreamNotFoundErr) stream_ready_ = false;
    return Fail(ErrorCode::kUnavailable, "publish to " + subject + " failed: " + NatsError(s));
  }
  return Ok();
}

Result<std::unique_ptr<Subscription>> NatsBus::Subscribe(const std::string& subject,
                                                         Handler handler) {
  auto sub = std::make_unique<NatsSubscription>(std::move(handler));
  natsStatus s = natsConnection_Subscribe(&sub->sub_, conn_, subject.c_str(),
                                          &NatsSubscription::OnMessage, sub.get());
  if (s != NATS_OK) {
    return Fail(ErrorCode::kUnavailable, "subscribe to " + subject + " failed: " + NatsError(s));
  }
  return std::unique_ptr<Subscription>(std::move(sub));
}

}  // namespace synaps::bus
