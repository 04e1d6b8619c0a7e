// The effective control snapshot at one version: the latest non-deleted version of every item
// whose change id is <= the snapshot version (docs/control.md). Built from stored rows by the
// store (store/control_store.h, LoadSnapshot) and held in memory by workers. A Snapshot is an
// immutable value once built: share it between threads by const reference or shared_ptr<const>.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "control/schedule_spec.h"
#include "control/spec.h"

namespace synaps::control {

// One stored item as it is in the snapshot.
struct SnapshotEntry {
  std::string kind;
  std::string name;
  int version = 0;        // the item's version
  int64_t change_id = 0;  // the change that wrote this version (<= the snapshot version)
  nlohmann::json spec;
};

struct Snapshot {
  int64_t version = 0;  // 0: before the first change (empty)

  // kind → name → entry, for every kind (empty maps included). The JSON specs as stored.
  std::map<std::string, std::map<std::string, SnapshotEntry, std::less<>>, std::less<>> entries;

  // Typed views, each carrying the item's version.
  std::map<std::string, Prompt, std::less<>> prompts;
  std::map<std::string, Skill, std::less<>> skills;
  std::map<std::string, Tool, std::less<>> tools;
  std::vector<Route> routes;  // first-match order: by order, then name
  std::map<std::string, Arbiter, std::less<>> arbiters;
  std::map<std::string, Schedule, std::less<>> schedules;

  // Stored items that no longer pass validation (only after a release tightened a rule): they
  // are in `entries` but left out of the typed views. Each error's field is "kind/name: field".
  std::vector<Error> invalid;

  // Lookups by name; nullptr when absent (or invalid).
  const Prompt* FindPrompt(std::string_view name) const;
  const Skill* FindSkill(std::string_view name) const;
  const Tool* FindTool(std::string_view name) const;
  const Route* FindRoute(std::string_view name) const;
  const Arbiter* FindArbiter(std::string_view name) const;
  const SnapshotEntry* FindEntry(std::string_view kind, std::string_view name) const;

  // {version, items: {prompts: {name: {version, spec}}, skills: {...}, tools, routes, arbiters,
  // schedules}}
  // — the body of GET /v1/control/snapshot.
  nlohmann::json ToJson() const;
};

// Builds a snapshot from its entries (any order; at most one per kind and name). Unknown kinds
// are ignored.
Snapshot BuildSnapshot(int64_t version, std::vector<SnapshotEntry> entries);

}  // namespace synaps::control
