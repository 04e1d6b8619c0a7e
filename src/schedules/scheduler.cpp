#include "schedules/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "api/metrics.h"
#include "api/outbox_relay.h"
#include "api/request_validation.h"
#include "store/control_store.h"

namespace synaps::schedules {

using control::Overlap;
using nlohmann::json;
using std::chrono::seconds;

namespace {

int64_t Seconds(TimePoint t) { return t.time_since_epoch().count(); }
TimePoint FromSeconds(int64_t s) { return TimePoint(seconds(s)); }

// The submit request a fire time makes: the spec's command, with the schedule named in its
// metadata (the worker sees it with the task).
Result<store::SubmitRequest> CommandFor(const control::Schedule& s) {
  json body = s.command;
  if (!body.contains("metadata")) body["metadata"] = json::object();
  if (body["metadata"].is_object()) {
    body["metadata"]["schedule"] = {{"name", s.name}, {"version", s.version}};
  }
  auto req = api::ParseSubmitCommand(body);
  if (!req) {
    const std::string field = "spec.command." + req.error().field;
    return Fail(ErrorCode::kInvalidArgument, "spec.command." + req.error().message, field);
  }
  req->tenant_id = s.tenant;
  req->actor = "schedule:" + s.name;
  return req;
}

// The label of a skip reason in metrics: overlap, catchup or refused.
std::string ReasonLabel(const std::optional<std::string>& reason) {
  if (!reason) return "unknown";
  if (reason->starts_with("the command was refused")) return "refused";
  return reason->substr(0, std::min(reason->find(':'), reason->size()));
}

}  // namespace

Scheduler::Scheduler(SchedulerOptions options, db::Pool* pool, api::OutboxRelay* relay,
                     api::ApiMetrics* metrics)
    : options_(options),
      pool_(pool),
      relay_(relay),
      metrics_(metrics),
      thread_("schedules: tick", std::chrono::milliseconds(options.tick_ms), [this] {
        if (Status s = Tick(); !s) spdlog::warn("schedules: tick failed: {}", s.error().message);
      }) {}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() { thread_.Start(); }

void Scheduler::Stop() { thread_.Stop(); }

Status Scheduler::Tick() {
  ASSIGN_OR_RETURN(auto conn, pool_->Acquire());
  ASSIGN_OR_RETURN(store::ScheduleList list, store::LoadSchedules(*conn));
  for (const auto& row : list.schedules) {
    if (Status s = TickOne(*conn, row, list.now_ms); !s) {
      spdlog::warn("schedules: {}: {}", row.name, s.error().message);
      if (s.error().code == ErrorCode::kUnavailable) return s;
    }
  }
  return Ok();
}

Status Scheduler::TickOne(db::Connection& conn, const store::ScheduleRow& row, int64_t now_ms) {
  auto parsed = control::ParseSchedule(row.name, row.spec);
  if (!parsed) {
    return Fail(parsed.error().code, "stored spec no longer valid: " + parsed.error().message);
  }
  control::Schedule s = std::move(*parsed);
  s.version = row.version;

  ASSIGN_OR_RETURN(store::DrainResult drain, store::DrainSchedule(conn, s.name, s.version));
  if (drain.started) Report(s, *drain.started);
  if (s.pause_on_failure && !s.paused && drain.failed) return PauseAfterFailure(conn, row);
  if (s.paused) return Ok();

  // Fire times after the last one decided, after the current version was written, and inside
  // the catch-up window; the ones before the window are missed for good (recorded once).
  const int64_t now_s = now_ms / 1000;
  const int64_t decided = std::max(row.version_at, row.cursor.value_or(row.version_at));
  const int64_t window_start = now_s - s.catchup_window.count();
  if (decided < window_start) RETURN_IF_ERROR(RecordMissed(conn, s, decided, window_start));
  const int64_t lower = std::max(decided, window_start);
  std::vector<TimePoint> due =
      s.times.Between(FromSeconds(lower), FromSeconds(now_s), options_.max_per_tick);
  // Jitter delays each fire time by a fixed amount; later ones wait behind it.
  auto waiting = std::find_if(due.begin(), due.end(), [&](TimePoint t) {
    return Seconds(t) * 1000 + JitterFor(s.name, t, s.jitter).count() > now_ms;
  });
  due.erase(waiting, due.end());
  if (due.empty()) return Ok();

  // Several due at once is a catch-up. bufferOne and cancelOther keep only the latest of them
  // (what they would end up running anyway); skip runs the first and skips the rest as
  // overlapping; bufferAll and allow run them all.
  if (due.size() > 1 && (s.overlap == Overlap::kBufferOne || s.overlap == Overlap::kCancelOther)) {
    ASSIGN_OR_RETURN(auto latest, Fire(conn, s, Seconds(due.back()), "schedule", s.overlap));
    Report(s, latest);
    for (size_t i = 0; i + 1 < due.size(); ++i) {
      ASSIGN_OR_RETURN(auto skipped,
                       Fire(conn, s, Seconds(due[i]), "schedule", s.overlap,
                            "catchup: " + std::string(control::OverlapName(s.overlap)) +
                                " runs only the latest missed fire time"));
      Report(s, skipped);
    }
    return Ok();
  }
  for (TimePoint t : due) {
    ASSIGN_OR_RETURN(auto fired, Fire(conn, s, Seconds(t), "schedule", s.overlap));
    Report(s, fired);
  }
  return Ok();
}

Status Scheduler::RecordMissed(db::Connection& conn, const control::Schedule& s, int64_t after,
                               int64_t until) {
  constexpr size_t kCountCap = 100'000;  // an exact count up to here; a bound on the work
  std::vector<TimePoint> missed =
      s.times.Between(FromSeconds(after), FromSeconds(until), kCountCap);
  if (missed.empty()) return Ok();
  const std::string count =
      (missed.size() >= kCountCap ? "at least " : "") + std::to_string(missed.size());
  const std::string reason = "catchup: missed " + count + " fire time(s) from " +
                             FormatTime(missed.front()) + " to " + FormatTime(missed.back()) +
                             ", older than the catch-up window (" +
                             std::to_string(s.catchup_window.count()) + "s)";
  ASSIGN_OR_RETURN(auto recorded,
                   Fire(conn, s, Seconds(missed.back()), "schedule", s.overlap, reason));
  if (recorded.outcome != "duplicate") spdlog::warn("schedules: {}: {}", s.name, reason);
  Report(s, recorded);
  return Ok();
}

Result<store::FireResult> Scheduler::Fire(db::Connection& conn, const control::Schedule& s,
                                          std::optional<int64_t> fire_time,
                                          const std::string& origin, Overlap overlap,
                                          std::optional<std::string> skip_reason) {
  ASSIGN_OR_RETURN(store::SubmitRequest req, CommandFor(s));
  store::FireRequest fire{.schedule = s.name,
                          .fire_time = fire_time,
                          .version = s.version,
                          .origin = origin,
                          .overlap = std::string(control::OverlapName(overlap)),
                          .tenant = s.tenant,
                          .request_hash = req.request_hash,
                          .command = store::CommandJson(req),
                          .skip_reason = std::move(skip_reason)};
  return store::FireSchedule(conn, fire);
}

Status Scheduler::PauseAfterFailure(db::Connection& conn, const store::ScheduleRow& row) {
  json spec = row.spec;
  spec["paused"] = true;
  store::ControlActor who{
      "scheduler", "",
      "pauseOnFailure: a run of version " + std::to_string(row.version) + " failed"};
  ASSIGN_OR_RETURN(auto written, store::PutControlItem(conn, "schedules", row.name, spec, who));
  if (written.changed) {
    spdlog::warn("schedules: {} paused: {}", row.name, who.reason);
    if (relay_ != nullptr && written.outbox) relay_->Notify({*written.outbox});
  }
  return Ok();
}

void Scheduler::Report(const control::Schedule& s, const store::FireResult& fire) {
  if (relay_ != nullptr && !fire.outbox.empty()) relay_->Notify(fire.outbox);
  // cancelOther's cancellations wrote outbox rows the relay's sweep publishes: sweep now.
  if (relay_ != nullptr && !fire.cancelled.empty()) relay_->Wake();
  if (fire.outcome == "duplicate") return;
  spdlog::info("schedules: {} {} {} ({}){}", s.name, fire.fire_time, fire.outcome, fire.origin,
               fire.reason ? ": " + *fire.reason : "");
  if (metrics_ == nullptr) return;
  if (fire.outcome == "started") {
    std::optional<double> lag;
    if (fire.origin == "schedule") {
      if (auto t = ParseTime(fire.fire_time)) {
        auto now = std::chrono::system_clock::now();
        lag = std::chrono::duration<double>(now - *t).count();
      }
    }
    metrics_->ObserveScheduleFired(s.name, fire.origin, lag);
  } else if (fire.outcome == "skipped") {
    metrics_->ObserveScheduleSkipped(s.name, ReasonLabel(fire.reason));
  }
}

Result<control::Schedule> Scheduler::Load(db::Connection& conn, const std::string& name) {
  ASSIGN_OR_RETURN(store::ScheduleList list, store::LoadSchedules(conn, name));
  if (list.schedules.empty()) {
    return Fail(ErrorCode::kNotFound, "schedule " + name + " not found");
  }
  const auto& row = list.schedules.front();
  ASSIGN_OR_RETURN(control::Schedule s, control::ParseSchedule(row.name, row.spec));
  s.version = row.version;
  return s;
}

Result<store::FireResult> Scheduler::Trigger(const std::string& name,
                                             std::optional<Overlap> overlap) {
  ASSIGN_OR_RETURN(auto conn, pool_->Acquire());
  ASSIGN_OR_RETURN(control::Schedule s, Load(*conn, name));
  ASSIGN_OR_RETURN(auto fired,
                   Fire(*conn, s, std::nullopt, "trigger", overlap.value_or(s.overlap)));
  Report(s, fired);
  return fired;
}

Result<BackfillResult> Scheduler::Backfill(const std::string& name, TimePoint from, TimePoint to,
                                           std::optional<Overlap> overlap) {
  if (to <= from) return Fail(ErrorCode::kInvalidArgument, "to: must be after from", "to");
  ASSIGN_OR_RETURN(auto conn, pool_->Acquire());
  ASSIGN_OR_RETURN(control::Schedule s, Load(*conn, name));
  ASSIGN_OR_RETURN(store::ScheduleList now, store::LoadSchedules(*conn, name));
  if (Seconds(to) * 1000 > now.now_ms + 1000) {
    return Fail(ErrorCode::kInvalidArgument,
                "to: must not be in the future (fire times to come are the schedule's own)", "to");
  }
  // [from, to) with whole seconds is (from - 1 s, to - 1 s].
  std::vector<TimePoint> times =
      s.times.Between(from - seconds(1), to - seconds(1), kMaxBackfill + 1);
  if (times.size() > kMaxBackfill) {
    return Fail(ErrorCode::kInvalidArgument,
                "to: the range holds more than " + std::to_string(kMaxBackfill) +
                    " fire times; backfill it in parts",
                "to");
  }
  BackfillResult out;
  for (TimePoint t : times) {
    ASSIGN_OR_RETURN(auto fired,
                     Fire(*conn, s, Seconds(t), "backfill", overlap.value_or(s.overlap)));
    Report(s, fired);
    if (fired.outcome == "started") ++out.started;
    if (fired.outcome == "buffered") ++out.buffered;
    if (fired.outcome == "skipped") ++out.skipped;
    if (fired.outcome == "duplicate") ++out.duplicate;
    out.fires.push_back(std::move(fired));
  }
  return out;
}

}  // namespace synaps::schedules
