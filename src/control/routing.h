// Route selection and arbiter matching over a snapshot's typed items. Pure functions, no I/O.
//
// Which route a task uses (the worker applies this precedence):
//   1. the route the submit names (`route`), by name;
//   2. else the route of the skill the task names, by name;
//   3. else SelectRoute: first match wins. Routes are considered in (order, name) order, lower
//      order first; the route named `default` and routes of weight 0 never match. All matching
//      routes that share the lowest order form a group, and one of them is picked by weight,
//      stable per run: the same run id always lands on the same route of the same group;
//   4. else the route named `default`;
//   5. else kNotFound.
// After the chosen route's retries are spent, its fallbacks are tried in the order of
// FallbackChain.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "control/snapshot.h"

namespace synaps::control {

// What a task looks like to match rules.
struct RouteQuery {
  std::string kind;               // the command kind
  std::string skill;              // empty: none
  std::vector<std::string> tags;  // the command's tags
  std::string tenant;
};

// True when every field `match` sets agrees with `query` (all of match.tags among query.tags).
bool Matches(const Match& match, const RouteQuery& query);

// Steps 3–5 above. `routes` in first-match order (Snapshot::routes). The returned pointer points
// into `routes`.
Result<const Route*> SelectRoute(const std::vector<Route>& routes, const RouteQuery& query,
                                 std::string_view run_id);

// `primary`, then its fallbacks depth-first (each fallback followed by its own fallbacks), each
// route at most once, so cycles end. kNotFound naming the first fallback that does not exist.
Result<std::vector<const Route*>> FallbackChain(const std::vector<Route>& routes,
                                                const Route& primary);

// Every arbiter whose match fits the query, by name. All of them apply to the task's output.
std::vector<const Arbiter*> MatchingArbiters(const Snapshot& snapshot, const RouteQuery& query);

// The stable 64-bit hash SelectRoute splits by (FNV-1a, then a splitmix64 finalizer); the same
// on every platform and release.
uint64_t StableHash(std::string_view text);

}  // namespace synaps::control
