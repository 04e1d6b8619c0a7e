#include "worker/worker.h"

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <map>
#include <spdlog/spdlog.h>

#include "core/config.h"
#include "core/ids.h"
#include "db/connection.h"
#include "store/control_store.h"
#include "store/worker_store.h"
#include "worker/task_run.h"

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
  o.concurrency = static_cast<int>(config::EnvInt("SYNAPS_WORKER_CONCURRENCY", 16, 1, 100000));
  o.lease_seconds = static_cast<int>(config::EnvInt("SYNAPS_LEASE_SECONDS", 30, 1, 86400));
  o.poll_interval_ms =
      static_cast<int>(config::EnvInt("SYNAPS_POLL_INTERVAL_MS", 1000, 10, 3600000));
  o.drain_seconds = static_cast<int>(config::EnvInt("SYNAPS_DRAIN_SECONDS", 30, 0, 86400));
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
  return o;
}

namespace {

struct InFlight {
  store::ClaimedItem item;
  std::unique_ptr<TaskRun> run;
  Clock::time_point started;
  bool finished = false;       // answer received; uploading or waiting in the completion batch
  bool run_cancelled = false;  // aborted because its run was cancelled
  std::string progress;        // streamed text not yet written as task.progress
  int progress_attempt = 1;    // provider attempt the buffered deltas belong to
};

}  // namespace

class Worker::Impl {
 public:
  Impl(WorkerOptions options, bus::Bus* bus, objstore::ObjectStore* objects)
      : options_(std::move(options)),
        bus_(bus),
        objects_(objects),
        worker_id_(NewUuid()),
        poll_timer_(io_),
        renew_timer_(io_),
        retry_timer_(io_),
        drain_timer_(io_),
        progress_timer_(io_),
        heartbeat_timer_(io_),
        uploads_(4),
        providers_(io_.get_executor(), options_.provider_settings) {}

  ~Impl() { uploads_.join(); }

  void Run() {
    auto limit = providers::RaiseOpenFileLimit(static_cast<uint64_t>(options_.concurrency) * 2 + 256);
    if (!limit) spdlog::warn("{}", limit.error().message);
    if (bus_ != nullptr) {
      for (const auto& q : options_.queues) {
        auto sub = bus_->Subscribe("synaps.wakeup." + q, [this](const std::string&,
                                                                 const std::string&) {
          asio::post(io_, [this] { ScheduleClaim(); });
        });
        if (sub) {
          subscriptions_.push_back(std::move(*sub));
        } else {
          spdlog::warn("wakeup subscription failed ({}); relying on polling",
                       sub.error().message);
        }
      }
      // Cancellations arrive here at once; renewals catch any that are missed.
      auto runs = bus_->Subscribe("synaps.run.*", [this](const std::string&,
                                                         const std::string& payload) {
        json msg = json::parse(payload, nullptr, false);
        if (!msg.is_object() || msg.value("type", "") != "run.cancelled") return;
        std::string run_id = msg.value("runId", "");
        asio::post(io_, [this, run_id] { AbortRun(run_id); });
      });
      if (runs) subscriptions_.push_back(std::move(*runs));
      // Control changes: reload the snapshot without a restart.
      auto ctrl = bus_->Subscribe("synaps.ctrl.*", [this](const std::string&,
                                                          const std::string& payload) {
        json msg = json::parse(payload, nullptr, false);
        int64_t version = msg.is_object() ? msg.value("snapshotVersion", int64_t{0}) : 0;
        asio::post(io_, [this, version] { ReloadSnapshot(version); });
      });
      if (ctrl) subscriptions_.push_back(std::move(*ctrl));
    }
    ReloadSnapshot(0);
    spdlog::info("worker {} serving queues [{}] with concurrency {}", options_.name,
                 fmt::join(options_.queues, ","), options_.concurrency);
    Heartbeat();
    ArmPoll();
    ArmRenew();
    ArmProgress();
    ScheduleClaim();
    io_.run();
    subscriptions_.clear();
    if (db::Connection* db = Db()) (void)store::MarkWorkerStopped(*db, worker_id_);
    spdlog::info("worker {} stopped", options_.name);
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
        Shutdown();
      });
      MaybeFinishDrain();
    });
  }

 private:
  void Shutdown() {
    poll_timer_.cancel();
    renew_timer_.cancel();
    retry_timer_.cancel();
    drain_timer_.cancel();
    progress_timer_.cancel();
    heartbeat_timer_.cancel();
    io_.stop();
  }

  void MaybeFinishDrain() {
    if (stopping_ && in_flight_.empty()) {
      FlushProgress();
      Shutdown();
    }
  }

  // Drain deadline: abort what is still running and hand the leases back at once.
  void ReleaseUnfinished() {
    std::vector<store::LeaseRef> leases;
    for (auto& [id, f] : in_flight_) {
      if (f.run) f.run->Cancel();
      leases.push_back({id, f.item.lease_epoch});
    }
    if (leases.empty()) return;
    db::Connection* db = Db();
    auto n = db ? store::ReleaseLeases(*db, leases, options_.name)
                : Result<int>(Fail(ErrorCode::kUnavailable, "PostgreSQL unavailable"));
    if (n) {
      spdlog::warn("drain timeout: released {} unfinished tasks for other workers", *n);
    } else {
      spdlog::warn("drain timeout: could not release {} tasks ({}); their leases will expire",
                   leases.size(), n.error().message);
    }
    in_flight_.clear();
    pending_.clear();
  }

  // Returns a live connection, reconnecting if needed; nullptr while PostgreSQL is away.
  db::Connection* Db() {
    if (conn_.healthy()) return &conn_;
    auto c = db::Connection::Connect(options_.database_url, std::chrono::seconds(3));
    if (!c) {
      if (!db_down_logged_) spdlog::warn("PostgreSQL unavailable: {}", c.error().message);
      db_down_logged_ = true;
      return nullptr;
    }
    if (db_down_logged_) spdlog::info("PostgreSQL connection restored");
    db_down_logged_ = false;
    conn_ = std::move(*c);
    registered_ = false;
    return &conn_;
  }

  // Called after any DB error: a broken connection is dropped so the next Db() reconnects.
  void NoteDbError(const Error& e, const char* what) {
    spdlog::warn("{} failed: {}", what, e.message);
    if (e.code == ErrorCode::kUnavailable && !conn_.healthy()) conn_ = db::Connection();
  }

  void Heartbeat() {
    if (db::Connection* db = Db()) {
      Status s = Ok();
      if (!registered_) {
        s = store::RegisterWorker(*db, {.id = worker_id_,
                                        .name = options_.name,
                                        .pod = options_.pod,
                                        .namespace_ = options_.pod_namespace,
                                        .queues = options_.queues,
                                        .version = SYNAPS_VERSION_STRING,
                                        .concurrency = options_.concurrency});
        registered_ = s.has_value();
      }
      if (s) s = store::HeartbeatWorker(*db, worker_id_, static_cast<int>(in_flight_.size()));
      if (!s) NoteDbError(s.error(), "heartbeat");
    }
    heartbeat_timer_.expires_after(std::chrono::seconds(options_.heartbeat_seconds));
    heartbeat_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Heartbeat();
    });
  }

  // Loads the control snapshot when `version` is newer than the one held (0: whatever is
  // current). Tasks already running keep the snapshot they started with.
  void ReloadSnapshot(int64_t version) {
    if (snapshot_ && version != 0 && version <= snapshot_->version) return;
    db::Connection* db = Db();
    if (db == nullptr) return;
    auto loaded = store::LoadSnapshot(*db, std::nullopt);
    if (!loaded) {
      NoteDbError(loaded.error(), "control snapshot load");
      return;
    }
    auto next = std::make_shared<const control::Snapshot>(std::move(*loaded));
    if (snapshot_ && next->version == snapshot_->version) return;
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
      FlushProgress();
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

  void ClaimNow() {
    int free = options_.concurrency - static_cast<int>(in_flight_.size());
    if (free <= 0 || stopping_) return;
    db::Connection* db = Db();
    if (db == nullptr) return;  // the poll timer tries again
    auto claimed =
        store::ClaimQueueItems(*db, options_.name, options_.queues, free, options_.lease_seconds);
    if (!claimed) {
      NoteDbError(claimed.error(), "claim");
      return;
    }
    // A missed synaps.ctrl.* message costs at most this one claim.
    int64_t newest = 0;
    for (const auto& item : *claimed) newest = std::max(newest, item.snapshot_version);
    if (!snapshot_ || newest > snapshot_->version) ReloadSnapshot(newest);
    for (auto& item : *claimed) StartTask(std::move(item));
    // A full batch suggests more is waiting.
    if (static_cast<int>(claimed->size()) == free) ScheduleClaim();
  }

  void StartTask(store::ClaimedItem item) {
    int64_t id = item.item_id;
    const int64_t epoch = item.lease_epoch;
    spdlog::debug("claimed item {} (task {}, attempt {}, epoch {})", id, item.task_id,
                  item.attempt, epoch);
    InFlight& f = in_flight_[id];
    f.started = Clock::now();
    f.item = item;
    f.run = std::make_unique<TaskRun>(
        std::move(item), snapshot_, options_.default_route, &providers_,
        [this, id, epoch](const providers::ChatDelta& d) { OnDelta(id, epoch, d); },
        [this, id, epoch](Result<TaskOutcome> r) { OnAnswer(id, epoch, std::move(r)); });
    asio::post(io_, [this, id, epoch] {
      auto it = in_flight_.find(id);
      if (it != in_flight_.end() && it->second.item.lease_epoch == epoch) it->second.run->Start();
    });
  }

  void OnDelta(int64_t id, int64_t epoch, const providers::ChatDelta& d) {
    auto it = in_flight_.find(id);
    if (it == in_flight_.end() || it->second.item.lease_epoch != epoch) return;
    InFlight& f = it->second;
    if (d.attempt != f.progress_attempt) {
      // A retried stream starts over: what was buffered from the failed attempt is void.
      f.progress.clear();
      f.progress_attempt = d.attempt;
    }
    f.progress += d.text;
    if (f.progress.size() >= options_.progress_bytes) FlushProgress();
  }

  // Writes buffered deltas of every task as task.progress events, in one round trip.
  void FlushProgress() {
    std::vector<store::ProgressChunk> chunks;
    for (auto& [id, f] : in_flight_) {
      if (f.progress.empty()) continue;
      chunks.push_back({{id, f.item.lease_epoch}, std::move(f.progress)});
      f.progress.clear();
    }
    if (chunks.empty()) return;
    db::Connection* db = Db();
    if (db == nullptr) return;  // progress is best effort; the answer itself is not
    auto n = store::AppendProgress(*db, chunks);
    if (!n) NoteDbError(n.error(), "progress");
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
    auto it = in_flight_.find(id);
    if (it == in_flight_.end() || it->second.item.lease_epoch != epoch) return;  // abandoned
    InFlight& f = it->second;
    if (!r) {
      if (r.error().code == ErrorCode::kCancelled) {
        if (f.run_cancelled) {
          // Tells the database we let go, which removes the cancelled item at once.
          FailTask(id, r.error(), /*retryable=*/false);
          return;
        }
        in_flight_.erase(it);
        MaybeFinishDrain();
        return;
      }
      FailTask(id, r.error(), r.error().retryable());
      return;
    }
    FlushProgress();
    f.finished = true;
    store::Completion c;
    c.lease = {f.item.item_id, f.item.lease_epoch};
    c.output = std::move(r->output);
    // Upload off the event loop; the completion follows once the bytes are stored, so no row
    // ever points at a missing object.
    std::string text = std::move(r->text);
    asio::post(uploads_, [this, id, epoch, text = std::move(text), c = std::move(c)]() mutable {
      std::string sha = Sha256Hex(text);
      std::string key = objstore::ContentKey(sha);
      Status put = objects_->Put(key, text, "text/markdown");
      if (put) {
        c.artifacts.push_back({"answer.md", "text/markdown", key,
                               static_cast<int64_t>(text.size()), sha});
      }
      asio::post(io_, [this, id, epoch, put, c = std::move(c)]() mutable {
        OnUploaded(id, epoch, put, std::move(c));
      });
    });
  }

  void OnUploaded(int64_t id, int64_t epoch, const Status& put, store::Completion c) {
    auto it = in_flight_.find(id);
    if (it == in_flight_.end() || it->second.item.lease_epoch != epoch) return;  // abandoned
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

  // Writes all pending completions in one round trip; on a DB error keeps them and retries
  // (the leases are renewed meanwhile, or expire and the work is redone elsewhere).
  void Flush() {
    if (pending_.empty()) return;
    db::Connection* db = Db();
    auto result = db ? store::CompleteQueueItems(*db, pending_)
                     : Result<std::vector<store::CompleteState>>(
                           Fail(ErrorCode::kUnavailable, "PostgreSQL unavailable"));
    if (!result) {
      NoteDbError(result.error(), "complete");
      RetryFlushLater();
      return;
    }
    for (size_t i = 0; i < pending_.size(); ++i) {
      int64_t id = pending_[i].lease.item_id;
      if ((*result)[i] == store::CompleteState::kLeaseLost) {
        spdlog::warn("completion of item {} refused: lease epoch {} is stale; result discarded",
                     id, pending_[i].lease.lease_epoch);
      } else if ((*result)[i] == store::CompleteState::kCancelled) {
        spdlog::info("completion of item {} discarded: its run was cancelled", id);
      }
      in_flight_.erase(id);
    }
    pending_.clear();
    MaybeFinishDrain();
    ScheduleClaim();
  }

  void RetryFlushLater() {
    retry_timer_.expires_after(std::chrono::milliseconds(500));
    retry_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Flush();
    });
  }

  void FailTask(int64_t id, const Error& error, bool retryable) {
    auto it = in_flight_.find(id);
    if (it == in_flight_.end()) return;
    store::LeaseRef lease{it->second.item.item_id, it->second.item.lease_epoch};
    json err = {{"code", std::string(ErrorCodeName(error.code))}, {"message", error.message}};
    if (!error.field.empty()) err["field"] = error.field;
    db::Connection* db = Db();
    if (db != nullptr) {
      auto r = store::FailQueueItem(*db, lease, err, retryable, options_.backoff);
      if (!r) {
        NoteDbError(r.error(), "fail");
      } else if (*r == store::FailState::kLeaseLost) {
        spdlog::warn("failure of item {} not recorded: lease epoch {} is stale", id,
                     lease.lease_epoch);
      } else if (*r == store::FailState::kCancelled) {
        spdlog::info("item {} released: its run was cancelled", id);
      } else {
        spdlog::info("task {} attempt {} failed ({}): {}", it->second.item.task_id,
                     it->second.item.attempt,
                     *r == store::FailState::kRetryScheduled ? "retry scheduled" : "dead-lettered",
                     error.message);
      }
    }
    // If the failure could not be recorded, the lease expires and the task is tried again.
    in_flight_.erase(it);
    MaybeFinishDrain();
    ScheduleClaim();
  }

  void RenewAll() {
    if (in_flight_.empty()) return;
    std::vector<store::LeaseRef> leases;
    for (const auto& [id, f] : in_flight_) leases.push_back({id, f.item.lease_epoch});
    db::Connection* db = Db();
    if (db == nullptr) return;
    auto outcomes = store::RenewLeases(*db, leases, options_.lease_seconds);
    if (!outcomes) {
      NoteDbError(outcomes.error(), "renew");
      return;
    }
    for (const auto& o : *outcomes) {
      if (o.state == store::RenewState::kOk) continue;
      auto it = in_flight_.find(o.item_id);
      if (it == in_flight_.end()) continue;
      spdlog::warn("abandoning task {} (item {}): {}", it->second.item.task_id, o.item_id,
                   o.state == store::RenewState::kCancelled ? "run cancelled"
                                                            : "lease lost to another worker");
      it->second.run->Cancel();  // its answer, if any, is dropped with it
      std::erase_if(pending_, [&](const store::Completion& c) {
        return c.lease.item_id == o.item_id;
      });
      in_flight_.erase(it);
    }
    MaybeFinishDrain();
  }

  const WorkerOptions options_;
  bus::Bus* const bus_;
  objstore::ObjectStore* const objects_;
  const std::string worker_id_;
  asio::io_context io_;
  asio::steady_timer poll_timer_;
  asio::steady_timer renew_timer_;
  asio::steady_timer retry_timer_;
  asio::steady_timer drain_timer_;
  asio::steady_timer progress_timer_;
  asio::steady_timer heartbeat_timer_;
  asio::thread_pool uploads_;               // object-store writes, off the event loop
  providers::ProviderRegistry providers_;   // on io_; destroyed before io_
  std::shared_ptr<const control::Snapshot> snapshot_;  // the control registry, as last loaded
  db::Connection conn_;
  bool db_down_logged_ = false;
  bool registered_ = false;
  std::vector<std::unique_ptr<bus::Subscription>> subscriptions_;
  std::map<int64_t, InFlight> in_flight_;   // by queue item id
  std::vector<store::Completion> pending_;  // answered and stored, not yet written
  bool claim_scheduled_ = false;
  bool flush_scheduled_ = false;
  bool stopping_ = false;
};

Worker::Worker(WorkerOptions options, bus::Bus* bus, objstore::ObjectStore* objects)
    : impl_(std::make_unique<Impl>(std::move(options), bus, objects)) {}
Worker::~Worker() = default;
void Worker::Run() { impl_->Run(); }
void Worker::Stop() { impl_->Stop(); }

}  // namespace synaps::worker
