#include "store/flow_store.h"

#include "store/detail/json_column.h"

namespace synaps::store {

using nlohmann::json;

namespace {

// The tenant's keys: the two partial indexes of 0022 (leased; ready or limited) hold exactly the
// items with a key, so this reads no item without one.
constexpr const char* kKeys =
    "SELECT jsonb_build_object('key', k.concurrency_key, 'running', k.running,"
    "   'waiting', k.waiting, 'ready', k.ready, 'oldestWaitingSince', k.oldest,"
    "   'limit', l.name, 'maxRunning', l.max_running, 'strategy', l.strategy)"
    "  FROM (SELECT q.concurrency_key,"
    "          count(*) FILTER (WHERE q.status = 'leased') AS running,"
    "          count(*) FILTER (WHERE q.status = 'limited') AS waiting,"
    "          count(*) FILTER (WHERE q.status = 'ready') AS ready,"
    "          min(q.created_at) FILTER (WHERE q.status = 'limited') AS oldest"
    "          FROM synaps.queue_items q"
    "         WHERE q.tenant_id = $1 AND q.concurrency_key IS NOT NULL"
    "           AND q.status IN ('leased', 'limited', 'ready')"
    "         GROUP BY q.concurrency_key) k"
    "  LEFT JOIN LATERAL synaps.flow_limit($1, k.concurrency_key) l ON true"
    " ORDER BY k.waiting DESC, k.running DESC, k.concurrency_key LIMIT $2::integer";

// Routes with limits (the current version of each `routes` item), the route's limiter row, and
// the tenant's items sent back to wait for a slot (ready with rate_slot; the route they wait
// for is in their task.waiting event).
constexpr const char* kRoutes =
    "WITH routes AS ("
    "  SELECT i.name, i.spec->'limits' AS lim"
    "    FROM (SELECT DISTINCT ON (c.name) c.name, c.deleted, c.spec FROM synaps.control_items c"
    "           WHERE c.kind = 'routes' ORDER BY c.name, c.version DESC) i"
    "   WHERE NOT i.deleted AND i.spec ? 'limits'),"
    " waits AS ("
    "  SELECT w.data->>'route' AS route, count(*) AS n,"
    "         max((w.data->>'until')::timestamptz) AS until"
    "    FROM synaps.queue_items q JOIN synaps.tasks t ON t.id = q.task_id"
    "   CROSS JOIN LATERAL synaps.task_waiting(t) w"
    "   WHERE q.tenant_id = $1 AND q.status = 'ready' AND q.rate_slot IS NOT NULL"
    "     AND w.data->>'reason' = 'rateLimit'"
    "   GROUP BY 1)"
    "SELECT coalesce(jsonb_agg(jsonb_build_object('route', r.name,"
    "   'requestsPerMinute', r.lim->'requestsPerMinute',"
    "   'tokensPerMinute', r.lim->'tokensPerMinute',"
    "   'nextSlotAt', CASE WHEN greatest(l.request_tat, l.token_tat) > now()"
    "                      THEN greatest(l.request_tat, l.token_tat) END,"
    "   'blockedUntil', CASE WHEN l.blocked_until > now() THEN l.blocked_until END,"
    "   'waiting', coalesce(w.n, 0), 'waitingUntil', w.until) ORDER BY r.name), '[]'::jsonb)"
    "  FROM routes r LEFT JOIN synaps.rate_limits l ON l.route = r.name"
    "  LEFT JOIN waits w ON w.route = r.name";

// Threads with parked runs (0027: a run behind a busy thread has its root items `parked`), and
// the run holding each: its oldest unfinished run by thread_seq.
constexpr const char* kThreads =
    "SELECT jsonb_build_object('threadId', p.thread_id, 'queuedRuns', p.n,"
    "   'oldestQueuedAt', p.oldest, 'runId', h.id, 'runStatus', h.status)"
    "  FROM (SELECT r.thread_id, count(DISTINCT q.run_id) AS n, min(r.created_at) AS oldest"
    "          FROM synaps.queue_items q JOIN synaps.runs r ON r.id = q.run_id"
    "         WHERE q.tenant_id = $1 AND q.status = 'parked'"
    "         GROUP BY r.thread_id) p"
    "  LEFT JOIN LATERAL (SELECT r2.id, r2.status FROM synaps.runs r2"
    "                      WHERE r2.thread_id = p.thread_id"
    "                        AND r2.status IN ('queued', 'running', 'awaiting_approval')"
    "                      ORDER BY r2.thread_seq LIMIT 1) h ON true"
    " ORDER BY p.oldest, p.thread_id LIMIT $2::integer";

}  // namespace

Result<json> TenantFlow(db::Connection& conn, const std::string& tenant_id) {
  const std::string limit = std::to_string(kFlowListLimit + 1);
  json out = {{"keys", json::array()},
              {"threads", json::array()},
              {"moreKeys", false},
              {"moreThreads", false}};
  ASSIGN_OR_RETURN(db::PgResult keys,
                   conn.ExecPrepared("tenant_flow_keys", kKeys, {tenant_id, limit}));
  for (int i = 0; i < keys.rows(); ++i) {
    if (i == kFlowListLimit) {
      out["moreKeys"] = true;
      break;
    }
    ASSIGN_OR_RETURN(json key, detail::ParseColumn(keys.Get(i, 0), "a concurrency key"));
    out["keys"].push_back(std::move(key));
  }
  ASSIGN_OR_RETURN(db::PgResult routes,
                   conn.ExecPrepared("tenant_flow_routes", kRoutes, {tenant_id}));
  ASSIGN_OR_RETURN(out["routes"], detail::ParseColumn(routes.Get(0, 0), "the rate limits"));
  ASSIGN_OR_RETURN(db::PgResult threads,
                   conn.ExecPrepared("tenant_flow_threads", kThreads, {tenant_id, limit}));
  for (int i = 0; i < threads.rows(); ++i) {
    if (i == kFlowListLimit) {
      out["moreThreads"] = true;
      break;
    }
    ASSIGN_OR_RETURN(json thread, detail::ParseColumn(threads.Get(i, 0), "a thread"));
    out["threads"].push_back(std::move(thread));
  }
  return out;
}

}  // namespace synaps::store
