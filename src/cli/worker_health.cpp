#include "cli/worker_health.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <nlohmann/json.hpp>

#include "api/router.h"
#include "core/config.h"

namespace synaps::cli {

using nlohmann::json;

class WorkerHealthServer::Impl {
 public:
  Impl(const worker::Worker& worker, const std::string& listen, int stall_seconds)
      : worker_(worker), stall_ms_(static_cast<int64_t>(stall_seconds) * 1000) {
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
    ready_ = gauge("synaps_worker_ready", "1 when the last claim reached PostgreSQL and it is not draining.");
    tasks_ = &prometheus::BuildCounter()
                  .Name("synaps_worker_tasks_total")
                  .Help("Tasks by what happened to them in this process: claimed, completed, held, failed.")
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
      bool live = s.loop_idle_ms < stall_ms_;
      return Json(live ? 200 : 503, {{"status", live ? "ok" : "stalled"},
                                     {"loopIdleMs", s.loop_idle_ms}});
    }
    if (path == "/readyz") {
      bool ready = s.database_ok && !s.draining;
      return Json(ready ? 200 : 503, {{"status", ready ? "ready" : "not ready"},
                                      {"postgres", s.database_ok ? "ok" : "down"},
                                      {"draining", s.draining},
                                      {"inFlight", s.in_flight}});
    }
    if (path == "/metrics") {
      std::lock_guard lock(mu_);  // counters move to the totals Stats() reports
      in_flight_->Set(s.in_flight);
      concurrency_->Set(s.concurrency);
      snapshot_->Set(static_cast<double>(s.snapshot_version));
      idle_->Set(static_cast<double>(s.loop_idle_ms) / 1000.0);
      ready_->Set(s.database_ok && !s.draining ? 1 : 0);
      Advance("claimed", s.claimed);
      Advance("completed", s.completed);
      Advance("held", s.held);
      Advance("failed", s.failed);
      api::HttpResponse out;
      out.content_type = "text/plain; version=0.0.4";
      out.body = prometheus::TextSerializer().Serialize(registry_->Collect());
      return out;
    }
    return api::Router::ErrorResponse(404, "not_found", "no route " + path, "", "");
  }

  void Advance(const std::string& outcome, uint64_t total) {
    prometheus::Counter& c = tasks_->Add({{"outcome", outcome}});
    double delta = static_cast<double>(total) - c.Value();
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
  std::mutex mu_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* in_flight_;
  prometheus::Gauge* concurrency_;
  prometheus::Gauge* snapshot_;
  prometheus::Gauge* idle_;
  prometheus::Gauge* ready_;
  prometheus::Family<prometheus::Counter>* tasks_;
  std::unique_ptr<api::HttpServer> server_;
};

WorkerHealthServer::WorkerHealthServer(const worker::Worker& worker, const std::string& listen,
                                       int stall_seconds)
    : impl_(std::make_unique<Impl>(worker, listen, stall_seconds)) {}
WorkerHealthServer::~WorkerHealthServer() { impl_->Stop(); }
Result<uint16_t> WorkerHealthServer::Start() { return impl_->Start(); }
void WorkerHealthServer::Stop() { impl_->Stop(); }

}  // namespace synaps::cli
