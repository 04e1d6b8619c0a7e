// The control registry's SQL (db/migrations/0003_control.sql, docs/control.md). The registry is
// installation-wide: items have no tenant; each change records the actor and the actor's tenant.
//
// Every write is one statement (synaps.control_write) and so one transaction: the item's new
// version, one control_change row whose id is the new snapshot version, and one outbox row
// `synaps.ctrl.<kind>` with payload {kind, name, version, snapshotVersion}. Writers serialize on
// an advisory lock, so snapshot versions become visible in order and the snapshot at any version
// that can be read never changes. Specs are validated (control/spec.h) before they are written.
// A write inside a caller's transaction holds that lock until the caller commits: keep it short,
// and hand the returned outbox row to the relay only after the commit.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "control/snapshot.h"
#include "db/connection.h"
#include "store/run_store.h"

namespace synaps::store {

using ControlSnapshot = control::Snapshot;

// The effective snapshot at `version` (the latest when nullopt). kInvalidArgument for a negative
// version, kNotFound for one above the latest.
Result<ControlSnapshot> LoadSnapshot(db::Connection& conn, std::optional<int64_t> version);

// The latest snapshot version (0 before the first change): one index lookup.
Result<int64_t> CurrentSnapshotVersion(db::Connection& conn);

// Who makes a change and why.
struct ControlActor {
  std::string actor;         // principal id
  std::string actor_tenant;  // the principal's tenant
  std::string reason;        // required, non-empty
};

struct ControlWriteResult {
  std::string kind;
  std::string name;
  int version = 0;               // the item's version after the call
  int64_t snapshot_version = 0;  // the change's id, or the latest version when nothing changed
  bool changed = false;          // false: the spec equalled the current one; nothing written
  bool created = false;          // the item did not exist (or was deleted) before
  std::optional<OutboxMessage> outbox;  // the synaps.ctrl.<kind> row, when changed
};

// Stores `spec` as the next version of (kind, name). A spec equal to the current one (as JSON,
// key order aside) writes nothing and answers changed = false. kInvalidArgument (field = JSON
// path, e.g. "spec.template") for an invalid kind, name, spec or empty reason.
Result<ControlWriteResult> PutControlItem(db::Connection& conn, const std::string& kind,
                                          const std::string& name, const nlohmann::json& spec,
                                          const ControlActor& who);

// Stores a tombstone version. kNotFound when the item does not exist or is already deleted.
Result<ControlWriteResult> DeleteControlItem(db::Connection& conn, const std::string& kind,
                                             const std::string& name, const ControlActor& who);

// Stores a copy of version `to_version`'s spec as the next version (restoring a deleted item).
// kNotFound when that version does not exist; kConflict when it is a tombstone;
// kInvalidArgument when its spec no longer passes validation. A copy equal to the current spec
// writes nothing (changed = false).
Result<ControlWriteResult> RollbackControlItem(db::Connection& conn, const std::string& kind,
                                               const std::string& name, int to_version,
                                               const ControlActor& who);

// One version of an item with the change that wrote it.
struct ControlItemVersion {
  std::string kind;
  std::string name;
  int version = 0;
  nlohmann::json spec;  // null for a tombstone
  bool deleted = false;
  int64_t change_id = 0;  // = the snapshot version that introduced it
  std::string action;     // put, delete, rollback
  std::string actor;
  std::string actor_tenant;
  std::string reason;
  std::string at;  // RFC 3339
};

// The current version of an item (`version` nullopt) or a given one, tombstones included.
// kNotFound when the item never existed, when the version does not exist, or (for the current
// version) when the item is deleted.
Result<ControlItemVersion> GetControlItem(db::Connection& conn, const std::string& kind,
                                          const std::string& name,
                                          std::optional<int> version = std::nullopt);

// The current, non-deleted items of `kind`, by name.
Result<std::vector<ControlItemVersion>> ListControlItems(db::Connection& conn,
                                                         const std::string& kind);

struct ControlChangeFilter {
  std::optional<std::string> kind;
  std::optional<std::string> name;
  std::optional<std::string> actor;
  std::optional<int64_t> before;  // cursor: only changes with a smaller id
  int limit = 50;
};

struct ControlChangePage {
  std::vector<ControlItemVersion> changes;  // newest first; spec omitted (null)
  std::optional<int64_t> next_cursor;       // pass as `before` for the next page
};

// The audit log, newest first.
Result<ControlChangePage> ListControlChanges(db::Connection& conn,
                                             const ControlChangeFilter& filter);

}  // namespace synaps::store
