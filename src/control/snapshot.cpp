#include "control/snapshot.h"

#include <algorithm>

namespace synaps::control {

using nlohmann::json;

namespace {

template <class Map>
auto FindIn(const Map& map, std::string_view name) -> const typename Map::mapped_type* {
  auto it = map.find(name);
  return it == map.end() ? nullptr : &it->second;
}

// Parses `e` with `parse` into `out`, or records why it no longer parses.
template <class T, class Parse>
void AddTyped(const SnapshotEntry& e, Parse parse, std::map<std::string, T, std::less<>>& out,
              std::vector<Error>& invalid) {
  auto typed = parse(e.name, e.spec);
  if (!typed) {
    invalid.push_back({typed.error().code, e.kind + "/" + e.name + ": " + typed.error().message,
                       e.kind + "/" + e.name + ": " + typed.error().field});
    return;
  }
  typed->version = e.version;
  out.emplace(e.name, std::move(*typed));
}

}  // namespace

const Prompt* Snapshot::FindPrompt(std::string_view name) const { return FindIn(prompts, name); }
const Skill* Snapshot::FindSkill(std::string_view name) const { return FindIn(skills, name); }
const Tool* Snapshot::FindTool(std::string_view name) const { return FindIn(tools, name); }
const Arbiter* Snapshot::FindArbiter(std::string_view name) const { return FindIn(arbiters, name); }

const Route* Snapshot::FindRoute(std::string_view name) const {
  for (const auto& r : routes) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

const SnapshotEntry* Snapshot::FindEntry(std::string_view kind, std::string_view name) const {
  auto k = entries.find(kind);
  if (k == entries.end()) return nullptr;
  return FindIn(k->second, name);
}

json Snapshot::ToJson() const {
  json items = json::object();
  for (auto kind : kKinds) {
    json of_kind = json::object();
    if (auto k = entries.find(kind); k != entries.end()) {
      for (const auto& [name, e] : k->second) {
        of_kind[name] = {{"version", e.version}, {"spec", e.spec}};
      }
    }
    items[std::string(kind)] = std::move(of_kind);
  }
  return {{"version", version}, {"items", std::move(items)}};
}

Snapshot BuildSnapshot(int64_t version, std::vector<SnapshotEntry> entries) {
  Snapshot s;
  s.version = version;
  for (auto kind : kKinds) s.entries[std::string(kind)];
  std::map<std::string, Route, std::less<>> routes;
  for (auto& e : entries) {
    if (!IsKind(e.kind)) continue;
    if (e.kind == "prompts") AddTyped(e, ParsePrompt, s.prompts, s.invalid);
    if (e.kind == "skills") AddTyped(e, ParseSkill, s.skills, s.invalid);
    if (e.kind == "tools") AddTyped(e, ParseTool, s.tools, s.invalid);
    if (e.kind == "routes") AddTyped(e, ParseRoute, routes, s.invalid);
    if (e.kind == "arbiters") AddTyped(e, ParseArbiter, s.arbiters, s.invalid);
    if (e.kind == "schedules") AddTyped(e, ParseSchedule, s.schedules, s.invalid);
    std::string kind = e.kind;
    std::string name = e.name;
    s.entries[kind][name] = std::move(e);
  }
  for (auto& [name, r] : routes) s.routes.push_back(std::move(r));
  std::stable_sort(s.routes.begin(), s.routes.end(),
                   [](const Route& a, const Route& b) { return a.order < b.order; });
  return s;
}

}  // namespace synaps::control
