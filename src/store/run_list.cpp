#include "store/run_list.h"

#include <cctype>

#include "store/detail/json_column.h"

namespace synaps::store {

using nlohmann::json;

namespace {

// The list's summary adds what the command said: kind, tags and the first words of the input.
constexpr const char* kListedRun =
    "jsonb_build_object('id', r.id, 'status', r.status, 'commandId', r.command_id,"
    " 'threadId', r.thread_id, 'createdAt', r.created_at, 'startedAt', r.started_at,"
    " 'finishedAt', r.finished_at, 'error', r.error, 'tenantId', r.tenant_id, 'kind', c.kind,"
    " 'schedule', (SELECT jsonb_build_object('name', f.schedule, 'version', f.version,"
    " 'fireTime', f.fire_time, 'origin', f.origin) FROM synaps.schedule_fires f"
    " WHERE f.run_id = r.id),"
    " 'tags', coalesce(c.payload->'tags', '[]'::jsonb),"
    " 'title', left(coalesce(c.payload#>>'{input,text}', c.payload->>'prompt',"
    "                         c.payload->>'agent', ''), 120))";

// A run's place in the list, as a cursor spells it: created_at to the microsecond, in UTC.
constexpr const char* kCreatedAtText =
    "to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

// Where the rows come from, then the filter over runs r JOIN commands c; parameters $1..$11.
// kOneTenant reads the tenant's runs (r.tenant_id = $1, on the tenant's index); kEveryTenant
// every tenant's ($1 NULL: a separate statement, so the tenant's plan never weighs the
// every-tenant case); MatchedIds the runs of the commands an array parameter lists (found by
// the trigram index), of the tenant $1 or of every tenant.
// `text` ($5) is a substring of lower(payload::text), tested with strpos, which no index serves:
// only synaps.commands_matching (migration 0042) reads the trigram index, so no plan of this
// filter hangs on an estimate of how many commands contain the text. `metadata` is a
// containment the index commands_metadata serves.
constexpr const char* kOneTenant =
    " FROM synaps.runs r JOIN synaps.commands c ON c.id = r.command_id WHERE r.tenant_id = $1";
constexpr const char* kEveryTenant =
    " FROM synaps.runs r JOIN synaps.commands c ON c.id = r.command_id WHERE $1::text IS NULL";
std::string MatchedIds(int param) {
  return " FROM unnest($" + std::to_string(param) +
         "::uuid[]) m(id) JOIN synaps.commands c ON c.id = m.id"
         " JOIN synaps.runs r ON r.command_id = c.id WHERE ($1::text IS NULL OR r.tenant_id = $1)";
}
constexpr const char* kRunFilterWhere =
    " AND ($2::uuid IS NULL OR r.thread_id = $2::uuid)"
    " AND ($3::text IS NULL OR r.status = $3)"
    " AND ($4::text IS NULL OR c.kind = $4)"
    " AND ($5::text IS NULL OR strpos(lower(c.payload::text), lower($5::text)) > 0)"
    " AND ($6::timestamptz IS NULL OR r.created_at >= $6::timestamptz)"
    " AND ($7::timestamptz IS NULL OR r.created_at < $7::timestamptz)"
    " AND ($8::text IS NULL OR c.payload->'tags' ? $8)"
    " AND ($9::text IS NULL OR EXISTS (SELECT 1 FROM synaps.schedule_fires f"
    "      WHERE f.run_id = r.id AND f.schedule = $9))"
    " AND ($10::jsonb IS NULL OR c.payload->'metadata' @> $10::jsonb"
    "      OR c.payload->'metadata' @> $11::jsonb)";

// How many of the newest runs a text search reads one by one before it asks the trigram index
// for the older ones. Reading one costs a few microseconds (its command's payload as text,
// lowercased, searched), so the window costs a few milliseconds; words on at least one run in
// 40 fill a page of 50 inside it. Larger windows make rare words slower, smaller ones send
// common words to the index, whose cost grows with their matches.
constexpr int kTextWindow = 2000;

// The most commands the trigram index may list for one search. Words in more commands are
// common enough that walking the runs from the window on finds a page sooner than looking up
// every match (and the lookups would grow with the history).
constexpr int kMaxIndexMatches = 5000;

// Whether pg_trgm finds a trigram to look up in `text`: a run of at least three letters or
// digits (a byte of a multibyte character counts once, at its lead byte). Without one the
// trigram index would be read whole and every command checked, so such a search ("ab", "--")
// walks the runs, as every search without text does.
bool HasIndexedWord(const std::string& text) {
  int run = 0;
  for (unsigned char ch : text) {
    if (ch >= 0x80 && ch < 0xC0) continue;  // a continuation byte
    run = (std::isalnum(ch) || ch >= 0xC0) ? run + 1 : 0;
    if (run >= 3) return true;
  }
  return false;
}

db::Params FilterParams(const std::string& tenant_id, const RunFilter& f) {
  std::optional<std::string> tenant, metadata, metadata_scalar;
  if (!tenant_id.empty()) tenant = tenant_id;
  if (f.metadata_key && f.metadata_value) {
    metadata = json{{*f.metadata_key, *f.metadata_value}}.dump();
    json scalar = json::parse(*f.metadata_value, nullptr, false);
    if (!scalar.is_discarded() && (scalar.is_number() || scalar.is_boolean() || scalar.is_null())) {
      metadata_scalar = json{{*f.metadata_key, scalar}}.dump();
    }
  }
  return {tenant,           f.thread_id, f.status,   f.kind,   f.text,         f.created_after,
          f.created_before, f.tag,       f.schedule, metadata, metadata_scalar};
}

bool SearchesText(const RunFilter& f) { return f.text && HasIndexedWord(*f.text); }

// A search (text or metadata) is planned for its values each time (an unnamed statement): a
// prepared statement's generic plan cannot tell a rare metadata value, best found through its
// index, from a common one, best found walking the newest runs.
Result<db::PgResult> ExecFilter(db::Connection& conn, const RunFilter& f, const std::string& name,
                                const std::string& sql, const db::Params& params) {
  if (f.text || f.metadata_key) return conn.Exec(sql, params);
  return conn.ExecPrepared(name, sql, params);
}

// A position in the list: (created_at as kCreatedAtText spells it, id).
struct ListPlace {
  std::string created_at;
  std::string id;
};

// The oldest run of the window of `kTextWindow` runs that follow `after` (the newest when
// absent), of the tenant or of every tenant; nullopt when fewer runs follow: the window holds
// them all.
Result<std::optional<ListPlace>> TextWindowEnd(db::Connection& conn, const std::string& tenant_id,
                                               const std::optional<ListPlace>& after) {
  std::optional<std::string> tenant, after_time, after_id;
  if (!tenant_id.empty()) tenant = tenant_id;
  if (after) after_time = after->created_at, after_id = after->id;
  ASSIGN_OR_RETURN(
      auto r, conn.ExecPrepared(
                  tenant ? "runs_text_window" : "runs_text_window_every_tenant",
                  std::string("SELECT ") + kCreatedAtText + ", r.id FROM synaps.runs r WHERE " +
                      (tenant ? "r.tenant_id = $1" : "$1::text IS NULL") +
                      " AND ($2::timestamptz IS NULL OR (r.created_at, r.id) <"
                      " ($2::timestamptz, $3::uuid))"
                      " ORDER BY r.created_at DESC, r.id DESC OFFSET $4::integer LIMIT 1",
                  {tenant, after_time, after_id, std::to_string(kTextWindow - 1)}));
  if (r.rows() == 0) return std::nullopt;
  return ListPlace{r.GetString(0, 0), r.GetString(0, 1)};
}

// The ids of the commands (of the tenant, or of every tenant) whose payload contains `text`, as
// the trigram index lists them (synaps.commands_matching), as a PostgreSQL array literal;
// nullopt when there are more than kMaxIndexMatches.
Result<std::optional<std::string>> IndexMatches(db::Connection& conn, const std::string& tenant_id,
                                                const std::string& text) {
  std::optional<std::string> tenant;
  if (!tenant_id.empty()) tenant = tenant_id;
  ASSIGN_OR_RETURN(
      auto r, conn.ExecPrepared("commands_matching",
                                "SELECT count(*), coalesce(array_agg(m)::text, '{}')"
                                " FROM synaps.commands_matching($1::text, $2::text, $3::integer) m",
                                {tenant, text, std::to_string(kMaxIndexMatches + 1)}));
  if (std::stoll(r.GetString(0, 0)) > kMaxIndexMatches) return std::nullopt;
  return r.GetString(0, 1);
}

// Where a page's rows come from: kOneTenant or kEveryTenant (walking the runs, newest first), or
// the commands `ids` lists (MatchedIds).
struct RowSource {
  std::optional<std::string> ids;  // a uuid[] literal
};

// One page of runs: those after `after` and not older than `until` (both optional), newest
// first, at most `limit`; rows of (summary, created_at text).
Result<db::PgResult> ListPage(db::Connection& conn, const std::string& tenant_id,
                              const RunFilter& f, const RowSource& source,
                              const std::optional<ListPlace>& after,
                              const std::optional<ListPlace>& until, int limit) {
  bool every = tenant_id.empty();
  constexpr const char* kBounds =
      " AND ($12::timestamptz IS NULL OR (r.created_at, r.id) < ($12::timestamptz, $13::uuid))"
      " AND ($14::timestamptz IS NULL OR (r.created_at, r.id) >= ($14::timestamptz, $15::uuid))";
  std::string sql;
  if (source.ids) {
    // The matches are read first, whole, then sorted: behind the CTE's fence the planner cannot
    // trade the lookups of the listed commands for a walk of the runs index that the ORDER BY
    // and LIMIT invite (the same estimate problem as before 0042).
    sql = std::string("WITH m AS MATERIALIZED (SELECT ") + kListedRun + " AS run, " +
          kCreatedAtText + " AS at_text, r.created_at, r.id" + MatchedIds(17) + kRunFilterWhere +
          kBounds +
          ") SELECT run, at_text FROM m ORDER BY created_at DESC, id DESC LIMIT $16::integer";
  } else {
    sql = std::string("SELECT ") + kListedRun + ", " + kCreatedAtText +
          (every ? kEveryTenant : kOneTenant) + kRunFilterWhere + kBounds +
          " ORDER BY r.created_at DESC, r.id DESC LIMIT $16::integer";
  }
  db::Params params = FilterParams(tenant_id, f);
  for (const auto* place : {&after, &until}) {
    params.push_back(*place ? std::optional((*place)->created_at) : std::nullopt);
    params.push_back(*place ? std::optional((*place)->id) : std::nullopt);
  }
  params.push_back(std::to_string(limit));
  if (source.ids) params.push_back(source.ids);
  return ExecFilter(conn, f, every ? "list_runs_every_tenant" : "list_runs_filtered", sql, params);
}

// A text search's page: the window of newest runs walked first; then, when the page is not full,
// the older runs among the trigram index's matches, or walked when the words are too common for
// the index (more than kMaxIndexMatches). Both parts are in list order, so together they are
// exactly the page a single walk of every run would give.
Result<db::PgResult> TextSearchPage(db::Connection& conn, const std::string& tenant_id,
                                    const RunFilter& f, const std::optional<ListPlace>& after,
                                    std::vector<db::PgResult>& parts) {
  ASSIGN_OR_RETURN(std::optional<ListPlace> window_end, TextWindowEnd(conn, tenant_id, after));
  ASSIGN_OR_RETURN(db::PgResult newest,
                   ListPage(conn, tenant_id, f, RowSource{}, after, window_end, f.limit));
  if (!window_end || newest.rows() >= f.limit) return newest;
  int rest = f.limit - newest.rows();
  ASSIGN_OR_RETURN(std::optional<std::string> ids, IndexMatches(conn, tenant_id, *f.text));
  // The window's oldest run was read already: the older part starts strictly after it.
  ASSIGN_OR_RETURN(db::PgResult older,
                   ListPage(conn, tenant_id, f, RowSource{ids}, window_end, std::nullopt, rest));
  parts.push_back(std::move(newest));
  return older;
}

// Appends the rows of `r` (summary, created_at text) to `items`; the last row's place in `last`.
Status AppendRows(const db::PgResult& r, json& items, std::optional<ListPlace>& last) {
  for (int i = 0; i < r.rows(); ++i) {
    ASSIGN_OR_RETURN(json item, detail::ParseColumn(r.Get(i, 0), "a run of the list"));
    last = ListPlace{r.GetString(i, 1), item["id"].get<std::string>()};
    items.push_back(std::move(item));
  }
  return {};
}

}  // namespace

Result<json> ListRuns(db::Connection& conn, const std::string& tenant_id, const RunFilter& f) {
  // The cursor is "<created_at>|<id>" of the last row of the previous page (keyset paging).
  std::optional<ListPlace> after;
  if (f.cursor) {
    size_t bar = f.cursor->find('|');
    if (bar == std::string::npos) {
      return Fail(ErrorCode::kInvalidArgument, "cursor: malformed", "cursor");
    }
    after = ListPlace{f.cursor->substr(0, bar), f.cursor->substr(bar + 1)};
  }
  std::vector<db::PgResult> parts;
  auto r = SearchesText(f)
               ? TextSearchPage(conn, tenant_id, f, after, parts)
               : ListPage(conn, tenant_id, f, RowSource{}, after, std::nullopt, f.limit);
  if (!r) {
    if (r.error().code == ErrorCode::kInvalidArgument) {
      return Fail(ErrorCode::kInvalidArgument, f.cursor ? "cursor: malformed" : r.error().message,
                  f.cursor ? "cursor" : "");
    }
    return std::unexpected(r.error());
  }
  parts.push_back(std::move(*r));
  json items = json::array();
  std::optional<ListPlace> last;
  for (const auto& part : parts) RETURN_IF_ERROR(AppendRows(part, items, last));
  json out = {{"items", items}};
  if (static_cast<int>(items.size()) == f.limit && f.limit > 0 && last) {
    out["nextCursor"] = last->created_at + "|" + last->id;
  }
  return out;
}

Result<std::vector<std::string>> UnfinishedRunIds(db::Connection& conn,
                                                  const std::string& tenant_id, const RunFilter& f,
                                                  int limit) {
  // Every match is wanted (up to `limit`): a text search reads the index's matches alone, unless
  // the words are too common for the index.
  std::optional<std::string> matched;
  if (SearchesText(f)) {
    ASSIGN_OR_RETURN(matched, IndexMatches(conn, tenant_id, *f.text));
  }
  constexpr const char* kUnfinished = " AND r.status IN ('queued', 'running', 'awaiting_approval')";
  std::string sql = matched
                        ? "WITH m AS MATERIALIZED (SELECT r.id, r.created_at" + MatchedIds(13) +
                              kRunFilterWhere + kUnfinished +
                              ") SELECT id FROM m ORDER BY created_at DESC, id DESC"
                              " LIMIT $12::integer"
                        : std::string("SELECT r.id") + kOneTenant + kRunFilterWhere + kUnfinished +
                              " ORDER BY r.created_at DESC, r.id DESC LIMIT $12::integer";
  db::Params params = FilterParams(tenant_id, f);
  params.push_back(std::to_string(limit));
  if (matched) params.push_back(matched);
  ASSIGN_OR_RETURN(auto r, ExecFilter(conn, f, "unfinished_run_ids", sql, params));
  std::vector<std::string> ids;
  for (int i = 0; i < r.rows(); ++i) ids.push_back(r.GetString(i, 0));
  return ids;
}

}  // namespace synaps::store
