// The API's Prometheus metrics (prometheus-cpp): request counts by route, method and status,
// request latency histograms by route, remote-claim latency, and gauges read from PostgreSQL at
// scrape time (queue depth by state, outbox lag, runs by status). Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "api/http_server.h"

namespace prometheus {
class Registry;
template <typename T> class Family;
class Counter;
class Histogram;
class Gauge;
}  // namespace prometheus

namespace synaps::api {

class ApiMetrics : public HttpServerObserver {
 public:
  ApiMetrics();
  ~ApiMetrics() override;

  // Abuse limits (docs/security.md): a request or connection refused by a limit, by reason
  // (rate_address, rate_principal, streams_per_principal, connections_total,
  // connections_per_address, unsafe_response_header) — synaps_api_refused_total.
  void HttpRefused(std::string_view reason) override;
  void HttpConnectionsOpen(int64_t open) override;  // synaps_api_connections
  void HttpAcceptFailed() override;                 // synaps_api_accept_errors_total
  // How a bearer token was checked: database (an API key lookup), negative_cache (a token
  // that failed recently, refused without a lookup), jwt, admin —
  // synaps_api_authentications_total{via}.
  void CountAuthentication(std::string_view via);
  void SetEventStreams(int64_t open);  // synaps_api_event_streams
  // One query of a shared run feed (synaps_api_event_feed_queries_total): followers of the
  // same run share one.
  void CountFeedQuery();

  void ObserveRequest(const std::string& method, const std::string& route, int status,
                      double seconds);
  void ObserveClaim(double seconds);
  // Sets the database-derived gauges: depth {"ready": n, ...}, lag seconds, runs {"status": n}.
  void SetDatabaseGauges(const nlohmann::json& queue_depth, double outbox_lag_seconds,
                         const nlohmann::json& runs_by_status);
  // synaps_concurrency_tasks{limit, state="running"|"waiting"} from store::ConcurrencyGauges;
  // a limit that no longer exists is dropped.
  void SetConcurrencyGauges(const nlohmann::json& by_limit);
  // synaps_queue_oldest_ready_age_seconds: how long the oldest item ready to run has waited.
  void SetOldestReadyAge(double seconds);
  // Schedules (docs/schedules.md): a fire time that started a run (with its lag, the seconds
  // from the fire time to the run's creation, for regular fire times), and one that was skipped
  // (reason: overlap, catchup, refused).
  void ObserveScheduleFired(const std::string& schedule, const std::string& origin,
                            std::optional<double> lag_seconds);
  void ObserveScheduleSkipped(const std::string& schedule, const std::string& reason);
  // Bus messages dropped since the start, by subject family (bus::Bus::RejectedCounts()):
  // synaps_bus_messages_rejected_total{subject}.
  void SetBusRejected(const std::map<std::string, uint64_t>& totals);
  // Spans sent to the OTLP collector and spans dropped (queue full or collector failing), since
  // the start: synaps_otel_spans_total{outcome="exported"|"dropped"}.
  void SetSpanCounts(uint64_t exported, uint64_t dropped);
  // The exposition text (format 0.0.4).
  std::string Render() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* latency_;
  prometheus::Histogram* claim_latency_;
  prometheus::Family<prometheus::Gauge>* queue_items_;
  prometheus::Gauge* outbox_lag_;
  prometheus::Gauge* oldest_ready_age_;
  prometheus::Family<prometheus::Gauge>* runs_;
  std::mutex concurrency_mu_;  // guards concurrency_limits_ (and the family's label sets)
  prometheus::Family<prometheus::Gauge>* concurrency_;
  std::set<std::string> concurrency_limits_;
  prometheus::Family<prometheus::Counter>* schedule_fired_;
  prometheus::Family<prometheus::Counter>* schedule_skipped_;
  prometheus::Family<prometheus::Histogram>* schedule_lag_;
  std::mutex bus_rejected_mu_;  // SetBusRejected reads and advances the counters
  prometheus::Family<prometheus::Counter>* bus_rejected_;
  prometheus::Family<prometheus::Counter>* spans_;  // also under bus_rejected_mu_
  prometheus::Family<prometheus::Counter>* refused_;
  prometheus::Family<prometheus::Counter>* authentications_;
  prometheus::Gauge* connections_;
  prometheus::Gauge* event_streams_;
  prometheus::Counter* accept_errors_;
  prometheus::Counter* feed_queries_;
};

}  // namespace synaps::api
