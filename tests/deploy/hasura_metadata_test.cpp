// The Hasura metadata (deploy/hasura/metadata, config v3) against the schema `synaps migrate`
// creates: every tracked table, permission column, relationship and permission filter must
// exist in the migrated database, or Hasura would start with inconsistent metadata. Also the
// security rules the metadata promises: tenant-scoped reads for `user`, no writes for anyone
// but admin, api_keys.hash never exposed.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "db/connection.h"
#include "support/test_stack.h"

namespace synaps {
namespace {

namespace fs = std::filesystem;

const fs::path kMetadataDir = fs::path(SYNAPS_SOURCE_DIR) / "deploy/hasura/metadata";
constexpr std::string_view kIncludePrefix = "!include ";

// Session variables our tokens carry (auth/jwt.h); a filter using any other would never match.
const std::set<std::string> kSessionVariables = {"x-hasura-tenant-id", "x-hasura-user-id"};
// Comparison operators of Hasura's boolean expressions that the metadata may use.
const std::set<std::string> kOperators = {
    "_eq",  "_neq",     "_in",   "_nin",   "_gt",       "_lt",           "_gte",
    "_lte", "_is_null", "_like", "_ilike", "_contains", "_contained_in", "_has_key"};

struct Schema {
  std::map<std::string, std::set<std::string>> columns;           // "synaps.runs" -> columns
  std::map<std::pair<std::string, std::string>, std::string> fk;  // (table, column) -> table
};

struct Relationship {
  std::string name;
  std::string target;  // qualified table
  bool array = false;
};

struct TrackedTable {
  std::string name;  // qualified, "synaps.runs"
  std::string file;
  YAML::Node node;
  std::map<std::string, Relationship> relationships;
};

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string Qualified(const YAML::Node& table) {
  return table["schema"].as<std::string>() + "." + table["name"].as<std::string>();
}

// Resolves Hasura's `"!include path"` directive relative to `base`.
YAML::Node Resolve(const YAML::Node& node, const fs::path& base, fs::path* file = nullptr) {
  if (node.IsScalar()) {
    std::string s = node.as<std::string>();
    if (s.rfind(kIncludePrefix, 0) == 0) {
      fs::path path = base / s.substr(kIncludePrefix.size());
      if (file) *file = path;
      EXPECT_TRUE(fs::exists(path)) << "included file missing: " << path;
      return YAML::LoadFile(path.string());
    }
  }
  return node;
}

class HasuraMetadataTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    schema_ = new Schema(LoadSchema());
    tables_ = new std::vector<TrackedTable>(LoadTables());
  }

  static Schema LoadSchema() {
    auto conn = db::Connection::Connect(testing::TestStack::Get().FreshDatabase());
    if (!conn) throw std::runtime_error(conn.error().message);
    Schema schema;
    auto cols = conn->Exec(
        "SELECT table_schema || '.' || table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'synaps' AND NOT EXISTS (SELECT 1 FROM pg_inherits i"
        "  WHERE i.inhrelid = (quote_ident(table_schema) || '.' || quote_ident(table_name))::regclass)");
    // (Partitions, such as the ledger's, are reached through their parent: not tracked.)
    if (!cols) throw std::runtime_error(cols.error().message);
    for (int i = 0; i < cols->rows(); ++i) {
      schema.columns[cols->GetString(i, 0)].insert(cols->GetString(i, 1));
    }
    // Single-column foreign keys: what Hasura's foreign_key_constraint_on needs.
    auto fks = conn->Exec(R"(
        SELECT ns.nspname || '.' || cl.relname, a.attname, fns.nspname || '.' || fcl.relname
          FROM pg_constraint c
          JOIN pg_class cl ON cl.oid = c.conrelid
          JOIN pg_namespace ns ON ns.oid = cl.relnamespace
          JOIN pg_class fcl ON fcl.oid = c.confrelid
          JOIN pg_namespace fns ON fns.oid = fcl.relnamespace
          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
         WHERE c.contype = 'f' AND cardinality(c.conkey) = 1 AND ns.nspname = 'synaps')");
    if (!fks) throw std::runtime_error(fks.error().message);
    for (int i = 0; i < fks->rows(); ++i) {
      schema.fk[{fks->GetString(i, 0), fks->GetString(i, 1)}] = fks->GetString(i, 2);
    }
    return schema;
  }

  static std::vector<TrackedTable> LoadTables() {
    YAML::Node databases = YAML::LoadFile((kMetadataDir / "databases/databases.yaml").string());
    std::vector<TrackedTable> tables;
    for (const auto& source : databases) {
      fs::path tables_file;
      YAML::Node list = Resolve(source["tables"], kMetadataDir / "databases", &tables_file);
      for (const auto& entry : list) {
        fs::path file = tables_file;
        YAML::Node node = Resolve(entry, tables_file.parent_path(), &file);
        tables.push_back({Qualified(node["table"]), file.filename().string(), node, {}});
      }
    }
    return tables;
  }

  static const TrackedTable* Find(const std::string& name) {
    for (const auto& t : *tables_) {
      if (t.name == name) return &t;
    }
    return nullptr;
  }

  static bool HasColumn(const std::string& table, const std::string& column) {
    auto it = schema_->columns.find(table);
    return it != schema_->columns.end() && it->second.count(column) > 0;
  }

  // A relationship by manual_configuration (references the history tables keep by value, without
  // a foreign key: docs/history.md): the remote table is tracked and every mapped column exists
  // on both sides. False when `rel` is not one.
  static bool ResolveManual(TrackedTable& t, const YAML::Node& rel, bool array) {
    YAML::Node manual = rel["using"]["manual_configuration"];
    if (!manual) return false;
    std::string name = rel["name"].as<std::string>();
    std::string remote = Qualified(manual["remote_table"]);
    EXPECT_NE(Find(remote), nullptr) << name << ": target " << remote << " is not tracked";
    EXPECT_TRUE(manual["column_mapping"].IsMap() && manual["column_mapping"].size() > 0) << name;
    for (const auto& kv : manual["column_mapping"]) {
      std::string local = kv.first.as<std::string>(), other = kv.second.as<std::string>();
      EXPECT_TRUE(HasColumn(t.name, local)) << name << ": no column " << t.name << "." << local;
      EXPECT_TRUE(HasColumn(remote, other)) << name << ": no column " << remote << "." << other;
    }
    t.relationships[name] = {name, remote, array};
    return true;
  }

  // Resolves every relationship of every table, failing for columns or keys that do not exist.
  static void ResolveRelationships() {
    for (auto& t : *tables_) {
      SCOPED_TRACE(t.file);
      for (const auto& rel : t.node["object_relationships"]) {
        std::string name = rel["name"].as<std::string>();
        if (ResolveManual(t, rel, /*array=*/false)) continue;
        YAML::Node fk = rel["using"]["foreign_key_constraint_on"];
        if (!fk) {
          ADD_FAILURE() << name << ": only foreign_key_constraint_on relationships are checked";
          continue;
        }
        std::string column = fk.IsScalar() ? fk.as<std::string>() : fk["column"].as<std::string>();
        EXPECT_TRUE(HasColumn(t.name, column)) << name << ": no column " << t.name << "." << column;
        auto target = schema_->fk.find({t.name, column});
        if (target == schema_->fk.end()) {
          ADD_FAILURE() << name << ": " << t.name << "." << column << " has no foreign key";
          continue;
        }
        t.relationships[name] = {name, target->second, false};
      }
      for (const auto& rel : t.node["array_relationships"]) {
        std::string name = rel["name"].as<std::string>();
        if (ResolveManual(t, rel, /*array=*/true)) continue;
        YAML::Node fk = rel["using"]["foreign_key_constraint_on"];
        if (!fk || !fk.IsMap()) {
          ADD_FAILURE() << name << ": expected foreign_key_constraint_on {column, table}";
          continue;
        }
        std::string remote = Qualified(fk["table"]);
        std::string column = fk["column"].as<std::string>();
        EXPECT_TRUE(HasColumn(remote, column)) << name << ": no column " << remote << "." << column;
        auto target = schema_->fk.find({remote, column});
        if (target == schema_->fk.end() || target->second != t.name) {
          ADD_FAILURE() << name << ": " << remote << "." << column << " does not reference "
                        << t.name;
          continue;
        }
        EXPECT_NE(Find(remote), nullptr) << name << ": target " << remote << " is not tracked";
        t.relationships[name] = {name, remote, true};
      }
    }
  }

  // Walks a boolean expression over `table`. Records session variables used; returns true when
  // the expression restricts rows to the caller's tenant on every path (tenant_id compared to
  // X-Hasura-Tenant-Id here or through a relationship, possibly inside _and).
  static bool CheckFilter(const YAML::Node& exp, const std::string& table,
                          std::set<std::string>* variables) {
    if (!exp.IsMap()) {
      ADD_FAILURE() << "filter on " << table << " is not an object";
      return false;
    }
    const TrackedTable* tracked = Find(table);
    bool tenant_scoped = false;
    for (const auto& kv : exp) {
      std::string key = kv.first.as<std::string>();
      const YAML::Node& value = kv.second;
      if (key == "_and" || key == "_or") {
        bool all = value.size() > 0;
        bool any = false;
        for (const auto& sub : value) {
          bool scoped = CheckFilter(sub, table, variables);
          all = all && scoped;
          any = any || scoped;
        }
        tenant_scoped = tenant_scoped || (key == "_and" ? any : all);
      } else if (key == "_not") {
        CheckFilter(value, table, variables);
      } else if (key == "_exists") {
        CheckFilter(value["_where"], Qualified(value["_table"]), variables);
      } else if (HasColumn(table, key)) {
        for (const auto& op : value) {
          std::string name = op.first.as<std::string>();
          EXPECT_TRUE(kOperators.count(name)) << table << "." << key << ": operator " << name;
          if (op.second.IsScalar()) {
            std::string v = Lower(op.second.as<std::string>());
            if (v.rfind("x-hasura-", 0) == 0) {
              variables->insert(v);
              if (key == "tenant_id" && name == "_eq" && v == "x-hasura-tenant-id") {
                tenant_scoped = true;
              }
            }
          }
        }
      } else if (tracked && tracked->relationships.count(key)) {
        tenant_scoped =
            CheckFilter(value, tracked->relationships.at(key).target, variables) || tenant_scoped;
      } else {
        ADD_FAILURE() << "filter on " << table << " names '" << key
                      << "', which is neither a column nor a relationship";
      }
    }
    return tenant_scoped;
  }

  static Schema* schema_;
  static std::vector<TrackedTable>* tables_;
};

Schema* HasuraMetadataTest::schema_ = nullptr;
std::vector<TrackedTable>* HasuraMetadataTest::tables_ = nullptr;

TEST_F(HasuraMetadataTest, UsesConfigV3LayoutWithOnePostgresSource) {
  EXPECT_EQ(YAML::LoadFile((kMetadataDir / "version.yaml").string())["version"].as<int>(), 3);
  YAML::Node databases = YAML::LoadFile((kMetadataDir / "databases/databases.yaml").string());
  ASSERT_EQ(databases.size(), 1u);
  EXPECT_EQ(databases[0]["name"].as<std::string>(), "default");
  EXPECT_EQ(databases[0]["kind"].as<std::string>(), "postgres");
  // The chart sets this variable in the Hasura pod from a Secret; the URL is never inline.
  EXPECT_EQ(databases[0]["configuration"]["connection_info"]["database_url"]["from_env"]
                .as<std::string>(),
            "HASURA_GRAPHQL_DATABASE_URL");
  for (const char* f : {"actions.yaml", "actions.graphql", "allow_list.yaml", "cron_triggers.yaml",
                        "inherited_roles.yaml", "query_collections.yaml", "remote_schemas.yaml",
                        "rest_endpoints.yaml", "databases/default/functions/functions.yaml"}) {
    EXPECT_TRUE(fs::exists(kMetadataDir / f)) << f;
  }
}

TEST_F(HasuraMetadataTest, TracksExactlyTheTablesOfTheMigratedSchema) {
  std::set<std::string> tracked;
  for (const auto& t : *tables_) {
    SCOPED_TRACE(t.file);
    EXPECT_TRUE(tracked.insert(t.name).second) << t.name << " is tracked twice";
    EXPECT_TRUE(schema_->columns.count(t.name)) << t.name << " does not exist in the database";
    EXPECT_EQ(t.file, "synaps_" + t.node["table"]["name"].as<std::string>() + ".yaml");
  }
  for (const auto& [table, columns] : schema_->columns) {
    EXPECT_TRUE(tracked.count(table))
        << table << " exists in the schema but is not in deploy/hasura/metadata: add "
        << "databases/default/tables/" << table.substr(table.find('.') + 1) << ".yaml (prefixed "
        << "synaps_) to tables.yaml, with select permissions for role user if tenants may read it";
  }
}

TEST_F(HasuraMetadataTest, RelationshipsFollowExistingForeignKeys) {
  ResolveRelationships();
  auto expect = [&](const std::string& table, const std::string& rel, const std::string& target,
                    bool array) {
    const TrackedTable* t = Find(table);
    ASSERT_NE(t, nullptr) << table;
    auto it = t->relationships.find(rel);
    ASSERT_NE(it, t->relationships.end()) << table << " has no relationship " << rel;
    EXPECT_EQ(it->second.target, target) << table << "." << rel;
    EXPECT_EQ(it->second.array, array) << table << "." << rel;
  };
  expect("synaps.runs", "tasks", "synaps.tasks", true);
  expect("synaps.runs", "events", "synaps.ledger_events", true);
  expect("synaps.runs", "artifacts", "synaps.artifacts", true);
  expect("synaps.runs", "thread", "synaps.threads", false);
  expect("synaps.threads", "runs", "synaps.runs", true);
  expect("synaps.artifacts", "versions", "synaps.artifact_versions", true);
  expect("synaps.ledger_events", "run", "synaps.runs", false);
  expect("synaps.artifact_versions", "artifact", "synaps.artifacts", false);
}

TEST_F(HasuraMetadataTest, PermissionColumnsAndFiltersExist) {
  ResolveRelationships();
  for (const auto& t : *tables_) {
    SCOPED_TRACE(t.file);
    for (const auto& perm : t.node["select_permissions"]) {
      std::string role = perm["role"].as<std::string>();
      const YAML::Node& p = perm["permission"];
      ASSERT_TRUE(p["columns"].IsSequence()) << role << ": list columns explicitly, not '*'";
      for (const auto& c : p["columns"]) {
        EXPECT_TRUE(HasColumn(t.name, c.as<std::string>()))
            << role << ": no column " << t.name << "." << c.as<std::string>();
      }
      std::set<std::string> variables;
      CheckFilter(p["filter"], t.name, &variables);
      for (const auto& v : variables) {
        EXPECT_TRUE(kSessionVariables.count(v)) << role << ": tokens never carry " << v;
      }
    }
  }
}

TEST_F(HasuraMetadataTest, NonAdminRolesReadOnlyTheirTenant) {
  ResolveRelationships();
  std::set<std::string> readable;
  for (const auto& t : *tables_) {
    SCOPED_TRACE(t.file);
    for (const auto& perm : t.node["select_permissions"]) {
      std::string role = perm["role"].as<std::string>();
      EXPECT_NE(role, "admin") << "admin needs no permissions in Hasura";
      std::set<std::string> variables;
      EXPECT_TRUE(CheckFilter(perm["permission"]["filter"], t.name, &variables))
          << role << " on " << t.name << ": the filter must compare tenant_id with "
          << "X-Hasura-Tenant-Id (directly or through a relationship) on every path";
      if (role == "user") readable.insert(t.name);
    }
  }
  EXPECT_EQ(readable, (std::set<std::string>{"synaps.threads", "synaps.commands", "synaps.runs",
                                             "synaps.tasks", "synaps.ledger_events",
                                             "synaps.artifacts", "synaps.artifact_versions",
                                             "synaps.usage_daily"}));
}

TEST_F(HasuraMetadataTest, NoRoleMayWrite) {
  // Writes go through the Control API, which keeps the queue, ledger and outbox consistent.
  for (const auto& t : *tables_) {
    SCOPED_TRACE(t.file);
    for (const char* kind : {"insert_permissions", "update_permissions", "delete_permissions"}) {
      EXPECT_TRUE(!t.node[kind] || t.node[kind].size() == 0) << t.name << " has " << kind;
    }
    EXPECT_FALSE(t.node["event_triggers"]) << t.name;
  }
}

TEST_F(HasuraMetadataTest, ApiKeyHashesAreNeverExposed) {
  const TrackedTable* keys = Find("synaps.api_keys");
  ASSERT_NE(keys, nullptr);
  for (const auto& perm : keys->node["select_permissions"]) {
    for (const auto& c : perm["permission"]["columns"]) {
      EXPECT_NE(c.as<std::string>(), "hash") << perm["role"].as<std::string>();
    }
    EXPECT_FALSE(perm["permission"]["columns"].IsScalar()) << "'*' would include hash";
  }
}

TEST_F(HasuraMetadataTest, RunsAndEventsSupportSubscriptions) {
  for (const char* table : {"synaps.runs", "synaps.ledger_events"}) {
    const TrackedTable* t = Find(table);
    ASSERT_NE(t, nullptr) << table;
    bool found = false;
    for (const auto& perm : t->node["select_permissions"]) {
      if (perm["role"].as<std::string>() != "user") continue;
      found = true;
      const YAML::Node& p = perm["permission"];
      EXPECT_TRUE(p["allow_aggregations"] && p["allow_aggregations"].as<bool>()) << table;
      // Absent means every root field, subscriptions and streaming included.
      if (p["subscription_root_fields"]) {
        std::set<std::string> fields;
        for (const auto& f : p["subscription_root_fields"]) fields.insert(f.as<std::string>());
        EXPECT_TRUE(fields.count("select") && fields.count("select_stream")) << table;
      }
    }
    EXPECT_TRUE(found) << table << " has no select permission for user";
  }
  // A streaming subscription needs an ordered cursor column the role can read.
  const TrackedTable* events = Find("synaps.ledger_events");
  std::set<std::string> columns;
  for (const auto& c : events->node["select_permissions"][0]["permission"]["columns"]) {
    columns.insert(c.as<std::string>());
  }
  EXPECT_TRUE(columns.count("seq") && columns.count("id") && columns.count("run_id"));
}

TEST_F(HasuraMetadataTest, InheritedRolesBuildOnTheUserRole) {
  YAML::Node inherited = YAML::LoadFile((kMetadataDir / "inherited_roles.yaml").string());
  std::set<std::string> names;
  for (const auto& r : inherited) {
    names.insert(r["role_name"].as<std::string>());
    for (const auto& base : r["role_set"]) EXPECT_EQ(base.as<std::string>(), "user");
  }
  EXPECT_EQ(names, (std::set<std::string>{"operator", "viewer"}));
}

}  // namespace
}  // namespace synaps
