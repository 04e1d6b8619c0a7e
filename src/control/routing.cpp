#include "control/routing.h"

#include <algorithm>
#include <set>

namespace synaps::control {

namespace {

const Route* ByName(const std::vector<Route>& routes, std::string_view name) {
  for (const auto& r : routes) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::string Describe(const RouteQuery& q) {
  std::string s = "kind " + (q.kind.empty() ? std::string("-") : q.kind);
  if (!q.skill.empty()) s += ", skill " + q.skill;
  if (!q.tenant.empty()) s += ", tenant " + q.tenant;
  if (!q.tags.empty()) {
    s += ", tags";
    for (const auto& t : q.tags) s += " " + t;
  }
  return s;
}

Status Expand(const std::vector<Route>& routes, const Route& route,
              std::vector<const Route*>& chain, std::set<std::string>& seen) {
  for (const auto& name : route.fallbacks) {
    if (seen.contains(name)) continue;
    const Route* next = ByName(routes, name);
    if (next == nullptr) {
      return Fail(ErrorCode::kNotFound, "route " + route.name + " falls back to route " + name +
                                            ", which does not exist");
    }
    seen.insert(name);
    chain.push_back(next);
    RETURN_IF_ERROR(Expand(routes, *next, chain, seen));
  }
  return Ok();
}

}  // namespace

uint64_t StableHash(std::string_view text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

bool Matches(const Match& match, const RouteQuery& query) {
  if (match.kind && *match.kind != query.kind) return false;
  if (match.skill && *match.skill != query.skill) return false;
  if (match.tenant && *match.tenant != query.tenant) return false;
  return std::all_of(match.tags.begin(), match.tags.end(), [&](const std::string& t) {
    return std::find(query.tags.begin(), query.tags.end(), t) != query.tags.end();
  });
}

Result<const Route*> SelectRoute(const std::vector<Route>& routes, const RouteQuery& query,
                                 std::string_view run_id) {
  auto candidate = [&](const Route& r) {
    return r.name != kDefaultRoute && r.weight > 0 && Matches(r.match, query);
  };
  std::vector<const Route*> group;  // the matching routes of the lowest order, by name
  for (const auto& r : routes) {
    if (!candidate(r)) continue;
    if (!group.empty() && r.order > group.front()->order) continue;
    if (!group.empty() && r.order < group.front()->order) group.clear();
    group.push_back(&r);
  }
  if (group.empty()) {
    if (const Route* d = ByName(routes, kDefaultRoute)) return d;
    return Fail(ErrorCode::kNotFound,
                "no route matches (" + Describe(query) + ") and there is no route named default");
  }
  if (group.size() == 1) return group.front();
  std::sort(group.begin(), group.end(),
            [](const Route* a, const Route* b) { return a->name < b->name; });
  uint64_t total = 0;
  for (const Route* r : group) total += static_cast<uint64_t>(r->weight);
  uint64_t bucket = StableHash(run_id) % total;
  for (const Route* r : group) {
    if (bucket < static_cast<uint64_t>(r->weight)) return r;
    bucket -= static_cast<uint64_t>(r->weight);
  }
  return group.back();
}

Result<std::vector<const Route*>> FallbackChain(const std::vector<Route>& routes,
                                                const Route& primary) {
  std::vector<const Route*> chain = {&primary};
  std::set<std::string> seen = {primary.name};
  RETURN_IF_ERROR(Expand(routes, primary, chain, seen));
  return chain;
}

std::vector<const Arbiter*> MatchingArbiters(const Snapshot& snapshot, const RouteQuery& query) {
  std::vector<const Arbiter*> out;
  for (const auto& [name, a] : snapshot.arbiters) {
    if (Matches(a.match, query)) out.push_back(&a);
  }
  return out;
}

}  // namespace synaps::control
