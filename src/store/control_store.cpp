#include "store/control_store.h"

#include <spdlog/spdlog.h>

#include "control/spec.h"
#include "core/barrier.h"
#include "store/detail/json_column.h"

namespace synaps::store {

using nlohmann::json;

namespace {

constexpr size_t kMaxReason = 1000;

Status CheckReason(const std::string& reason) {
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Fail(ErrorCode::kInvalidArgument, "reason: required: say why the change is made",
                "reason");
  }
  if (reason.size() > kMaxReason) {
    return Fail(ErrorCode::kInvalidArgument,
                "reason: must be at most " + std::to_string(kMaxReason) + " bytes", "reason");
  }
  return Ok();
}

std::string ItemName(const std::string& kind, const std::string& name) { return kind + "/" + name; }

// Calls synaps.control_write and turns its answer into a result or an error.
Result<ControlWriteResult> Write(db::Connection& conn, const std::string& kind,
                                 const std::string& name, const std::string& action,
                                 const db::Param& spec, const db::Param& to_version,
                                 const ControlActor& who) {
  ASSIGN_OR_RETURN(
      db::PgResult r,
      conn.ExecPrepared(
          "control_write",
          "SELECT synaps.control_write($1, $2, $3, $4::jsonb, $5::integer, $6, $7, $8)",
          {kind, name, action, spec, to_version, who.actor, who.actor_tenant, who.reason}));
  ASSIGN_OR_RETURN(json out, detail::ParseColumn(r.Get(0, 0), "the answer of control_write"));
  return Guarded("reading the answer of control_write", [&]() -> Result<ControlWriteResult> {
    if (out.contains("error")) {
      const std::string err = out["error"].get<std::string>();
      if (err == "not_found") {
        return Fail(ErrorCode::kNotFound, ItemName(kind, name) + " does not exist");
      }
      if (err == "version_not_found") {
        return Fail(ErrorCode::kNotFound,
                    ItemName(kind, name) + " has no version " + to_version.value_or("?") +
                        " (latest is " + std::to_string(out.value("latest", 0)) + ")",
                    "toVersion");
      }
      return Fail(ErrorCode::kConflict,
                  ItemName(kind, name) + " version " + to_version.value_or("?") +
                      " is a deletion; roll back to a version that has a spec",
                  "toVersion");
    }
    ControlWriteResult result;
    result.kind = kind;
    result.name = name;
    result.version = out["version"].get<int>();
    result.snapshot_version = out["snapshotVersion"].get<int64_t>();
    result.changed = out["changed"].get<bool>();
    result.created = out["created"].get<bool>();
    if (out.contains("outbox") && out["outbox"].is_object()) {
      const json& o = out["outbox"];
      result.outbox = OutboxMessage{o["id"].get<int64_t>(), o["subject"].get<std::string>(),
                                    o["payload"].dump(), o["msgId"].get<std::string>()};
    }
    return result;
  });
}

// Columns of a version row joined with its change, in the order ReadVersion expects.
constexpr const char* kVersionColumns = R"sql(
  i.kind, i.name, i.version, i.spec::text, i.deleted, c.id, c.action, c.actor,
  coalesce(c.actor_tenant, ''), c.reason, to_json(c.at) #>> '{}')sql";

// The same for the audit log, without the (possibly large) spec.
constexpr const char* kChangeColumns = R"sql(
  i.kind, i.name, i.version, NULL::text, i.deleted, c.id, c.action, c.actor,
  coalesce(c.actor_tenant, ''), c.reason, to_json(c.at) #>> '{}')sql";

ControlItemVersion ReadVersion(const db::PgResult& r, int row) {
  ControlItemVersion v;
  v.kind = r.GetString(row, 0);
  v.name = r.GetString(row, 1);
  v.version = static_cast<int>(r.GetInt(row, 2));
  // A spec that does not read is shown as null rather than failing the whole history.
  if (!r.IsNull(row, 3)) {
    auto spec = detail::ParseColumn(r.Get(row, 3), v.kind + "/" + v.name + "'s spec");
    v.spec = spec ? std::move(*spec) : json();
  }
  v.deleted = r.GetBool(row, 4);
  v.change_id = r.GetInt(row, 5);
  v.action = r.GetString(row, 6);
  v.actor = r.GetString(row, 7);
  v.actor_tenant = r.GetString(row, 8);
  v.reason = r.GetString(row, 9);
  v.at = r.GetString(row, 10);
  return v;
}

}  // namespace

Result<int64_t> CurrentSnapshotVersion(db::Connection& conn) {
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("control_version", "SELECT synaps.control_version()", {}));
  return r.GetInt(0, 0);
}

Result<ControlSnapshot> LoadSnapshot(db::Connection& conn, std::optional<int64_t> version) {
  if (version && *version < 0) {
    return Fail(ErrorCode::kInvalidArgument, "version: must not be negative", "version");
  }
  ASSIGN_OR_RETURN(int64_t latest, CurrentSnapshotVersion(conn));
  if (version && *version > latest) {
    return Fail(ErrorCode::kNotFound, "snapshot version " + std::to_string(*version) +
                                          " does not exist yet (latest is " +
                                          std::to_string(latest) + ")");
  }
  // Versions up to `latest` are immutable (writers serialize, see the header), so reading the
  // rows in a second statement yields exactly the snapshot at `at`.
  const int64_t at = version.value_or(latest);
  ASSIGN_OR_RETURN(db::PgResult r,
                   conn.ExecPrepared("control_snapshot",
                                     "SELECT kind, name, version, spec::text, change_id "
                                     "FROM synaps.control_snapshot($1::bigint)",
                                     {std::to_string(at)}));
  std::vector<control::SnapshotEntry> entries;
  entries.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    // A spec that does not read makes its item invalid in the snapshot (Snapshot::invalid, a
    // null spec fails its kind's parser); the other items load.
    auto spec = detail::ParseColumn(r.Get(i, 3), "control item " + r.GetString(i, 1) + "'s spec");
    if (!spec) spdlog::warn("control snapshot {}: {}", at, spec.error().message);
    entries.push_back({r.GetString(i, 0), r.GetString(i, 1), static_cast<int>(r.GetInt(i, 2)),
                       r.GetInt(i, 4), spec ? std::move(*spec) : json()});
  }
  return control::BuildSnapshot(at, std::move(entries));
}

Result<ControlWriteResult> PutControlItem(db::Connection& conn, const std::string& kind,
                                          const std::string& name, const json& spec,
                                          const ControlActor& who) {
  RETURN_IF_ERROR(control::ValidateSpec(kind, name, spec));
  RETURN_IF_ERROR(CheckReason(who.reason));
  return Write(conn, kind, name, "put", spec.dump(), std::nullopt, who);
}

Result<ControlWriteResult> DeleteControlItem(db::Connection& conn, const std::string& kind,
                                             const std::string& name, const ControlActor& who) {
  RETURN_IF_ERROR(control::ValidateKindAndName(kind, name));
  RETURN_IF_ERROR(CheckReason(who.reason));
  return Write(conn, kind, name, "delete", std::nullopt, std::nullopt, who);
}

Result<ControlWriteResult> RollbackControlItem(db::Connection& conn, const std::string& kind,
                                               const std::string& name, int to_version,
                                               const ControlActor& who) {
  RETURN_IF_ERROR(control::ValidateKindAndName(kind, name));
  RETURN_IF_ERROR(CheckReason(who.reason));
  if (to_version < 1) {
    return Fail(ErrorCode::kInvalidArgument, "toVersion: must be a version number (1 or more)",
                "toVersion");
  }
  // Old versions never change, so checking the target first and copying it in the write below
  // cannot race with anything.
  auto target = GetControlItem(conn, kind, name, to_version);
  if (target && !target->deleted) {
    if (auto valid = control::ValidateSpec(kind, name, target->spec); !valid) {
      return Fail(ErrorCode::kInvalidArgument,
                  ItemName(kind, name) + " version " + std::to_string(to_version) +
                      " no longer passes validation: " + valid.error().message,
                  valid.error().field);
    }
  } else if (!target && target.error().code != ErrorCode::kNotFound) {
    return std::unexpected(target.error());
  }
  return Write(conn, kind, name, "rollback", std::nullopt, std::to_string(to_version), who);
}

Result<ControlItemVersion> GetControlItem(db::Connection& conn, const std::string& kind,
                                          const std::string& name, std::optional<int> version) {
  RETURN_IF_ERROR(control::ValidateKindAndName(kind, name));
  const std::string sql = std::string("SELECT") + kVersionColumns + R"sql(
  FROM synaps.control_items i
  JOIN synaps.control_change c ON (c.kind, c.name, c.version) = (i.kind, i.name, i.version)
 WHERE i.kind = $1 AND i.name = $2 AND ($3::integer IS NULL OR i.version = $3::integer)
 ORDER BY i.version DESC LIMIT 1)sql";
  db::Param v = version ? db::Param(std::to_string(*version)) : std::nullopt;
  ASSIGN_OR_RETURN(db::PgResult r, conn.ExecPrepared("control_get_item", sql, {kind, name, v}));
  if (r.rows() == 0) {
    if (version) {
      return Fail(ErrorCode::kNotFound,
                  ItemName(kind, name) + " has no version " + std::to_string(*version));
    }
    return Fail(ErrorCode::kNotFound, ItemName(kind, name) + " does not exist");
  }
  ControlItemVersion item = ReadVersion(r, 0);
  if (!version && item.deleted) {
    return Fail(ErrorCode::kNotFound, ItemName(kind, name) + " was deleted in version " +
                                          std::to_string(item.version) +
                                          " (read it with ?version=N, or roll it back)");
  }
  return item;
}

Result<std::vector<ControlItemVersion>> ListControlItems(db::Connection& conn,
                                                         const std::string& kind) {
  if (!control::IsKind(kind)) {
    return Fail(ErrorCode::kInvalidArgument, "kind: must be one of " + control::KindList(),
                "kind");
  }
  const std::string sql = std::string("SELECT") + kVersionColumns + R"sql(
  FROM (SELECT DISTINCT ON (name) kind, name, version, spec, deleted
          FROM synaps.control_items WHERE kind = $1
         ORDER BY name, version DESC) i
  JOIN synaps.control_change c ON (c.kind, c.name, c.version) = (i.kind, i.name, i.version)
 WHERE NOT i.deleted
 ORDER BY i.name)sql";
  ASSIGN_OR_RETURN(db::PgResult r, conn.ExecPrepared("control_list_items", sql, {kind}));
  std::vector<ControlItemVersion> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(ReadVersion(r, i));
  return out;
}

Result<ControlChangePage> ListControlChanges(db::Connection& conn,
                                             const ControlChangeFilter& filter) {
  const std::string sql = std::string("SELECT") + kChangeColumns + R"sql(
  FROM synaps.control_change c
  JOIN synaps.control_items i ON (i.kind, i.name, i.version) = (c.kind, c.name, c.version)
 WHERE ($1::text IS NULL OR c.kind = $1) AND ($2::text IS NULL OR c.name = $2)
   AND ($3::text IS NULL OR c.actor = $3) AND ($4::bigint IS NULL OR c.id < $4::bigint)
 ORDER BY c.id DESC
 LIMIT $5::integer)sql";
  db::Param before = filter.before ? db::Param(std::to_string(*filter.before)) : std::nullopt;
  ASSIGN_OR_RETURN(db::PgResult r, conn.ExecPrepared("control_list_changes", sql,
                                                     {filter.kind, filter.name, filter.actor,
                                                      before, std::to_string(filter.limit + 1)}));
  ControlChangePage page;
  for (int i = 0; i < r.rows() && i < filter.limit; ++i) {
    page.changes.push_back(ReadVersion(r, i));
  }
  if (r.rows() > filter.limit && !page.changes.empty()) {
    page.next_cursor = page.changes.back().change_id;
  }
  return page;
}

}  // namespace synaps::store
