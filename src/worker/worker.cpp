#include "worker/worker.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <charconv>
#include <chrono>
#include <map>
#include <ranges>
#include <set>

#include "bus/messages.h"
#include "core/barrier.h"
#include "core/config.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/trace.h"
#include "core/utf8.h"
#include "db/deadlines.h"
#include "otel/exporter.h"
#include "store/control_store.h"
#include "store/worker_store.h"
#include "worker/db_lane.h"
#include "worker/task_run.h"
#include "worker/task_trace.h"

namespace synaps::worker {

using nlohmann::json;
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

WorkerOptions WorkerOptionsFromEnv() {
  WorkerOptions o;
  o.database_url = config::EnvOr("SYNAPS_DATABASE_URL", "");
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  o.pod = config::EnvOr("POD_NAME", "");
  o.pod_namespace = config::EnvOr("POD_NAMESPACE", "");
  o.name = config::EnvOr("SYNAPS_WORKER_NAME",
                         (o.pod.empty() ? std::string(host) : o.pod) + "-" + std::to_string(getpid()));
  if (auto q = config::Env("SYNAPS_QUEUES")) {
    o.queues = config::SplitList(*q);
    if (o.queues.empty()) throw ConfigError("SYNAPS_QUEUES is empty: name at least one queue");
  }
  o.concurrency =
      static_cast<int>(config::EnvInt("SYNAPS_WORKER_CONCURRENCY", o.concurrency, 1, 100000));
  o.lease_seconds = static_cast<int>(config::EnvInt("SYNAPS_LEASE_SECONDS", 30, 1, 86400));
  o.poll_interval_ms =
      static_cast<int>(config::EnvInt("SYNAPS_POLL_INTERVAL_MS", 1000, 10, 3600000));
  o.drain_seconds = static_cast<int>(config::EnvInt("SYNAPS_DRAIN_SECONDS", 30, 0, 86400));
  const std::string fair = config::EnvOr("SYNAPS_FAIR_SHARE", "on");
  if (fair != "on" && fair != "off") {
    throw ConfigError("SYNAPS_FAIR_SHARE must be on or off (got '" + fair + "')");
  }
  o.fair_share = fair == "on";
  o.backoff.base_ms = static_cast<int>(config::EnvInt("SYNAPS_RETRY_BASE_MS", 1000, 1, 3600000));
  o.backoff.cap_ms = static_cast<int>(config::EnvInt("SYNAPS_RETRY_CAP_MS", 60000, 1, 86400000));
  if (auto r = config::Env("SYNAPS_DEFAULT_ROUTE")) {
    json route = json::parse(*r, nullptr, false);
    if (!route.is_object() || !route.contains("provider") || !route.contains("model")) {
      throw ConfigError("SYNAPS_DEFAULT_ROUTE must be a JSON object with provider and model, e.g. "
                        "{\"provider\":\"openai\",\"model\":\"gpt-4o-mini\"}");
    }
    o.default_route = route;
  }
  o.provider_settings = providers::ProviderSettingsFromEnv();
  // libcurl's connection cache counts the connections in use: one smaller than the slots closes
  // each connection as its call ends (after looking through all of them for an idle one to
  // close instead), so with more calls in flight than the cache holds every call to a
  // plain-HTTP provider connected anew. Unless set, the cache holds one connection per slot.
  if (!config::Env("SYNAPS_PROVIDER_MAX_IDLE_CONNECTIONS")) {
    o.provider_settings.max_idle_connections =
        std::max<long>(o.provider_settings.max_idle_connections, o.concurrency);
  }
  o.db_options = db::ConnectOptionsFromEnv(db::Role::kWorker);
  o.rate_park_after_ms = config::EnvInt("SYNAPS_RATE_LIMIT_HOLD_MS", 250, 0, 60000);
  o.answer_artifact_min_bytes = static_cast<size_t>(
      config::EnvInt("SYNAPS_ANSWER_ARTIFACT_MIN_BYTES", 16384, 0, int64_t{1} << 30));
  return o;
}

namespace {

struct InFlight {
  store::ClaimedItem item;
  std::unique_ptr<TaskRun> run;
  Clock::time_point started;
  bool finished = false;       // answer received; uploading or waiting to be written
  bool writing = false;        // its completion is in the write batch in flight
  bool failing = false;        // its failure is being recorded
  bool run_cancelled = false;  // aborted because its run was cancelled
  size_t write_lane = 0;       // which writes lane carries its rows (by thread)
  std::string progress;        // streamed text not yet written as task.progress
  bool progress_sent = false;  // some of its progress went out in a write batch
  int progress_attempt = 1;    // provider attempt the buffered deltas belong to
  std::vector<store::TaskEvent> events;  // tool calls, verdicts, ... not yet written
  TaskSpans spans;                       // claim, upload and completion spans (task_trace.h)
};

std::string_view CompleteStateName(store::CompleteState state) {
  switch (state) {
    case store::CompleteState::kCompleted: return "completed";
    case store::CompleteState::kHeld: return "held";
    case store::CompleteState::kCancelled: return "cancelled";
    case store::CompleteState::kLeaseLost: return "lease_lost";
  }
  return "unknown";
}

// What a claim job hands back: the items, and the control snapshot when they need a newer one.
struct ClaimResult {
  std::vector<store::ClaimedItem> items;
  std::shared_ptr<const control::Snapshot> snapshot;  // null: the one held is recent enough
  int64_t started_ns = 0;  // the claim statement, for the items' claim spans
  int64_t ended_ns = 0;
};

// The most items one claim asks for: a claim of thousands holds its row locks and delays the
// first task's start for longer than a few claims in a row would.
constexpr int kMaxClaimBatch = 500;

// Write batches go out on this many lanes at once, a thread's tasks always on the same one: a
// task's events and progress stay ahead of its completion, and two lanes never wait for each
// other's row locks (runs and artifacts belong to one thread).
constexpr size_t kWriteLanes = 2;

// Finished tasks waiting for their write do not take a slot; at most this many (or
// `concurrency`, if more) may wait, so claims keep coming while a commit is in flight.
constexpr int kMaxWaitingWrites = 256;

// One writes lane and the batch it carries.
struct WriteLane {
  WriteLane(size_t index, const std::string& conninfo, boost::asio::io_context& io,
            const db::ConnectOptions& options)
      : lane("writes-" + std::to_string(index), conninfo, io.get_executor(), options),
        retry_timer(io) {}
  DbLane lane;
  store::TaskBatch batch;  // in flight on the lane, read by its job; changes only in OnWritten
  bool in_flight = false;
  bool retry_armed = false;
  int64_t batch_started_ns = 0;  // when the batch in flight was handed to the lane
  boost::asio::steady_timer retry_timer;
};

}  // namespace

class Worker::Impl : public RateGate {
 public:
  Impl(WorkerOptions options, bus::Bus* bus, objstore::ObjectStore* objects, otel::Exporter* tracer)
      : options_(std::move(options)),
        bus_(bus),
        objects_(objects),
        tracer_(tracer),
        worker_id_(NewUuid()),
        poll_timer_(io_),
        renew_timer_(io_),
        drain_timer_(io_),
        progress_timer_(io_),
        heartbeat_timer_(io_),
        tick_timer_(io_),
        uploads_(4),
        providers_(io_.get_executor(), options_.provider_settings),
        tools_(MakeToolRunner(io_.get_executor())),
        claims_("claims", options_.database_url, io_.get_executor(), options_.db_options),
        control_("control", options_.database_url, io_.get_executor(), options_.db_options),
        limits_("limits", options_.database_url, io_.get_executor(), options_.db_options) {
    for (size_t i = 0; i < kWriteLanes; ++i) {
      write_lanes_.push_back(
          std::make_unique<WriteLane>(i, options_.database_url, io_, options_.db_options));
    }
    stats_.tick_ms.store(SteadyMs(), std::memory_order_relaxed);
  }

  ~Impl() {
    StopLanes();
    uploads_.join();
  }

  void Run() {
    auto limit = providers::RaiseOpenFileLimit(static_cast<uint64_t>(options_.concurrency) * 2 + 256);
    if (!limit) spdlog::warn("{}", limit.error().message);
    if (bus_ != nullptr) Subscribe();
    spdlog::info("worker {} serving queues [{}] with concurrency {}", options_.name,
                 fmt::join(options_.queues, ","), options_.concurrency);
    ReloadSnapshot(0);
    Heartbeat();
    Tick();
    ArmPoll();
    ArmRenew();
    ArmProgress();
    ScheduleClaim();
    // A handler that throws is a bug; it is logged and the loop serves on (core/barrier.h).
    // The task it belonged to, if any, was failed by TaskRun's own barrier.
    RunGuarded("worker event loop", io_);
    subscriptions_.clear();
    // The lanes finish what was posted (a last write batch, a release) before they stop; then
    // the registry row is marked stopped on the control lane, the last job it runs.
    limits_.Stop();
    claims_.Stop();
    for (auto& w : write_lanes_) w->lane.Stop();
    control_.Call([id = worker_id_](db::Connection& conn) { return store::MarkWorkerStopped(conn, id); },
                  [](Status) {}, "mark worker stopped");
    control_.Stop();
    spdlog::info("worker {} stopped", options_.name);
  }

  // Wakeups, cancellations and control changes. Each payload is parsed by its typed parser
  // (bus/messages.h); one that does not parse is handed back to the bus, which counts and drops
  // it. Handlers run on nats.c threads and only post to the event loop.
  void Subscribe() {
    for (const auto& q : options_.queues) {
      auto sub = bus_->SubscribeMessages("synaps.wakeup." + q,
                                         [this](const bus::Message& m) { return OnWakeup(m); });
      if (sub) {
        subscriptions_.push_back(std::move(*sub));
      } else {
        spdlog::warn("wakeup subscription failed ({}); relying on polling", sub.error().message);
      }
    }
    // Cancellations arrive here at once; renewals catch any that are missed.
    auto runs = bus_->Subscribe(
        "synaps.run.*", [this](const std::string&, const std::string& payload) -> Status {
          ASSIGN_OR_RETURN(bus::RunMessage msg, bus::ParseRunMessage(payload));
          if (msg.type != "run.cancelled") return Ok();
          asio::post(io_, [this, run_id = std::move(msg.run_id)] { AbortRun(run_id); });
          return Ok();
        });
    if (runs) {
      subscriptions_.push_back(std::move(*runs));
    } else {
      spdlog::warn("run subscription failed ({}); renewals report cancellations",
                   runs.error().message);
    }
    // Control changes: reload the snapshot without a restart.
    auto ctrl = bus_->Subscribe(
        "synaps.ctrl.*", [this](const std::string&, const std::string& payload) -> Status {
          ASSIGN_OR_RETURN(bus::ControlMessage msg, bus::ParseControlMessage(payload));
          asio::post(io_, [this, version = msg.snapshot_version] { ReloadSnapshot(version); });
          return Ok();
        });
    if (ctrl) {
      subscriptions_.push_back(std::move(*ctrl));
    } else {
      spdlog::warn("control subscription failed ({}); claims check the snapshot version",
                   ctrl.error().message);
    }
  }

  // A wakeup: a claim soon. Its delay since publish is measured (provider_stats.h); the trace
  // of the submit that caused it, if any, is named in the debug line.
  Status OnWakeup(const bus::Message& m) {
    RETURN_IF_ERROR(bus::ParseWakeupMessage(m.payload));
    int64_t published = 0;
    std::string at = m.header(bus::kPublishedAtHeader);
    auto [end, ec] = std::from_chars(at.data(), at.data() + at.size(), published);
    if (ec == std::errc() && end == at.data() + at.size() && published > 0) {
      provider_stats_.RecordWakeup(static_cast<double>(otel::NowUnixNano() - published) / 1e9);
    }
    if (spdlog::should_log(spdlog::level::debug)) {
      auto trace = TraceContext::Parse(m.header("traceparent"));
      LogTraceScope log_trace(trace ? trace->trace_id : std::string());
      spdlog::debug("wakeup on {}", m.subject);
    }
    asio::post(io_, [this] { ScheduleClaim(); });
    return Ok();
  }

  void Stop() {
    asio::post(io_, [this] {
      if (stopping_) return;
      stopping_ = true;
      spdlog::info("worker draining {} in-flight tasks (up to {} s)", in_flight_.size(),
                   options_.drain_seconds);
      poll_timer_.cancel();
      drain_timer_.expires_after(std::chrono::seconds(options_.drain_seconds));
      drain_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        ReleaseUnfinished();
      });
      MaybeFinishDrain();
    });
  }

 private:
  void StopLanes() {
    limits_.Stop();
    claims_.Stop();
    for (auto& w : write_lanes_) w->lane.Stop();
    control_.Stop();
  }

  void Shutdown() {
    poll_timer_.cancel();
    renew_timer_.cancel();
    for (auto& w : write_lanes_) w->retry_timer.cancel();
    drain_timer_.cancel();
    progress_timer_.cancel();
    heartbeat_timer_.cancel();
    tick_timer_.cancel();
    io_.stop();
  }

  // Drained once nothing is running and nothing the worker owes PostgreSQL is still unwritten.
  void MaybeFinishDrain() {
    if (!stopping_ || !in_flight_.empty() || claim_in_flight_) return;
    for (const auto& w : write_lanes_) {
      if (w->in_flight) return;
    }
    Shutdown();
  }

  // Drain deadline: abort what is still running and hand the leases back at once. Tasks whose
  // completion is being written are left to it.
  void ReleaseUnfinished() {
    std::vector<store::LeaseRef> leases;
    for (auto& [id, f] : in_flight_) {
      if (f.writing) continue;
      if (f.run) f.run->Cancel();
      leases.push_back({id, f.item.lease_epoch});
    }
    in_flight_.clear();
    running_ = 0;
    pending_.clear();
    if (leases.empty()) {
      Shutdown();
      return;
    }
    control_.Call(
        [leases, worker = options_.name](db::Connection& conn) {
          return store::ReleaseLeases(conn, leases, worker);
        },
        [this, count = leases.size()](Result<int> n) {
          if (n) {
            spdlog::warn("drain timeout: released {} unfinished tasks for other workers", *n);
          } else {
            spdlog::warn("drain timeout: could not release {} tasks ({}); their leases will expire",
                         count, n.error().message);
          }
          Shutdown();
        }, "release unfinished leases");
  }

  void Heartbeat() {
    if (!heartbeat_in_flight_) {
      heartbeat_in_flight_ = true;
      store::WorkerInfo info{.id = worker_id_,
                             .name = options_.name,
                             .pod = options_.pod,
                             .namespace_ = options_.pod_namespace,
                             .queues = options_.queues,
                             .version = SYNAPS_VERSION_STRING,
                             .concurrency = options_.concurrency};
      control_.Call(
          [info = std::move(info), do_register = !registered_,
           in_flight = static_cast<int>(in_flight_.size())](db::Connection& conn) -> Result<bool> {
            if (do_register) RETURN_IF_ERROR(store::RegisterWorker(conn, info));
            RETURN_IF_ERROR(store::HeartbeatWorker(conn, info.id, in_flight));
            return true;
          },
          [this](Result<bool> r) {
            heartbeat_in_flight_ = false;
            if (r) {
              registered_ = true;
            } else {
              spdlog::warn("heartbeat failed: {}", r.error().message);
            }
          }, "heartbeat");
    }
    heartbeat_timer_.expires_after(std::chrono::seconds(options_.heartbeat_seconds));
    heartbeat_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Heartbeat();
    });
  }

  // Loads the control snapshot (on the control lane) when `version` is newer than the one held
  // (0: whatever is current). Tasks already running keep the snapshot they started with.
  void ReloadSnapshot(int64_t version) {
    if (snapshot_ && version != 0 && version <= snapshot_->version) return;
    control_.Call(
        [](db::Connection& conn) { return store::LoadSnapshot(conn, std::nullopt); },
        [this](Result<control::Snapshot> r) {
          if (!r) {
            spdlog::warn("control snapshot load failed: {}", r.error().message);
            return;
          }
          AdoptSnapshot(std::make_shared<const control::Snapshot>(std::move(*r)));
        }, "snapshot reload");
  }

  void AdoptSnapshot(std::shared_ptr<const control::Snapshot> next) {
    if (!next || (snapshot_ && next->version <= snapshot_->version)) return;
    spdlog::info("control snapshot {} loaded ({} prompts, {} skills, {} tools, {} routes, {} "
                 "arbiters)",
                 next->version, next->prompts.size(), next->skills.size(), next->tools.size(),
                 next->routes.size(), next->arbiters.size());
    snapshot_ = std::move(next);
  }

  void ArmPoll() {
    poll_timer_.expires_after(std::chrono::milliseconds(options_.poll_interval_ms));
    poll_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      ScheduleClaim();
      ArmPoll();
    });
  }

  void ArmRenew() {
    int period_ms = std::max(200, options_.lease_seconds * 1000 / 3);
    renew_timer_.expires_after(std::chrono::milliseconds(period_ms));
    renew_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      RenewAll();
      ArmRenew();
    });
  }

  void ArmProgress() {
    progress_timer_.expires_after(std::chrono::milliseconds(options_.progress_interval_ms));
    progress_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      Flush();
      ArmProgress();
    });
  }

  void ScheduleClaim() {
    if (claim_scheduled_ || stopping_) return;
    claim_scheduled_ = true;
    asio::post(io_, [this] {
      claim_scheduled_ = false;
      ClaimNow();
    });
  }

  // Slots for new work: tasks still running count against the concurrency; finished tasks
  // waiting for their write do not (so the next claim overlaps the completion commit), up to
  // kMaxWaitingWrites of them.
  int FreeSlots() const {
    int total = static_cast<int>(in_flight_.size());
    int waiting_allowed = std::max(options_.concurrency, kMaxWaitingWrites);
    return std::min(options_.concurrency - running_,
                    options_.concurrency + waiting_allowed - total);
  }

  // Once a second on the event loop: what Stats() reports. A loop that stops ticking (wedged)
  // makes the liveness probe fail.
  void Tick() {
    stats_.tick_ms.store(SteadyMs(), std::memory_order_relaxed);
    stats_.in_flight.store(static_cast<int>(in_flight_.size()), std::memory_order_relaxed);
    stats_.draining.store(stopping_, std::memory_order_relaxed);
    stats_.snapshot_version.store(snapshot_ ? snapshot_->version : 0, std::memory_order_relaxed);
    tick_timer_.expires_after(std::chrono::seconds(1));
    tick_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Tick();
    });
  }

 public:
  WorkerStats Stats() const {
    WorkerStats out;
    out.loop_idle_ms = SteadyMs() - stats_.tick_ms.load(std::memory_order_relaxed);
    out.in_flight = stats_.in_flight.load(std::memory_order_relaxed);
    out.concurrency = options_.concurrency;
    out.draining = stats_.draining.load(std::memory_order_relaxed);
    out.database_ok = stats_.database_ok.load(std::memory_order_relaxed);
    out.snapshot_version = stats_.snapshot_version.load(std::memory_order_relaxed);
    out.claimed = stats_.claimed.load(std::memory_order_relaxed);
    out.completed = stats_.completed.load(std::memory_order_relaxed);
    out.held = stats_.held.load(std::memory_order_relaxed);
    out.failed = stats_.failed.load(std::memory_order_relaxed);
    if (bus_ != nullptr) out.bus_rejected = bus_->RejectedCounts();
    out.usage = usage_.Snapshot();
    out.provider_calls = provider_stats_.Calls();
    out.rate_limits = provider_stats_.RateLimits();
    out.wakeups = provider_stats_.Wakeups();
    if (tracer_ != nullptr) {
      out.spans_exported = tracer_->exported();
      out.spans_dropped = tracer_->dropped();
    }
    // The lanes' own watchdog numbers (atomics), so that a stuck loop cannot hide a stuck lane.
    int64_t reached = 0;
    auto look = [&](const DbLane& lane) {
      reached = std::max(reached, lane.last_reached_ms());
      if (int64_t busy = lane.busy_ms(); busy > out.lane_busy_ms) {
        out.lane_busy_ms = busy;
        out.busiest_lane = lane.name();
      }
    };
    look(claims_);
    look(control_);
    look(limits_);
    for (const auto& w : write_lanes_) look(w->lane);
    out.db_unreached_ms = reached == 0 ? -1 : DbLane::NowMs() - reached;
    return out;
  }

 private:
  static int64_t SteadyMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
        .count();
  }

  // One claim in flight at a time, on the claims lane, for up to the free slots. Small claims
  // wait until a few slots are free unless the worker is idle: a commit per freed slot would
  // cost more than it gains.
  void ClaimNow() {
    if (claim_in_flight_ || stopping_) return;
    int free = FreeSlots();
    int min_batch = std::clamp(options_.concurrency / 4, 1, 64);
    if (free <= 0 || (free < min_batch && !in_flight_.empty())) return;
    int limit = std::min(free, kMaxClaimBatch);
    claim_in_flight_ = true;
    int64_t held_version = snapshot_ ? snapshot_->version : -1;
    claims_.Call(
        [worker = options_.name, queues = options_.queues, limit,
         lease_seconds = options_.lease_seconds, fair = options_.fair_share,
         held_version](db::Connection& conn) -> Result<ClaimResult> {
          ClaimResult out;
          out.started_ns = otel::NowUnixNano();
          ASSIGN_OR_RETURN(out.items, store::ClaimQueueItems(conn, worker, queues, limit,
                                                             lease_seconds, std::nullopt, fair));
          out.ended_ns = otel::NowUnixNano();
          // A missed synaps.ctrl.* message costs at most this one claim.
          int64_t newest = 0;
          for (const auto& item : out.items) newest = std::max(newest, item.snapshot_version);
          if (!out.items.empty() && newest > held_version) {
            auto loaded = store::LoadSnapshot(conn, std::nullopt);
            if (loaded) {
              out.snapshot = std::make_shared<const control::Snapshot>(std::move(*loaded));
            } else {
              spdlog::warn("control snapshot load failed: {}", loaded.error().message);
            }
          }
          return out;
        },
        [this, limit](Result<ClaimResult> r) {
          claim_in_flight_ = false;
          stats_.database_ok.store(r.has_value(), std::memory_order_relaxed);
          if (!r) {
            spdlog::warn("claim failed: {}", r.error().message);  // the poll timer tries again
            MaybeFinishDrain();
            return;
          }
          AdoptSnapshot(std::move(r->snapshot));
          stats_.claimed.fetch_add(r->items.size(), std::memory_order_relaxed);
          for (auto& item : r->items) {
            TaskSpans spans(tracer_, item);
            spans.Claimed(r->started_ns, r->ended_ns, r->items.size());
            StartTask(std::move(item), std::move(spans));
          }
          // A full batch suggests more is waiting.
          if (static_cast<int>(r->items.size()) == limit) ScheduleClaim();
          MaybeFinishDrain();
        },
        "claim");
  }

  void StartTask(store::ClaimedItem item, TaskSpans spans) {
    int64_t id = item.item_id;
    const int64_t epoch = item.lease_epoch;
    spdlog::debug("claimed item {} (task {}, attempt {}, epoch {})", id, item.task_id,
                  item.attempt, epoch);
    if (auto old = in_flight_.find(id); old != in_flight_.end()) {
      // Our own earlier lease on this item expired (PostgreSQL was away past it) and the claim
      // handed the item back: that attempt is void, and nothing of it may carry over.
      spdlog::warn("item {} claimed again (epoch {} after {}); dropping the earlier attempt", id,
                   epoch, old->second.item.lease_epoch);
      if (old->second.run) old->second.run->Cancel();
      EraseInFlight(old);
    }
    InFlight& f = in_flight_[id];
    ++running_;
    f.started = Clock::now();
    f.item = item;
    f.spans = std::move(spans);
    f.write_lane = std::hash<std::string>{}(item.thread_id) % write_lanes_.size();
    f.run = std::make_unique<TaskRun>(
        std::move(item), snapshot_,
        TaskRunEnv{.executor = io_.get_executor(),
                   .providers = &providers_,
                   .tools = tools_.get(),
                   .default_route = options_.default_route,
                   .tracer = tracer_,
                   .provider_stats = &provider_stats_,
                   .rate_gate = this,
                   .rate_park_after_ms = options_.rate_park_after_ms},
        [this, id, epoch](const providers::ChatDelta& d) { OnDelta(id, epoch, d); },
        [this, id, epoch](std::string type, json data) {
          OnTaskEvent(id, epoch, std::move(type), std::move(data));
        },
        [this, id, epoch](Result<TaskOutcome> r) { OnAnswer(id, epoch, std::move(r)); });
    asio::post(io_, [this, id, epoch] {
      auto it = in_flight_.find(id);
      if (it != in_flight_.end() && it->second.item.lease_epoch == epoch) it->second.run->Start();
    });
  }

  // Whether a task in in_flight_ takes a slot: it has neither its answer nor a failure.
  static bool Running(const InFlight& f) { return !f.finished && !f.failing; }

  void EraseInFlight(std::map<int64_t, InFlight>::iterator it) {
    if (Running(it->second)) --running_;
    in_flight_.erase(it);
  }

  void EraseInFlight(int64_t id) {
    if (auto it = in_flight_.find(id); it != in_flight_.end()) EraseInFlight(it);
  }

  // Sets `flag` (finished: its answer came; failing: its failure is being recorded), which
  // frees the task's slot if it held one.
  void EndRunning(InFlight& f, bool InFlight::*flag) {
    if (Running(f)) --running_;
    f.*flag = true;
  }

  InFlight* Find(int64_t id, int64_t epoch) {
    auto it = in_flight_.find(id);
    if (it == in_flight_.end() || it->second.item.lease_epoch != epoch) return nullptr;
    return &it->second;
  }

  void OnDelta(int64_t id, int64_t epoch, const providers::ChatDelta& d) {
    InFlight* f = Find(id, epoch);
    if (f == nullptr) return;
    if (d.attempt != f->progress_attempt) {
      // A retried stream starts over: what was buffered from the failed attempt is void.
      f->progress.clear();
      f->progress_attempt = d.attempt;
    }
    f->progress += d.text;
    unwritten_.insert(id);
    if (f->progress.size() >= options_.progress_bytes) ScheduleFlush();
  }

  // A ledger event of the agent loop or the arbiters (tool.called, arbiter.verdict, ...):
  // buffered and written with the next batch, always before the task's completion.
  void OnTaskEvent(int64_t id, int64_t epoch, std::string type, json data) {
    InFlight* f = Find(id, epoch);
    if (f == nullptr) return;
    f->events.push_back({{id, epoch}, std::move(type), std::move(data)});
    unwritten_.insert(id);
  }

  void AbortRun(const std::string& run_id) {
    for (auto& [id, f] : in_flight_) {
      if (f.item.run_id != run_id || f.run_cancelled) continue;
      spdlog::info("aborting task {} (item {}): run {} was cancelled", f.item.task_id, id, run_id);
      f.run_cancelled = true;
      if (f.run) f.run->Cancel();
    }
  }

  void OnAnswer(int64_t id, int64_t epoch, Result<TaskOutcome> r) {
    InFlight* f = Find(id, epoch);
    if (f == nullptr) return;  // abandoned
    if (!r) {
      if (r.error().code == ErrorCode::kCancelled) {
        if (f->run_cancelled) {
          // Tells the database we let go, which removes the cancelled item at once.
          FailTask(id, r.error(), /*retryable=*/false);
          return;
        }
        EraseInFlight(id);
        MaybeFinishDrain();
        ScheduleClaim();
        return;
      }
      FailTask(id, r.error(), r.error().retryable());
      return;
    }
    if (r->released) {
      // Back in the queue until its rate-limit slot (the database let go of the lease).
      spdlog::debug("task {} (item {}) waits in the queue for its route's rate limit",
                    f->item.task_id, id);
      EraseInFlight(id);
      MaybeFinishDrain();
      ScheduleClaim();
      return;
    }
    EndRunning(*f, &InFlight::finished);
    ScheduleClaim();  // its slot is free; the claim overlaps the upload and the write
    store::Completion c;
    c.lease = {f->item.item_id, f->item.lease_epoch};
    c.output = std::move(r->output);
    c.hold = r->hold;
    std::string text = std::move(r->text);
    if (text.size() < options_.answer_artifact_min_bytes) {
      // A short answer stays in the task's output (c.output.text): no file, no artifact rows.
      OnUploaded(id, epoch, Ok(), std::move(c));
      return;
    }
    // Upload off the event loop; the completion follows once the bytes are stored, so no row
    // ever points at a missing object.
    asio::post(uploads_, [this, id, epoch, text = std::move(text), c = std::move(c)]() mutable {
      const int64_t started = otel::NowUnixNano();
      // The pool thread's barrier: an upload that throws fails its task, not the process.
      Status put = Guarded("upload of item " + std::to_string(id), [&]() -> Status {
        std::string sha = Sha256Hex(text);
        std::string key = objstore::ContentKey(sha);
        RETURN_IF_ERROR(objects_->Put(key, text, "text/markdown"));
        c.artifacts.push_back({"answer.md", "text/markdown", key,
                               static_cast<int64_t>(text.size()), sha});
        return Ok();
      });
      const int64_t ended = otel::NowUnixNano();
      asio::post(io_, [this, id, epoch, put, c = std::move(c), started, ended,
                       bytes = text.size()]() mutable {
        if (InFlight* f = Find(id, epoch)) f->spans.Uploaded(started, ended, bytes, put);
        OnUploaded(id, epoch, put, std::move(c));
      });
    });
  }

  void OnUploaded(int64_t id, int64_t epoch, const Status& put, store::Completion c) {
    if (Find(id, epoch) == nullptr) return;  // abandoned
    if (!put) {
      // Storage trouble is transient as far as we can tell: try the task again later.
      FailTask(id, put.error(), /*retryable=*/true);
      return;
    }
    pending_.push_back(std::move(c));
    ScheduleFlush();
  }

  void ScheduleFlush() {
    if (flush_scheduled_) return;
    flush_scheduled_ = true;
    asio::post(io_, [this] {
      flush_scheduled_ = false;
      Flush();
    });
  }

  // Writes everything buffered — task events and progress of every task, then the pending
  // completions — as one batch per writes lane: one round trip and one commit each. One batch
  // is in flight per lane; what arrives meanwhile goes into the next, so batches grow with the
  // commit latency. A failed batch is put back and retried (the leases are renewed meanwhile,
  // or expire and the work is redone elsewhere). The deltas of an answer that is complete wait
  // for its completion's batch (while it is stored); one that arrived whole — none of its
  // progress written before that batch — writes no task.progress: its text is in the
  // completion (the task's output and its artifact), and a ledger row fewer is a few hundred
  // bytes of write-ahead log fewer per task (issue #13).
  void Flush() {
    for (size_t i = 0; i < write_lanes_.size(); ++i) FlushLane(i);
  }

  size_t WriteLaneOf(int64_t item_id) const {
    auto it = in_flight_.find(item_id);
    return it == in_flight_.end() ? 0 : it->second.write_lane;
  }

  void FlushLane(size_t index) {
    WriteLane& w = *write_lanes_[index];
    if (w.in_flight || w.retry_armed) return;
    store::TaskBatch batch;
    TakeCompletions(index, batch);
    std::set<int64_t> completing;
    for (const auto& c : batch.completions) completing.insert(c.lease.item_id);
    // Only the tasks with something buffered, in item order (not every task in flight: at
    // 10,000 slots that walk was a few percent of the worker's time).
    for (auto it = unwritten_.begin(); it != unwritten_.end();) {
      auto found = in_flight_.find(*it);
      if (found != in_flight_.end() && found->second.write_lane != index) {
        ++it;
        continue;
      }
      bool keep = found != in_flight_.end() &&
                  TakeBuffered(found->first, found->second, completing.contains(*it), batch);
      it = keep ? std::next(it) : unwritten_.erase(it);
    }
    if (batch.events.empty() && batch.progress.empty() && batch.completions.empty()) return;
    for (const auto& c : batch.completions) {
      if (InFlight* f = Find(c.lease.item_id, c.lease.lease_epoch)) f->writing = true;
    }
    w.in_flight = true;
    w.batch_started_ns = otel::NowUnixNano();
    w.batch = std::move(batch);
    w.lane.Call(
        [batch = &w.batch](db::Connection& conn) { return store::WriteTaskBatch(conn, *batch); },
        [this, index](Result<std::vector<store::CompleteState>> r) {
          OnWritten(index, std::move(r));
        },
        "write batch");
  }

  // Moves the events and progress buffered for task `id` into `batch`; returns true when some
  // stay buffered (a whole answer's text waits for its completion).
  bool TakeBuffered(int64_t id, InFlight& f, bool completes, store::TaskBatch& batch) {
    for (auto& e : f.events) batch.events.push_back(std::move(e));
    f.events.clear();
    if (f.progress.empty()) return false;
    if (f.finished && !completes) return true;  // whole, being stored: waits for its completion
    if (!f.progress_sent && completes) {
      f.progress.clear();  // arrived whole: the completion carries it
      return false;
    }
    // PostgreSQL's text refuses NUL (a model may stream "\u0000") and invalid UTF-8.
    batch.progress.push_back({{id, f.item.lease_epoch}, ValidUtf8(f.progress)});
    f.progress.clear();
    f.progress_sent = true;
    return false;
  }

  // Moves the pending completions of writes lane `index` into `batch` (a completion that must
  // be written alone goes alone); the others stay pending.
  void TakeCompletions(size_t index, store::TaskBatch& batch) {
    std::vector<store::Completion> other_lanes;
    bool solo = false;  // a completion that must be written alone is in the batch
    for (auto& c : pending_) {
      bool mine = WriteLaneOf(c.lease.item_id) == index;
      bool alone = solo_.contains(c.lease.item_id);
      if (mine && !solo && (!alone || batch.completions.empty())) {
        solo = alone;
        batch.completions.push_back(std::move(c));
      } else {
        other_lanes.push_back(std::move(c));
      }
    }
    pending_ = std::move(other_lanes);
  }

  void OnWritten(size_t index, Result<std::vector<store::CompleteState>> result) {
    WriteLane& w = *write_lanes_[index];
    w.in_flight = false;
    store::TaskBatch batch = std::move(w.batch);
    w.batch = {};
    RecordCompletionSpans(batch, result, w.batch_started_ns);
    if (!result) {
      spdlog::warn("writing {} completions, {} progress chunks and {} events failed: {}",
                   batch.completions.size(), batch.progress.size(), batch.events.size(),
                   result.error().message);
      if (result.error().code == ErrorCode::kInvalidArgument ||
          result.error().code == ErrorCode::kAlreadyExists) {
        SetAsideRefused(batch, result.error());
      }
      Requeue(std::move(batch));
      w.retry_armed = true;
      w.retry_timer.expires_after(std::chrono::milliseconds(500));
      w.retry_timer.async_wait([this, index](const boost::system::error_code& ec) {
        write_lanes_[index]->retry_armed = false;
        if (!ec) FlushLane(index);
      });
      return;
    }
    for (size_t i = 0; i < batch.completions.size(); ++i) {
      const store::LeaseRef& lease = batch.completions[i].lease;
      InFlight* done = Find(lease.item_id, lease.lease_epoch);
      LogTraceScope log_trace(done != nullptr ? done->spans.trace_id() : std::string());
      switch ((*result)[i]) {
        case store::CompleteState::kLeaseLost:
          spdlog::warn("completion of item {} refused: lease epoch {} is stale; result discarded",
                       lease.item_id, lease.lease_epoch);
          break;
        case store::CompleteState::kHeld:
          spdlog::info("task of item {} is awaiting approval", lease.item_id);
          stats_.held.fetch_add(1, std::memory_order_relaxed);
          break;
        case store::CompleteState::kCancelled:
          spdlog::info("completion of item {} discarded: its run was cancelled", lease.item_id);
          break;
        case store::CompleteState::kCompleted:
          stats_.completed.fetch_add(1, std::memory_order_relaxed);
          if (InFlight* f = Find(lease.item_id, lease.lease_epoch); f != nullptr) {
            usage_.Add(f->item.tenant_id, batch.completions[i].output);
          }
          break;
      }
      solo_.erase(lease.item_id);
      if (Find(lease.item_id, lease.lease_epoch) != nullptr) EraseInFlight(lease.item_id);
    }
    MaybeFinishDrain();
    ScheduleClaim();
    if (!pending_.empty()) ScheduleFlush();
  }

  // One synaps.complete span per completion of a written (or failed) batch (task_trace.h).
  void RecordCompletionSpans(const store::TaskBatch& batch,
                             const Result<std::vector<store::CompleteState>>& result,
                             int64_t started_ns) {
    if (tracer_ == nullptr) return;
    const int64_t ended_ns = otel::NowUnixNano();
    Status written = result ? Ok() : Status(std::unexpected(result.error()));
    for (size_t i = 0; i < batch.completions.size(); ++i) {
      const store::LeaseRef& lease = batch.completions[i].lease;
      InFlight* f = Find(lease.item_id, lease.lease_epoch);
      if (f == nullptr) continue;
      std::string_view state = "failed";
      if (result && i < result->size()) state = CompleteStateName((*result)[i]);
      f->spans.Completed(started_ns, ended_ns, batch.completions.size(), state, written);
    }
  }

  // Puts a batch that could not be written back in front of what was buffered since, for the
  // tasks still held under the same lease.
  // PostgreSQL refused a value in the batch (a data error, not an outage) or a row it would add
  // exists already (SQLSTATE 23505: e.g. an artifact version or ledger seq another writer took):
  // the same batch would fail forever and stall the lane for every tenant. Events and progress
  // are records of the way, not the result: they are dropped first. A batch of completions alone
  // is then written one completion at a time, and a completion refused on its own fails its
  // task, saying why: for good when a value was refused, with a retry (while attempts remain)
  // when a row existed, as another attempt may find the numbers moved on.
  void SetAsideRefused(store::TaskBatch& batch, const Error& error) {
    if (!batch.events.empty() || !batch.progress.empty()) {
      spdlog::error("dropping {} task events and {} progress chunks that PostgreSQL refused: {}",
                    batch.events.size(), batch.progress.size(), error.message);
      batch.events.clear();
      batch.progress.clear();
      return;
    }
    if (batch.completions.size() > 1) {
      for (const auto& c : batch.completions) solo_.insert(c.lease.item_id);
      return;
    }
    for (const auto& c : batch.completions) {
      solo_.erase(c.lease.item_id);
      if (InFlight* f = Find(c.lease.item_id, c.lease.lease_epoch)) {
        f->writing = false;
        FailTask(c.lease.item_id,
                 Error{error.code, "the task's result could not be stored: " + error.message, {}},
                 /*retryable=*/error.code == ErrorCode::kAlreadyExists);
      }
    }
    batch.completions.clear();
  }

  void Requeue(store::TaskBatch batch) {
    for (auto& e : std::views::reverse(batch.events)) {
      if (InFlight* f = Find(e.lease.item_id, e.lease.lease_epoch)) {
        unwritten_.insert(e.lease.item_id);
        f->events.insert(f->events.begin(), std::move(e));
      }
    }
    for (auto& c : batch.progress) {
      if (InFlight* f = Find(c.lease.item_id, c.lease.lease_epoch)) {
        f->progress.insert(0, c.text);
        unwritten_.insert(c.lease.item_id);
      }
    }
    std::vector<store::Completion> kept;
    for (auto& c : batch.completions) {
      if (InFlight* f = Find(c.lease.item_id, c.lease.lease_epoch)) {
        f->writing = false;
        kept.push_back(std::move(c));
      }
    }
    for (auto& c : pending_) kept.push_back(std::move(c));
    pending_ = std::move(kept);
  }

  // Records a failed attempt on the control lane; the task keeps its place in in_flight_ (so
  // drain waits for it) until the database answered.
  void FailTask(int64_t id, const Error& error, bool retryable) {
    auto it = in_flight_.find(id);
    if (it == in_flight_.end() || it->second.failing) return;
    InFlight& f = it->second;
    EndRunning(f, &InFlight::failing);
    // Its tool calls and verdicts come first: those still buffered are written with the failure,
    // and the failure goes on the task's writes lane, behind any batch already carrying its
    // earlier events (a lane runs its jobs in order; the fence would drop them after a fail).
    std::vector<store::TaskEvent> events = std::move(f.events);
    f.events.clear();
    store::LeaseRef lease{f.item.item_id, f.item.lease_epoch};
    // Text not yet written (a whole answer's deltas wait for its completion, which is not coming
    // now: its upload failed) goes into this attempt's ledger before the failure, so the
    // attempt's story keeps what the model answered.
    std::vector<store::ProgressChunk> progress;
    if (!f.progress.empty()) progress.push_back({lease, ValidUtf8(f.progress)});
    f.progress.clear();
    // Messages may quote what a provider or a tool sent: made valid UTF-8, or dumping the row
    // would throw.
    json err = {{"code", std::string(ErrorCodeName(error.code))},
                {"message", ValidUtf8(error.message)}};
    if (!error.field.empty()) err["field"] = error.field;
    write_lanes_[f.write_lane]->lane.Call(
        [lease, err, retryable, backoff = options_.backoff, events = std::move(events),
         progress = std::move(progress)](db::Connection& conn) -> Result<store::FailState> {
          if (!events.empty()) {
            auto n = store::AppendTaskEvents(conn, events);
            if (!n)
              spdlog::warn("task events of item {} not written: {}", lease.item_id,
                           n.error().message);
          }
          if (!progress.empty()) {
            auto n = store::AppendProgress(conn, progress);
            if (!n)
              spdlog::warn("answer text of item {} not written: {}", lease.item_id,
                           n.error().message);
          }
          return store::FailQueueItem(conn, lease, err, retryable, backoff);
        },
        [this, lease, task_id = f.item.task_id, attempt = f.item.attempt, message = error.message,
         trace_id = f.spans.trace_id()](Result<store::FailState> r) {
          LogTraceScope log_trace(trace_id);
          if (!r) {
            // Not recorded: the lease expires and the task is tried again.
            spdlog::warn("fail of item {} failed: {}", lease.item_id, r.error().message);
          } else if (*r == store::FailState::kLeaseLost) {
            spdlog::warn("failure of item {} not recorded: lease epoch {} is stale", lease.item_id,
                         lease.lease_epoch);
          } else if (*r == store::FailState::kCancelled) {
            spdlog::info("item {} released: its run was cancelled", lease.item_id);
          } else {
            stats_.failed.fetch_add(1, std::memory_order_relaxed);
            spdlog::info("task {} attempt {} failed ({}): {}", task_id, attempt,
                         *r == store::FailState::kRetryScheduled ? "retry scheduled"
                                                                 : "dead-lettered",
                         message);
          }
          if (Find(lease.item_id, lease.lease_epoch) != nullptr) EraseInFlight(lease.item_id);
          MaybeFinishDrain();
          ScheduleClaim();
        },
        "record failure");
  }

  // RateGate (worker/rate_gate.h), on the limits lane: a slow limiter statement delays only
  // the calls waiting for slots, never renewals or completions.
  void Acquire(store::RateAsk ask, Done done) override {
    limits_.Call([ask](db::Connection& conn) { return store::AcquireRate(conn, ask); },
                 [this, route = ask.route, done = std::move(done)](Result<store::RateAdmission> r) {
                   if (r && r->wait_ms > 0) {
                     provider_stats_.RecordRateWait(route, r->parked ? "queued" : "held",
                                                    static_cast<double>(r->wait_ms) / 1000.0);
                   }
                   done(std::move(r));
                 },
                 "rate limit");
  }

  void Block(const std::string& route, std::chrono::milliseconds wait) override {
    provider_stats_.RecordRateBlock(route);
    spdlog::info("route {}: the provider asked to wait {} ms (429); every worker waits", route,
                 wait.count());
    limits_.Call([route, ms = wait.count()](
                     db::Connection& conn) { return store::BlockRate(conn, route, ms); },
                 [route](Status s) {
                   if (!s)
                     spdlog::warn("route {}: Retry-After not shared: {}", route, s.error().message);
                 },
                 "rate block");
  }

  void Settle(const std::string& route, int64_t tokens_per_minute, int64_t delta) override {
    limits_.Call(
        [route, tokens_per_minute, delta](db::Connection& conn) {
          return store::SettleRate(conn, route, tokens_per_minute, delta);
        },
        [](Status) {}, "rate settle");
  }

  // Renews every lease held, finished tasks included (their completion needs it), in one
  // statement on the control lane.
  void RenewAll() {
    if (in_flight_.empty() || renew_in_flight_) return;
    std::vector<store::LeaseRef> leases;
    leases.reserve(in_flight_.size());
    for (const auto& [id, f] : in_flight_) leases.push_back({id, f.item.lease_epoch});
    renew_in_flight_ = true;
    control_.Call(
        [leases, lease_seconds = options_.lease_seconds](db::Connection& conn) {
          return store::RenewLeases(conn, leases, lease_seconds);
        },
        [this, leases](Result<std::vector<store::RenewOutcome>> outcomes) {
          renew_in_flight_ = false;
          if (!outcomes) {
            spdlog::warn("renew failed: {}", outcomes.error().message);
            return;
          }
          for (size_t i = 0; i < outcomes->size() && i < leases.size(); ++i) {
            const auto& o = (*outcomes)[i];
            if (o.state == store::RenewState::kOk) continue;
            InFlight* f = Find(leases[i].item_id, leases[i].lease_epoch);
            // A completion or failure in flight may have ended the lease itself; its own answer
            // says what happened.
            if (f == nullptr || f->writing || f->failing) continue;
            if (o.state == store::RenewState::kCancelled) {
              // The notice on synaps.run.<id> was missed; the renewal removed the item.
              spdlog::info("aborting task {} (item {}): run {} was cancelled (seen on renewal)",
                           f->item.task_id, o.item_id, f->item.run_id);
            } else {
              spdlog::warn("abandoning task {} (item {}): lease lost to another worker",
                           f->item.task_id, o.item_id);
            }
            f->run->Cancel();  // its answer, if any, is dropped with it
            std::erase_if(pending_, [&](const store::Completion& c) {
              return c.lease.item_id == o.item_id;
            });
            EraseInFlight(o.item_id);
          }
          MaybeFinishDrain();
          ScheduleClaim();
        }, "renew leases");
  }

  const WorkerOptions options_;
  bus::Bus* const bus_;
  objstore::ObjectStore* const objects_;
  otel::Exporter* const tracer_;  // span export of task attempts; null: off
  const std::string worker_id_;
  asio::io_context io_;
  asio::steady_timer poll_timer_;
  asio::steady_timer renew_timer_;
  asio::steady_timer drain_timer_;
  asio::steady_timer progress_timer_;
  asio::steady_timer heartbeat_timer_;
  asio::steady_timer tick_timer_;
  // Written on the event loop (and the counters from lane results, also on it), read by Stats()
  // from any thread.
  struct AtomicStats {
    std::atomic<int64_t> tick_ms{0};
    std::atomic<int> in_flight{0};
    std::atomic<bool> draining{false};
    std::atomic<bool> database_ok{false};
    std::atomic<int64_t> snapshot_version{0};
    std::atomic<uint64_t> claimed{0}, completed{0}, held{0}, failed{0};
  } stats_;
  UsageTally usage_;  // added to on the event loop, read by Stats()
  ProviderStats provider_stats_;  // model calls (event loop) and wakeups (bus threads)
  asio::thread_pool uploads_;               // object-store writes, off the event loop
  providers::ProviderRegistry providers_;   // on io_; destroyed before io_
  std::unique_ptr<ToolRunner> tools_;       // the agents' tools, on io_
  // PostgreSQL, off the event loop: claims (and the snapshot loads they need); the write
  // batches (events, progress, completions); renewals, failures, heartbeats, releases and
  // snapshot reloads. Results come back to io_. Stopped before io_ is destroyed.
  DbLane claims_;
  DbLane control_;
  DbLane limits_;  // rate-limit slots of routes with limits (RateGate)
  std::vector<std::unique_ptr<WriteLane>> write_lanes_;  // kWriteLanes, by thread
  std::shared_ptr<const control::Snapshot> snapshot_;  // the control registry, as last loaded
  bool registered_ = false;
  std::vector<std::unique_ptr<bus::Subscription>> subscriptions_;
  std::map<int64_t, InFlight> in_flight_;   // by queue item id
  // How many of in_flight_ are Running(): kept as they change (StartTask, EraseInFlight and
  // EndRunning), since FreeSlots() is asked on every claim and 10,000 tasks are a long walk.
  int running_ = 0;
  // Items of in_flight_ that may have events or progress buffered (a superset: FlushLane drops
  // the ids it finds gone or empty).
  std::set<int64_t> unwritten_;
  std::vector<store::Completion> pending_;  // answered and stored, not yet in a write batch
  std::set<int64_t> solo_;  // items whose completion is written alone (SetAsideRefused)
  bool claim_scheduled_ = false;
  bool claim_in_flight_ = false;
  bool flush_scheduled_ = false;
  bool renew_in_flight_ = false;
  bool heartbeat_in_flight_ = false;
  bool stopping_ = false;
};

Worker::Worker(WorkerOptions options, bus::Bus* bus, objstore::ObjectStore* objects,
               otel::Exporter* tracer)
    : impl_(std::make_unique<Impl>(std::move(options), bus, objects, tracer)) {}
Worker::~Worker() = default;
void Worker::Run() { impl_->Run(); }
void Worker::Stop() { impl_->Stop(); }
WorkerStats Worker::Stats() const { return impl_->Stats(); }

}  // namespace synaps::worker
