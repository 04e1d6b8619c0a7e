// The runs list's text search against a real PostgreSQL (src/store/run_list.h): a window of the
// newest runs read one by one, then the trigram index for the older ones. Each search is checked
// against the plain answer (every run of the tenant walked in list order), across the window's
// edge, page by page, for every tenant and for the bulk actions' run ids.
#include "store/run_list.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/pg.h"
#include "support/test_stack.h"

namespace synaps::store {
namespace {

using nlohmann::json;
using Ids = std::vector<std::string>;

// More runs than the search's window (2,000), so a search has matches on both sides of it.
constexpr int kRuns = 2300;

// `count` one-task prompt commands of `tenant`, each "job <n> haystack", in one statement.
void SubmitMany(db::Connection& conn, const std::string& tenant, int count) {
  testing::QueryText(
      conn,
      "SELECT count(synaps.submit_command($1, 'test', NULL, md5($1 || g),"
      " jsonb_build_object('kind', 'prompt', 'payload', jsonb_build_object('input',"
      "   jsonb_build_object('text', 'job ' || g || ' haystack')),"
      " 'tasks', jsonb_build_array(jsonb_build_object('name', 'main', 'kind', 'prompt',"
      "   'spec', jsonb_build_object('input', jsonb_build_object('text', 'job ' || g)))))))"
      " FROM generate_series(1, $2::integer) g",
      {tenant, std::to_string(count)});
}

// Puts `words` into the input text of the tenant's run at `place` in list order (0 = newest).
std::string MarkRun(db::Connection& conn, const std::string& tenant, int place,
                    const std::string& words) {
  return testing::QueryText(
      conn,
      "WITH r AS (SELECT id, command_id FROM synaps.runs WHERE tenant_id = $1"
      "           ORDER BY created_at DESC, id DESC OFFSET $2::integer LIMIT 1)"
      " UPDATE synaps.commands c SET payload = jsonb_set(c.payload, '{input,text}',"
      "   to_jsonb(c.payload#>>'{input,text}' || ' ' || $3)) FROM r WHERE c.id = r.command_id"
      " RETURNING r.id",
      {tenant, std::to_string(place), words});
}

// The plain answer: every run of `tenant` (every tenant when empty) whose payload contains
// `text` in any case, walked in list order.
Ids Walked(db::Connection& conn, const std::string& tenant, const std::string& text) {
  auto r = conn.Exec(
      "SELECT r.id FROM synaps.runs r JOIN synaps.commands c ON c.id = r.command_id"
      " WHERE ($1::text IS NULL OR r.tenant_id = $1)"
      "   AND strpos(lower(c.payload::text), lower($2)) > 0"
      " ORDER BY r.created_at DESC, r.id DESC",
      {tenant.empty() ? std::nullopt : std::optional(tenant), text});
  EXPECT_TRUE(r) << r.error().message;
  Ids ids;
  for (int i = 0; r && i < r->rows(); ++i) ids.push_back(r->GetString(i, 0));
  return ids;
}

// Every page of ListRuns for `text`, `limit` per page, concatenated.
Ids Listed(db::Connection& conn, const std::string& tenant, const std::string& text, int limit,
           int max_pages = 1000) {
  RunFilter filter;
  filter.text = text;
  filter.limit = limit;
  Ids ids;
  for (int page = 0; page < max_pages; ++page) {
    auto r = ListRuns(conn, tenant, filter);
    EXPECT_TRUE(r) << r.error().message;
    if (!r) break;
    for (const auto& item : (*r)["items"]) ids.push_back(item["id"]);
    EXPECT_LE((*r)["items"].size(), static_cast<size_t>(limit));
    if (!r->contains("nextCursor")) break;
    filter.cursor = (*r)["nextCursor"].get<std::string>();
  }
  return ids;
}

class RunListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    conn_ = testing::Connect(testing::TestStack::Get().FreshDatabase());
    SubmitMany(conn_, "a", kRuns);
    SubmitMany(conn_, "b", 50);
    // "needle": inside the window (places 10 and 700), past it (2,250, found through the index),
    // and one of tenant b's runs.
    for (int place : {10, 700, 2250}) needles_.push_back(MarkRun(conn_, "a", place, "Needle"));
    MarkRun(conn_, "b", 5, "needle");
    testing::QueryText(conn_, "ANALYZE synaps.commands");
  }

  db::Connection conn_;
  Ids needles_;  // tenant a's, newest first
};

TEST_F(RunListTest, RareWordsAreFoundOnBothSidesOfTheWindowPageByPage) {
  ASSERT_EQ(Walked(conn_, "a", "needle"), needles_);
  for (int limit : {1, 2, 3, 50}) {
    EXPECT_EQ(Listed(conn_, "a", "nEEDLE", limit), needles_) << "limit " << limit;
  }
  // Every tenant (the installation scope): tenant b's needle too, in list order.
  EXPECT_EQ(Listed(conn_, "", "needle", 2), Walked(conn_, "", "needle"));
  EXPECT_EQ(Listed(conn_, "", "needle", 2).size(), 4u);
}

TEST_F(RunListTest, CommonWordsFillTheirPagesFromTheNewestRuns) {
  Ids walked = Walked(conn_, "a", "haystack");
  ASSERT_EQ(walked.size(), static_cast<size_t>(kRuns));
  Ids first_pages = Listed(conn_, "a", "haystack", 50, 3);
  EXPECT_EQ(first_pages, Ids(walked.begin(), walked.begin() + 150));
  // Paging across the window's edge (runs 2,000 and after): 500 a page, every run once.
  EXPECT_EQ(Listed(conn_, "a", "HAYSTACK", 500), walked);
}

TEST_F(RunListTest, WordsWithoutATrigramAndLikeWildcardsAreSearchedLiterally) {
  // "Ne" and "--" have no trigram to look up: walked, with the same answer.
  EXPECT_EQ(Listed(conn_, "a", "ne", 100), Walked(conn_, "a", "ne"));
  EXPECT_EQ(Listed(conn_, "a", "--", 10), Ids{});
  // LIKE's wildcards and escape are characters like any other.
  EXPECT_EQ(Listed(conn_, "a", "need_e", 10), Ids{});
  EXPECT_EQ(Listed(conn_, "a", "job 1%", 10), Ids{});
  EXPECT_EQ(Listed(conn_, "a", "job 12 hay", 10), Walked(conn_, "a", "job 12 hay"));
  EXPECT_EQ(Listed(conn_, "a", "job 12 hay", 10).size(), 1u);
}

TEST_F(RunListTest, TheIndexAnswersOnlyWhatTheTenantMayRead) {
  EXPECT_EQ(Listed(conn_, "b", "needle", 10), Walked(conn_, "b", "needle"));
  EXPECT_EQ(Listed(conn_, "b", "needle", 10).size(), 1u);
  EXPECT_EQ(Listed(conn_, "c", "needle", 10), Ids{});
  // Past the window, the matches come from the trigram index (synaps.commands_matching), read
  // through it whatever the statistics say, and no more than asked for.
  ASSERT_TRUE(conn_.Exec("BEGIN"));
  EXPECT_EQ(testing::QueryText(
                conn_, "SELECT count(*) FROM synaps.commands_matching('a', 'needle', 100)"),
            "3");
  EXPECT_EQ(testing::QueryText(conn_,
                               "SELECT pg_stat_get_xact_numscans("
                               "'synaps.commands_payload_trgm'::regclass)"),
            "1");
  ASSERT_TRUE(conn_.Exec("COMMIT"));
  EXPECT_EQ(testing::QueryText(
                conn_, "SELECT count(*) FROM synaps.commands_matching(NULL, 'eed', 100)"),
            "4");
  EXPECT_EQ(testing::QueryText(
                conn_, "SELECT count(*) FROM synaps.commands_matching(NULL, 'haystack', 10)"),
            "10");
}

TEST_F(RunListTest, CommonWordsWithARareFilterWalkPastTheIndexCap) {
  // More than 5,000 commands contain "haystack": the index is not asked to list them all; the
  // runs older than the window are walked instead, and the two failed ones are found.
  SubmitMany(conn_, "c", 5100);
  Ids failed;
  for (int place : {3000, 4000}) {
    failed.push_back(testing::QueryText(
        conn_,
        "UPDATE synaps.runs SET status = 'failed' WHERE id = (SELECT id FROM synaps.runs"
        " WHERE tenant_id = 'c' ORDER BY created_at DESC, id DESC OFFSET $1::integer LIMIT 1)"
        " RETURNING id",
        {std::to_string(place)}));
  }
  RunFilter filter;
  filter.text = "haystack";
  filter.status = "failed";
  auto page = ListRuns(conn_, "c", filter);
  ASSERT_TRUE(page) << page.error().message;
  Ids ids;
  for (const auto& item : (*page)["items"]) ids.push_back(item["id"]);
  EXPECT_EQ(ids, failed);
}

TEST_F(RunListTest, BulkActionsByTextReachEveryMatchingUnfinishedRun) {
  RunFilter filter;
  filter.text = "needle";
  auto ids = UnfinishedRunIds(conn_, "a", filter, 1000);
  ASSERT_TRUE(ids) << ids.error().message;
  EXPECT_EQ(*ids, needles_);
  auto capped = UnfinishedRunIds(conn_, "a", filter, 2);
  ASSERT_TRUE(capped) << capped.error().message;
  EXPECT_EQ(*capped, Ids(needles_.begin(), needles_.begin() + 2));
}

}  // namespace
}  // namespace synaps::store
