#include "api/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace synaps::api {

namespace {
const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}  // namespace

ApiMetrics::ApiMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  requests_ = &prometheus::BuildCounter()
                   .Name("synaps_http_requests_total")
                   .Help("HTTP requests by route pattern, method and status.")
                   .Register(*registry_);
  latency_ = &prometheus::BuildHistogram()
                  .Name("synaps_http_request_duration_seconds")
                  .Help("HTTP request latency by route pattern.")
                  .Register(*registry_);
  claim_latency_ = &prometheus::BuildHistogram()
                        .Name("synaps_queue_claim_duration_seconds")
                        .Help("Latency of claims made through POST /v1/queue/claim.")
                        .Register(*registry_)
                        .Add({}, kLatencyBuckets);
  queue_items_ = &prometheus::BuildGauge()
                      .Name("synaps_queue_items")
                      .Help("Queue items by state.")
                      .Register(*registry_);
  outbox_lag_ = &prometheus::BuildGauge()
                     .Name("synaps_outbox_lag_seconds")
                     .Help("Age of the oldest unpublished outbox row.")
                     .Register(*registry_)
                     .Add({});
  oldest_ready_age_ = &prometheus::BuildGauge()
                           .Name("synaps_queue_oldest_ready_age_seconds")
                           .Help("How long the oldest queue item ready to run has waited "
                                 "(0 when none waits).")
                           .Register(*registry_)
                           .Add({});
  runs_ = &prometheus::BuildGauge()
               .Name("synaps_runs")
               .Help("Runs by status (outcome for finished runs).")
               .Register(*registry_);
  concurrency_ = &prometheus::BuildGauge()
                      .Name("synaps_concurrency_tasks")
                      .Help(
                          "Tasks under each concurrency limit (a `concurrency` control item), "
                          "running or waiting for a slot.")
                      .Register(*registry_);
  schedule_fired_ = &prometheus::BuildCounter()
                         .Name("synaps_schedule_fired_total")
                         .Help("Schedule fire times that started a run, by schedule and origin "
                               "(schedule, trigger, backfill).")
                         .Register(*registry_);
  schedule_skipped_ = &prometheus::BuildCounter()
                           .Name("synaps_schedule_skipped_total")
                           .Help("Schedule fire times not run, by schedule and reason.")
                           .Register(*registry_);
  schedule_lag_ = &prometheus::BuildHistogram()
                       .Name("synaps_schedule_lag_seconds")
                       .Help("Seconds from a schedule's fire time to the start of its run.")
                       .Register(*registry_);
  bus_rejected_ = &prometheus::BuildCounter()
                       .Name("synaps_bus_messages_rejected_total")
                       .Help(
                           "Bus messages dropped as malformed, mistyped, binary or oversized (or "
                           "whose handler failed), by subject family.")
                       .Register(*registry_);
  spans_ = &prometheus::BuildCounter()
                .Name("synaps_otel_spans_total")
                .Help("Spans exported over OTLP, and spans dropped (queue full or the collector "
                      "failing), by outcome.")
                .Register(*registry_);
  refused_ = &prometheus::BuildCounter()
                  .Name("synaps_api_refused_total")
                  .Help("Requests and connections refused by an abuse limit, by reason.")
                  .Register(*registry_);
  authentications_ = &prometheus::BuildCounter()
                          .Name("synaps_api_authentications_total")
                          .Help(
                              "Bearer tokens checked, by how (database, negative_cache, jwt, "
                              "admin).")
                          .Register(*registry_);
  connections_ = &prometheus::BuildGauge()
                      .Name("synaps_api_connections")
                      .Help("Open HTTP connections.")
                      .Register(*registry_)
                      .Add({});
  event_streams_ = &prometheus::BuildGauge()
                        .Name("synaps_api_event_streams")
                        .Help("Open event streams (SSE).")
                        .Register(*registry_)
                        .Add({});
  accept_errors_ = &prometheus::BuildCounter()
                        .Name("synaps_api_accept_errors_total")
                        .Help("Failed accept() calls (EMFILE, ...); each backs off.")
                        .Register(*registry_)
                        .Add({});
  feed_queries_ = &prometheus::BuildCounter()
                       .Name("synaps_api_event_feed_queries_total")
                       .Help(
                           "PostgreSQL queries made by shared run feeds (one per run, not per "
                           "follower).")
                       .Register(*registry_)
                       .Add({});
}

ApiMetrics::~ApiMetrics() = default;

void ApiMetrics::HttpRefused(std::string_view reason) {
  refused_->Add({{"reason", std::string(reason)}}).Increment();
}
void ApiMetrics::HttpConnectionsOpen(int64_t open) { connections_->Set(static_cast<double>(open)); }
void ApiMetrics::HttpAcceptFailed() { accept_errors_->Increment(); }
void ApiMetrics::CountAuthentication(std::string_view via) {
  authentications_->Add({{"via", std::string(via)}}).Increment();
}
void ApiMetrics::SetEventStreams(int64_t open) { event_streams_->Set(static_cast<double>(open)); }
void ApiMetrics::CountFeedQuery() { feed_queries_->Increment(); }

void ApiMetrics::ObserveRequest(const std::string& method, const std::string& route, int status,
                                double seconds) {
  requests_->Add({{"route", route}, {"method", method}, {"status", std::to_string(status)}})
      .Increment();
  latency_->Add({{"route", route}}, kLatencyBuckets).Observe(seconds);
}

void ApiMetrics::ObserveClaim(double seconds) { claim_latency_->Observe(seconds); }

void ApiMetrics::SetDatabaseGauges(const nlohmann::json& depth, double lag,
                                   const nlohmann::json& runs) {
  for (auto it = depth.begin(); it != depth.end(); ++it) {
    queue_items_->Add({{"state", it.key()}}).Set(it.value().get<double>());
  }
  outbox_lag_->Set(lag);
  for (auto it = runs.begin(); it != runs.end(); ++it) {
    runs_->Add({{"status", it.key()}}).Set(it.value().get<double>());
  }
}

void ApiMetrics::SetConcurrencyGauges(const nlohmann::json& by_limit) {
  std::lock_guard lock(concurrency_mu_);
  std::set<std::string> now;
  for (auto it = by_limit.begin(); it != by_limit.end(); ++it) {
    now.insert(it.key());
    for (const char* state : {"running", "waiting"}) {
      concurrency_->Add({{"limit", it.key()}, {"state", state}}).Set(it.value().value(state, 0.0));
    }
  }
  for (const auto& gone : concurrency_limits_) {
    if (now.contains(gone)) continue;
    for (const char* state : {"running", "waiting"}) {
      concurrency_->Remove(&concurrency_->Add({{"limit", gone}, {"state", state}}));
    }
  }
  concurrency_limits_ = std::move(now);
}

void ApiMetrics::SetOldestReadyAge(double seconds) { oldest_ready_age_->Set(seconds); }

void ApiMetrics::ObserveScheduleFired(const std::string& schedule, const std::string& origin,
                                      std::optional<double> lag_seconds) {
  schedule_fired_->Add({{"schedule", schedule}, {"origin", origin}}).Increment();
  if (lag_seconds) {
    static const prometheus::Histogram::BucketBoundaries kLagBuckets = {
        0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600};
    schedule_lag_->Add({{"schedule", schedule}}, kLagBuckets).Observe(*lag_seconds);
  }
}

void ApiMetrics::ObserveScheduleSkipped(const std::string& schedule, const std::string& reason) {
  schedule_skipped_->Add({{"schedule", schedule}, {"reason", reason}}).Increment();
}

void ApiMetrics::SetBusRejected(const std::map<std::string, uint64_t>& totals) {
  std::lock_guard lock(bus_rejected_mu_);
  for (const auto& [family, total] : totals) {
    prometheus::Counter& c = bus_rejected_->Add({{"subject", family}});
    double delta = static_cast<double>(total) - c.Value();
    if (delta > 0) c.Increment(delta);
  }
}

void ApiMetrics::SetSpanCounts(uint64_t exported, uint64_t dropped) {
  std::lock_guard lock(bus_rejected_mu_);
  for (const auto& [outcome, total] : {std::pair{"exported", exported}, {"dropped", dropped}}) {
    prometheus::Counter& c = spans_->Add({{"outcome", outcome}});
    double delta = static_cast<double>(total) - c.Value();
    if (delta > 0) c.Increment(delta);
  }
}

std::string ApiMetrics::Render() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace synaps::api
