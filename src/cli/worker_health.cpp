#include "cli/worker_health.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <limits>
#include <nlohmann/json.hpp>

#include "api/router.h"
#include "core/config.h"

namespace synaps::cli {

using nlohmann::json;

class WorkerHealthServer::Impl {
 public:
  Impl(const worker::Worker& worker, const std::string& listen, int stall_seconds,
       int db_unready_seconds)
      : worker_(worker),
        stall_ms_(static_cast<int64_t>(stall_seconds) * 1000),
        unready_ms_(static_cast<int64_t>(db_unready_seconds) * 1000) {
    auto hp = config::ParseHostPort("SYNAPS_WORKER_LISTEN", listen);
    api::HttpServerOptions options{.host = hp.host,
                                   .port = hp.port,
                                   .io_threads = 1,
                                   .handler_threads = 1,
                                   .body_limit = 4096};
    registry_ = std::make_shared<prometheus::Registry>();
    auto gauge = [&](const char* name, const char* help) {
      return &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_).Add({});
    };
    in_flight_ = gauge("synaps_worker_in_flight", "Tasks claimed by this worker and not yet written.");
    concurrency_ = gauge("synaps_worker_concurrency", "Tasks this worker runs at once at most.");
    snapshot_ = gauge("synaps_worker_control_snapshot_version", "The control snapshot it holds.");
    idle_ = gauge("synaps_worker_loop_idle_seconds", "Since the event loop last ticked (about 1 s when healthy).");
    ready_ = gauge("synaps_worker_ready", "1 when PostgreSQL was reached within the readiness bound and it is not draining.");
    lane_busy_ = gauge("synaps_worker_db_lane_busy_seconds", "How long the longest-running DB lane job has been running.");
    unreached_ = gauge("synaps_worker_db_unreached_seconds", "Since a DB lane last reached PostgreSQL (-1: not yet).");
    tasks_ = &prometheus::BuildCounter()
                  .Name("synaps_worker_tasks_total")
                  .Help("Tasks by what happened to them in this process: claimed, completed, held, failed.")
                  .Register(*registry_);
    bus_rejected_ = &prometheus::BuildCounter()
                         .Name("synaps_bus_messages_rejected_total")
                         .Help(
                             "Bus messages dropped as malformed, mistyped, binary or oversized "
                             "(or whose handler failed), by subject family.")
                         .Register(*registry_);
    tokens_ = &prometheus::BuildCounter()
                   .Name("synaps_model_tokens_total")
                   .Help("Model tokens of the tasks this worker completed, by tenant, model and "
                         "type (input, output); at most 200 tenant-model pairs, then other.")
                   .Register(*registry_);
    cost_ = &prometheus::BuildCounter()
                 .Name("synaps_model_cost_usd_total")
                 .Help("Cost in USD (from the routes' pricing) of the tasks this worker "
                       "completed, by tenant and model; at most 200 pairs, then other.")
                 .Register(*registry_);
    spans_ = &prometheus::BuildCounter()
                  .Name("synaps_otel_spans_total")
                  .Help("Spans exported over OTLP, and spans dropped (queue full or the "
                        "collector failing), by outcome.")
                  .Register(*registry_);
    provider_requests_ = &prometheus::BuildCounter()
                              .Name("synaps_provider_requests_total")
                              .Help("Model calls by provider, model and outcome (ok, or the "
                                    "error's code); at most 100 provider-model pairs, then other.")
                              .Register(*registry_);
    rate_waits_ = &prometheus::BuildCounter()
                       .Name("synaps_rate_limit_waits_total")
                       .Help(
                           "Model calls that waited for their route's shared rate limit, by "
                           "route and mode (held: in place; queued: the task went back to the "
                           "queue until its slot); at most 100 routes, then other.")
                       .Register(*registry_);
    rate_wait_seconds_ = &prometheus::BuildCounter()
                              .Name("synaps_rate_limit_wait_seconds_total")
                              .Help(
                                  "Time the calls of synaps_rate_limit_waits_total waited, by "
                                  "route.")
                              .Register(*registry_);
    rate_retry_after_ = &prometheus::BuildCounter()
                             .Name("synaps_rate_limit_retry_after_total")
                             .Help(
                                 "Provider 429s with Retry-After that this worker shared with "
                                 "every worker using the route, by route.")
                             .Register(*registry_);
    server_ = std::make_unique<api::HttpServer>(
        options, [this](const api::HttpRequest& r) { return Handle(r); },
        [](int status, const std::string& code, const std::string& message) {
          return api::Router::ErrorResponse(status, code, message, "", "");
        });
  }

  Result<uint16_t> Start() { return server_->Start(); }
  void Stop() { server_->Stop(); }

 private:
  api::HttpResponse Handle(const api::HttpRequest& r) {
    std::string path = r.target.substr(0, r.target.find('?'));
    worker::WorkerStats s = worker_.Stats();
    if (r.method != "GET") {
      return api::Router::ErrorResponse(405, "method_not_allowed", "only GET is served here", "", "");
    }
    if (path == "/healthz") {
      bool loop_ok = s.loop_idle_ms < stall_ms_;
      bool lanes_ok = s.lane_busy_ms < stall_ms_;
      json body = {{"status", loop_ok && lanes_ok ? "ok" : "stalled"},
                   {"loopIdleMs", s.loop_idle_ms},
                   {"laneBusyMs", s.lane_busy_ms}};
      if (!lanes_ok) body["stuckLane"] = s.busiest_lane;
      return Json(loop_ok && lanes_ok ? 200 : 503, body);
    }
    if (path == "/readyz") {
      bool reached = DatabaseReached(s);
      bool ready = reached && !s.draining;
      return Json(ready ? 200 : 503, {{"status", ready ? "ready" : "not ready"},
                                      {"postgres", reached ? "ok" : "unreachable"},
                                      {"postgresUnreachedMs", s.db_unreached_ms},
                                      {"draining", s.draining},
                                      {"inFlight", s.in_flight}});
    }
    if (path == "/metrics") {
      std::lock_guard lock(mu_);  // counters move to the totals Stats() reports
      in_flight_->Set(s.in_flight);
      concurrency_->Set(s.concurrency);
      snapshot_->Set(static_cast<double>(s.snapshot_version));
      idle_->Set(static_cast<double>(s.loop_idle_ms) / 1000.0);
      ready_->Set(DatabaseReached(s) && !s.draining ? 1 : 0);
      lane_busy_->Set(static_cast<double>(s.lane_busy_ms) / 1000.0);
      unreached_->Set(s.db_unreached_ms < 0 ? -1.0 : static_cast<double>(s.db_unreached_ms) / 1000.0);
      Advance("claimed", s.claimed);
      Advance("completed", s.completed);
      Advance("held", s.held);
      Advance("failed", s.failed);
      for (const auto& [family, total] : s.bus_rejected) {
        AdvanceTo(bus_rejected_->Add({{"subject", family}}), static_cast<double>(total));
      }
      for (const auto& [key, t] : s.usage) {
        const auto& [tenant, model] = key;
        AdvanceTo(tokens_->Add({{"tenant", tenant}, {"model", model}, {"type", "input"}}),
                  static_cast<double>(t.prompt_tokens));
        AdvanceTo(tokens_->Add({{"tenant", tenant}, {"model", model}, {"type", "output"}}),
                  static_cast<double>(t.completion_tokens));
        AdvanceTo(cost_->Add({{"tenant", tenant}, {"model", model}}), t.cost_usd);
      }
      AdvanceTo(spans_->Add({{"outcome", "exported"}}), static_cast<double>(s.spans_exported));
      AdvanceTo(spans_->Add({{"outcome", "dropped"}}), static_cast<double>(s.spans_dropped));
      for (const auto& [key, series] : s.provider_calls) {
        for (const auto& [outcome, n] : series.outcomes) {
          AdvanceTo(provider_requests_->Add(
                        {{"provider", key.first}, {"model", key.second}, {"outcome", outcome}}),
                    static_cast<double>(n));
        }
      }
      for (const auto& [route, r] : s.rate_limits) {
        AdvanceTo(rate_waits_->Add({{"route", route}, {"mode", "held"}}),
                  static_cast<double>(r.held));
        AdvanceTo(rate_waits_->Add({{"route", route}, {"mode", "queued"}}),
                  static_cast<double>(r.queued));
        AdvanceTo(rate_wait_seconds_->Add({{"route", route}}), r.wait_seconds);
        AdvanceTo(rate_retry_after_->Add({{"route", route}}), static_cast<double>(r.retry_after));
      }
      std::vector<prometheus::MetricFamily> families = registry_->Collect();
      families.push_back(ProviderLatencyFamily(s));
      families.push_back(WakeupFamily(s));
      api::HttpResponse out;
      out.content_type = "text/plain; version=0.0.4";
      out.body = prometheus::TextSerializer().Serialize(families);
      return out;
    }
    return api::Router::ErrorResponse(404, "not_found", "no route " + path, "", "");
  }

  // Reached at least once, and within the bound: one failed statement or a lane replacing a
  // frozen connection does not take the worker out of service; PostgreSQL away for longer does.
  bool DatabaseReached(const worker::WorkerStats& s) const {
    return s.db_unreached_ms >= 0 && s.db_unreached_ms < unready_ms_;
  }

  // The worker keeps its histograms as counts (provider_stats.h); they are written out as
  // Prometheus histograms here, cumulative, with the +Inf bucket.
  static prometheus::ClientMetric Histogram(const worker::HistogramCounts& h,
                                            const std::vector<double>& bounds,
                                            std::vector<prometheus::ClientMetric::Label> labels) {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    m.histogram.sample_count = h.count;
    m.histogram.sample_sum = h.sum;
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds.size(); ++i) {
      cumulative += i < h.buckets.size() ? h.buckets[i] : 0;
      m.histogram.bucket.push_back(
          {.cumulative_count = cumulative,
           .upper_bound = i < bounds.size() ? bounds[i] : std::numeric_limits<double>::infinity()});
    }
    return m;
  }

  static prometheus::MetricFamily ProviderLatencyFamily(const worker::WorkerStats& s) {
    prometheus::MetricFamily f{.name = "synaps_provider_request_duration_seconds",
                               .help = "Model calls by provider and model: time from the request "
                                       "to the whole answer (a provider's retries inside).",
                               .type = prometheus::MetricType::Histogram,
                               .metric = {}};
    for (const auto& [key, series] : s.provider_calls) {
      f.metric.push_back(Histogram(series.latency, worker::ProviderLatencyBounds(),
                                   {{"model", key.second}, {"provider", key.first}}));
    }
    return f;
  }

  static prometheus::MetricFamily WakeupFamily(const worker::WorkerStats& s) {
    return {.name = "synaps_worker_wakeup_latency_seconds",
            .help = "Bus wakeups: from the publish (the publisher's clock) to arrival here.",
            .type = prometheus::MetricType::Histogram,
            .metric = {Histogram(s.wakeups, worker::WakeupLatencyBounds(), {})}};
  }

  void Advance(const std::string& outcome, uint64_t total) {
    AdvanceTo(tasks_->Add({{"outcome", outcome}}), static_cast<double>(total));
  }

  static void AdvanceTo(prometheus::Counter& c, double total) {
    double delta = total - c.Value();
    if (delta > 0) c.Increment(delta);
  }

  static api::HttpResponse Json(int status, const json& body) {
    api::HttpResponse out;
    out.status = status;
    out.body = body.dump();
    return out;
  }

  const worker::Worker& worker_;
  const int64_t stall_ms_;
  const int64_t unready_ms_;
  std::mutex mu_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* in_flight_;
  prometheus::Gauge* concurrency_;
  prometheus::Gauge* snapshot_;
  prometheus::Gauge* idle_;
  prometheus::Gauge* ready_;
  prometheus::Gauge* lane_busy_;
  prometheus::Gauge* unreached_;
  prometheus::Family<prometheus::Counter>* tasks_;
  prometheus::Family<prometheus::Counter>* bus_rejected_;
  prometheus::Family<prometheus::Counter>* tokens_;
  prometheus::Family<prometheus::Counter>* cost_;
  prometheus::Family<prometheus::Counter>* spans_;
  prometheus::Family<prometheus::Counter>* provider_requests_;
  prometheus::Family<prometheus::Counter>* rate_waits_;
  prometheus::Family<prometheus::Counter>* rate_wait_seconds_;
  prometheus::Family<prometheus::Counter>* rate_retry_after_;
  std::unique_ptr<api::HttpServer> server_;
};

WorkerHealthServer::WorkerHealthServer(const worker::Worker& worker, const std::string& listen,
                                       int stall_seconds, int db_unready_seconds)
    : impl_(std::make_unique<Impl>(worker, listen, stall_seconds, db_unready_seconds)) {}
WorkerHealthServer::~WorkerHealthServer() { impl_->Stop(); }
Result<uint16_t> WorkerHealthServer::Start() { return impl_->Start(); }
void WorkerHealthServer::Stop() { impl_->Stop(); }

}  // namespace synaps::cli
