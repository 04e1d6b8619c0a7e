// GET /v1/usage: tasks, errors, provider calls, tokens and cost per tenant, day, route, model and
// skill, from the ledger (store/usage_store.h, docs/observability.md "Usage and cost"). A
// principal reads its own tenant's usage; one with the installation scope reads every tenant's,
// or one tenant's with `tenant=`.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <regex>

#include "api/router_internal.h"
#include "core/config.h"
#include "core/http_grammar.h"
#include "store/usage_store.h"

namespace synaps::api {

using detail::JsonResponse;
using nlohmann::json;

namespace {

constexpr int kMaxDays = 366;

// A calendar date "YYYY-MM-DD"; nullopt when malformed or not a real day.
std::optional<std::chrono::sys_days> ParseDay(const std::string& s) {
  static const std::regex kDay(R"(\d{4}-\d{2}-\d{2})");
  if (!std::regex_match(s, kDay)) return std::nullopt;
  std::chrono::year_month_day d{std::chrono::year(std::stoi(s.substr(0, 4))),
                                std::chrono::month(std::stoul(s.substr(5, 2))),
                                std::chrono::day(std::stoul(s.substr(8, 2)))};
  if (!d.ok()) return std::nullopt;
  return std::chrono::sys_days(d);
}

std::string FormatDay(std::chrono::sys_days d) {
  std::chrono::year_month_day ymd(d);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

// "tenant,day,model" → the dimensions, each known and named once; "" → none (totals only).
Result<std::vector<std::string>> ParseGroupBy(const std::string& v) {
  std::vector<std::string> out;
  for (const std::string& d : config::SplitList(v)) {
    bool known = false;
    for (const char* k : store::kUsageDimensions) known = known || d == k;
    if (!known || std::find(out.begin(), out.end(), d) != out.end()) {
      return Fail(ErrorCode::kInvalidArgument,
                  "groupBy: a comma-separated list of distinct tenant, day, route, model, skill",
                  "groupBy");
    }
    out.push_back(d);
  }
  return out;
}

}  // namespace

HttpResponse Router::GetUsage(Context& ctx, const Params&) const {
  store::UsageQuery q;
  q.group_by.assign(std::begin(store::kUsageDimensions), std::end(store::kUsageDimensions));
  std::optional<std::chrono::sys_days> from, to;
  for (const auto& [k, raw] : ctx.query) {
    auto v = detail::UrlDecode(raw);
    if (!v) return ctx.Error(400, "invalid_argument", k + ": malformed percent-encoding", k);
    if (k == "from" || k == "to") {
      auto day = ParseDay(*v);
      if (!day) return ctx.Error(400, "invalid_argument", k + " must be a date, YYYY-MM-DD", k);
      (k == "from" ? from : to) = day;
    } else if (k == "groupBy") {
      auto dims = ParseGroupBy(*v);
      if (!dims) return ctx.Error(dims.error());
      q.group_by = std::move(*dims);
    } else if (k == "tenant") {
      if (!IsTenantId(*v)) {
        return ctx.Error(400, "invalid_argument", "tenant: not a tenant id", k);
      }
      q.tenant = *v;
    } else {
      return ctx.Error(400, "invalid_argument", k + ": unknown parameter", k);
    }
  }
  if (!ctx.principal->installation) {
    // Another tenant's usage does not exist for this principal.
    if (q.tenant && *q.tenant != ctx.principal->tenant_id) {
      return ctx.Error(403, "forbidden", "tenant: only the installation scope reads other tenants",
                       "tenant");
    }
    q.tenant = ctx.principal->tenant_id;
  }
  auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  if (!to) to = from ? std::min(*from + std::chrono::days(kMaxDays - 1), today) : today;
  if (!from) from = *to - std::chrono::days(29);
  if (*from > *to) return ctx.Error(400, "invalid_argument", "from must not be after to", "from");
  if (*to - *from >= std::chrono::days(kMaxDays)) {
    return ctx.Error(400, "invalid_argument", "at most 366 days per query", "from");
  }
  q.from = FormatDay(*from);
  q.to = FormatDay(*to);

  // A read only: the API's background rollup (usage_rollup.h) folds old events in; whatever
  // it has not folded yet is read live.
  auto conn = ReadConnection(ctx);
  if (!conn) return ctx.Error(conn.error());
  auto usage = store::QueryUsage(**conn, q);
  if (!usage) return ctx.Error(usage.error());
  return JsonResponse(200, *usage, ctx.request_id);
}

}  // namespace synaps::api
