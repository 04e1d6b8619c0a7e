#include "api/outbox_relay.h"

#include <spdlog/spdlog.h>

#include <string_view>
#include <unordered_map>

#include "core/barrier.h"
#include "otel/exporter.h"
#include "store/outbox_store.h"
#include "store/queue_store.h"

namespace synaps::api {

OutboxRelay::OutboxRelay(OutboxRelayOptions options, bus::Bus* bus, db::Pool* pool)
    : options_(options), bus_(bus), pool_(pool) {}

OutboxRelay::~OutboxRelay() { Stop(); }

void OutboxRelay::Start() { thread_ = std::thread([this] { Loop(); }); }

void OutboxRelay::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OutboxRelay::Notify(std::vector<store::OutboxMessage> messages) {
  {
    std::lock_guard lock(mu_);
    for (auto& m : messages) handed_.push_back(std::move(m));
  }
  cv_.notify_one();
}

void OutboxRelay::Notify(std::vector<store::OutboxMessage> messages, const TraceContext& trace) {
  for (auto& m : messages) {
    m.traceparent = trace.Traceparent();
    m.tracestate = trace.tracestate;
  }
  Notify(std::move(messages));
}

void OutboxRelay::Wake() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_one();
}

namespace {

// A wakeup only says "there is work in <queue>" (bus/messages.h): of several for one queue in a
// batch, publishing the last says all they say.
bool Coalesces(const std::string& subject) { return subject.rfind("synaps.wakeup.", 0) == 0; }

}  // namespace

std::vector<int64_t> OutboxRelay::PublishAll(const std::vector<store::OutboxMessage>& messages) {
  // covered_by[i]: the later message of the same wakeup subject that stands for message i.
  std::vector<size_t> covered_by(messages.size(), messages.size());
  std::unordered_map<std::string_view, size_t> last;
  for (size_t i = messages.size(); i-- > 0;) {
    if (!Coalesces(messages[i].subject)) continue;
    auto [it, inserted] = last.try_emplace(messages[i].subject, i);
    if (!inserted) covered_by[i] = it->second;
  }
  // Messages are sent in order until one fails: `sent` is the index of the first not sent.
  size_t sent = 0;
  for (; sent < messages.size(); ++sent) {
    if (covered_by[sent] != messages.size()) continue;  // its stand-in goes later
    const auto& m = messages[sent];
    bus::Headers headers = {{std::string(bus::kPublishedAtHeader),
                             std::to_string(otel::NowUnixNano())}};
    if (!m.traceparent.empty()) headers.emplace_back("traceparent", m.traceparent);
    if (!m.tracestate.empty()) headers.emplace_back("tracestate", m.tracestate);
    auto s = bus_->Publish(m.subject, m.payload, m.msg_id, headers);
    if (!s) {
      spdlog::debug("outbox publish deferred: {}", s.error().message);
      break;
    }
  }
  // A row is published when it, or the wakeup that stands for it, was sent.
  std::vector<int64_t> ids;
  for (size_t i = 0; i < messages.size(); ++i) {
    const size_t by = covered_by[i] == messages.size() ? i : covered_by[i];
    if (by < sent) ids.push_back(messages[i].id);
  }
  return ids;
}

Result<int> OutboxRelay::SweepOnce() {
  ASSIGN_OR_RETURN(auto conn, pool_->Acquire());
  return db::InTransaction(*conn, [&]() -> Result<int> {
    ASSIGN_OR_RETURN(auto rows, store::LockUnpublished(*conn, options_.batch));
    auto ids = PublishAll(rows);
    RETURN_IF_ERROR(store::DeletePublished(*conn, ids));
    return static_cast<int>(ids.size());
  });
}

void OutboxRelay::Loop() {
  auto next_sweep = std::chrono::steady_clock::now();
  auto next_cleanup = next_sweep + std::chrono::seconds(10);
  while (true) {
    std::vector<store::OutboxMessage> batch;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, next_sweep, [&] { return stop_ || wake_ || !handed_.empty(); });
      stopping = stop_;
      if (wake_) next_sweep = std::chrono::steady_clock::now();
      wake_ = false;
      while (!handed_.empty()) {
        batch.push_back(std::move(handed_.front()));
        handed_.pop_front();
      }
    }
    // The relay thread's barrier (core/barrier.h): a step that throws is logged and the next
    // sweep publishes what it left.
    if (!batch.empty() && bus_->connected()) {
      // Logged by the barrier; the next sweep publishes what this left.
      (void)Guarded("outbox relay: publishing handed rows", [&] {
        auto ids = PublishAll(batch);
        if (ids.empty()) return;
        auto conn = pool_->Acquire();
        // If deleting fails the sweep publishes again; JetStream drops the duplicate.
        if (conn) (void)store::DeletePublished(**conn, ids);
      });
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= next_sweep || stopping) {
      if (bus_->connected()) {
        auto n = Guarded("outbox relay: sweep", [&] { return SweepOnce(); });
        if (!n) spdlog::debug("outbox sweep failed: {}", n.error().message);
      }
      next_sweep = now + std::chrono::milliseconds(options_.sweep_interval_ms);
    }
    if (now >= next_cleanup) {
      (void)Guarded("outbox relay: cleanup", [&] {  // logged by the barrier; retried in 30 s
        auto conn = pool_->Acquire();
        if (!conn) return;
        // Housekeeping: what fails now is deleted by the next cleanup, 30 s later.
        (void)store::DeleteMarkedPublished(**conn, options_.retention_seconds);
        // Housekeeping that needs no owner of its own: leftovers of cancelled runs.
        (void)store::DeleteAbandonedCancelledItems(**conn);
      });
      next_cleanup = now + std::chrono::seconds(30);
    }
    if (stopping) return;
  }
}

}  // namespace synaps::api
