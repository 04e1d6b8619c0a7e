// Provider rate limits shared by every worker (docs/flow-control.md), with real processes:
// `synaps api`, three `synaps worker`s, PostgreSQL and NATS. The provider is a fake
// OpenAI-compatible server (tests/support/fake_openai.h): providers are paid outside services.
// The fake notes when each request arrived; the limits are judged from those times.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/cluster.h"
#include "support/fake_openai.h"
#include "support/synaps_process.h"

namespace synaps {
namespace {

using nlohmann::json;
using testing::Cluster;
using testing::Eventually;
using testing::FakeOpenAi;
using testing::FakeReply;
using testing::FakeRequest;
using Clock = std::chrono::system_clock;

void Put(Cluster& c, const std::string& name, const json& spec) {
  auto r =
      c.Call("PUT", "/v1/control/routes/" + name, json{{"spec", spec}, {"reason", "test"}}.dump());
  ASSERT_EQ(r.status / 100, 2) << r.body;
}

// Arrival times of the fake's requests (its handler runs on the fake's thread).
class Arrivals {
 public:
  void Note() {
    std::lock_guard lock(mu_);
    times_.push_back(Clock::now());
  }
  std::vector<Clock::time_point> Times() const {
    std::lock_guard lock(mu_);
    return times_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Clock::time_point> times_;
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Calls in windows holding more than the limit: a route of one call a second admits no more
// than W + 1 calls in any window of W seconds. The times are when the fake received them, so a
// call may arrive up to `jitter` after its slot (its worker's timer and the HTTP request).
int WindowsOverLimit(std::vector<Clock::time_point> times, double jitter = 0.25) {
  std::sort(times.begin(), times.end());
  int over = 0;
  for (size_t i = 0; i < times.size(); ++i) {
    for (size_t j = i + 1; j < times.size(); ++j) {
      const double window = Seconds(times[j] - times[i]);
      const int calls = static_cast<int>(j - i + 1);
      if (calls > static_cast<int>(window + jitter) + 1) {
        if (++over <= 3) ADD_FAILURE() << calls << " calls within " << window << " s";
      }
    }
  }
  return over;
}

// Submits `n` prompts on route `route` in one batch; returns their run ids.
std::vector<std::string> SubmitMany(Cluster& c, const std::string& route, int n) {
  json commands = json::array();
  for (int i = 0; i < n; ++i) {
    commands.push_back({{"kind", "prompt"},
                        {"route", route},
                        {"input", {{"text", "question " + std::to_string(i)}}}});
  }
  auto r = c.Call("POST", "/v1/commands/submit", json{{"commands", commands}}.dump());
  EXPECT_EQ(r.status, 200) << r.body;
  const json answer = json::parse(r.body);
  EXPECT_EQ(answer["created"], n) << r.body;
  std::vector<std::string> ids;
  for (const auto& item : answer["results"]) ids.push_back(item["runId"]);
  return ids;
}

int CountEvents(Cluster& c, const std::string& type, const std::string& reason) {
  return static_cast<int>(
      c.Scalar("SELECT count(*) FROM synaps.ledger_events WHERE type = $1 AND data->>'reason' = $2",
               {type, reason}));
}

TEST(RateLimitsTest, ThreeWorkersHoldARouteTo60RequestsPerMinute) {
  // 26 tasks at once on a route limited to 60 requests per minute, three workers with 128 slots
  // each: without the shared limit all 26 calls would go out in the first second. With it the
  // calls are one second apart, whichever worker makes them: no window of W seconds holds more
  // than W + 1 of them. Measured over the ~25 s the batch takes (a scaled-down minute; the
  // limiter's spacing is the same at any length).
  Arrivals arrivals;
  FakeOpenAi fake([&](const FakeRequest&, int) {
    arrivals.Note();
    return FakeOpenAi::Completion("ok");
  });
  Cluster c(std::map<std::string, std::string>{{"SYNAPS_POLL_INTERVAL_MS", "100"}});
  c.StartApi();
  Put(c, "limited",
      {{"provider", "openai-compatible"},
       {"baseUrl", fake.base_url()},
       {"model", "m"},
       {"limits", {{"requestsPerMinute", 60}}}});
  for (int i = 0; i < 3; ++i) c.StartWorker();
  constexpr int kTasks = 26;
  auto runs = SubmitMany(c, "limited", kTasks);
  ASSERT_EQ(runs.size(), static_cast<size_t>(kTasks));
  for (const auto& id : runs) ASSERT_EQ(c.WaitFinished(id, 90)["status"], "succeeded");

  auto times = arrivals.Times();
  ASSERT_EQ(times.size(), static_cast<size_t>(kTasks));
  std::sort(times.begin(), times.end());
  const double span = Seconds(times.back() - times.front());
  // The limit: 26 calls need at least 25 intervals of one second (a little slack for the
  // clock of the database against the fake's).
  EXPECT_GE(span, 24.5) << "more than 60 requests per minute";
  // Any window holds at most its length in seconds, plus one.
  EXPECT_EQ(WindowsOverLimit(times), 0);
  // ... and the limit is used, not undershot by much: work waits in the queue for its slot and
  // is claimed when the slot comes (poll 100 ms).
  EXPECT_LE(span, 32.0) << "the route's rate was wasted";
  std::printf("[ measure  ] %d calls by 3 workers in %.1f s at 60/min (ideal %d s)\n", kTasks, span,
              kTasks - 1);
  // Tasks waited in the queue, not in workers' slots, and said so.
  EXPECT_GT(CountEvents(c, "task.waiting", "rateLimit"), kTasks / 2);
  EXPECT_EQ(c.Scalar("SELECT count(*) FROM synaps.tasks WHERE attempt <> 1"), 0)
      << "a wait for the rate limit is not an attempt";
  json waited = c.WaitFinished(runs.back());
  bool said = false;
  for (const auto& e : waited["events"]) {
    said = said || (e["type"] == "task.waiting" && e["data"]["reason"] == "rateLimit" &&
                    e["data"]["route"] == "limited");
  }
  EXPECT_TRUE(said) << waited["events"].dump();
}

TEST(RateLimitsTest, A429RetryAfterHoldsBackEveryWorker) {
  // The provider answers the first call 429 with Retry-After: 3. The worker that got it waits
  // inside its call; the other two workers must wait too: no request reaches the provider
  // before the time it named.
  Arrivals arrivals;
  FakeOpenAi fake([&](const FakeRequest&, int index) {
    arrivals.Note();
    if (index == 0) {
      FakeReply r = FakeOpenAi::Error(429, "slow down", "rate_limit_exceeded");
      r.headers.push_back({"Retry-After", "3"});
      return r;
    }
    return FakeOpenAi::Completion("ok");
  });
  Cluster c(std::map<std::string, std::string>{{"SYNAPS_POLL_INTERVAL_MS", "100"}});
  c.StartApi();
  // limits: {} sets no rate; it shares the provider's Retry-After among the workers.
  Put(c, "shared",
      {{"provider", "openai-compatible"},
       {"baseUrl", fake.base_url()},
       {"model", "m"},
       {"limits", json::object()}});
  for (int i = 0; i < 3; ++i) c.StartWorker();
  auto first = SubmitMany(c, "shared", 1);
  ASSERT_TRUE(Eventually([&] {
    return c.Scalar(
               "SELECT count(*) FROM synaps.rate_limits"
               " WHERE route = 'shared' AND blocked_until > now()") == 1;
  })) << "the 429 was not shared";
  const auto blocked_until = Clock::time_point(std::chrono::microseconds(c.Scalar(
      "SELECT (extract(epoch FROM blocked_until) * 1000000)::bigint FROM synaps.rate_limits"
      " WHERE route = 'shared'")));
  auto more = SubmitMany(c, "shared", 9);
  for (const auto& id : more) ASSERT_EQ(c.WaitFinished(id, 60)["status"], "succeeded");
  ASSERT_EQ(c.WaitFinished(first[0], 60)["status"], "succeeded");

  auto times = arrivals.Times();
  ASSERT_EQ(times.size(), 11u);  // the 429, its retry, nine others
  std::sort(times.begin(), times.end());
  for (size_t i = 1; i < times.size(); ++i) {
    EXPECT_GE(times[i], blocked_until - std::chrono::milliseconds(50))
        << "request " << i << " went out " << Seconds(blocked_until - times[i])
        << " s before the provider's Retry-After ran out";
  }
  EXPECT_GT(CountEvents(c, "task.waiting", "rateLimit"), 0);
}

TEST(RateLimitsTest, AProvidersRetryTakesASlotLikeAnyCall) {
  // A route of 60 requests per minute; the provider answers the first request 429 with
  // Retry-After: 1. The call retries inside the worker; that retry is a request too, so it
  // takes the route's next slot like the other workers' calls: six requests (the 429, its
  // retry, four more tasks) one second apart, never two at the moment the block ends.
  Arrivals arrivals;
  FakeOpenAi fake([&](const FakeRequest&, int index) {
    arrivals.Note();
    if (index == 0) {
      FakeReply r = FakeOpenAi::Error(429, "slow down", "rate_limit_exceeded");
      r.headers.push_back({"Retry-After", "1"});
      return r;
    }
    return FakeOpenAi::Completion("ok");
  });
  Cluster c(std::map<std::string, std::string>{{"SYNAPS_POLL_INTERVAL_MS", "100"}});
  c.StartApi();
  Put(c, "limited",
      {{"provider", "openai-compatible"},
       {"baseUrl", fake.base_url()},
       {"model", "m"},
       {"limits", {{"requestsPerMinute", 60}}}});
  for (int i = 0; i < 3; ++i) c.StartWorker();
  auto runs = SubmitMany(c, "limited", 5);
  for (const auto& id : runs) ASSERT_EQ(c.WaitFinished(id, 60)["status"], "succeeded");
  auto times = arrivals.Times();
  ASSERT_EQ(times.size(), 6u);
  std::sort(times.begin(), times.end());
  EXPECT_EQ(WindowsOverLimit(times), 0) << "the retry went out without a slot";
  EXPECT_GE(Seconds(times.back() - times.front()), 4.8);
  double closest = 1e9;
  for (size_t i = 1; i < times.size(); ++i)
    closest = std::min(closest, Seconds(times[i] - times[i - 1]));
  std::printf(
      "[ measure  ] 6 requests (a 429 and its retry among them) in %.2f s, closest two %.2f s "
      "apart\n",
      Seconds(times.back() - times.front()), closest);
}

// Tenant B submits `b_tasks` tasks one after another (each when the one before reached the
// provider) while tenant A's `backlog` tasks wait for the same route of 60 requests per
// minute; answers how long each of B's calls took to reach the provider after its submit.
std::vector<double> TenantBWaits(int backlog, int b_tasks) {
  Arrivals arrivals;
  std::mutex mu;
  std::map<int, Clock::time_point> b_called;
  FakeOpenAi fake([&](const FakeRequest& request, int) {
    arrivals.Note();
    const std::string marker = "tenant b asks #";
    if (auto at = request.body.find(marker); at != std::string::npos) {
      std::lock_guard lock(mu);
      b_called[std::atoi(request.body.c_str() + at + marker.size())] = Clock::now();
    }
    return FakeOpenAi::Completion("ok");
  });
  Cluster c(std::map<std::string, std::string>{{"SYNAPS_POLL_INTERVAL_MS", "100"}});
  c.StartApi();
  Put(c, "busy",
      {{"provider", "openai-compatible"},
       {"baseUrl", fake.base_url()},
       {"model", "m"},
       {"limits", {{"requestsPerMinute", 60}}}});
  c.StartWorker();
  c.StartWorker();
  auto a = SubmitMany(c, "busy", backlog);
  EXPECT_EQ(a.size(), static_cast<size_t>(backlog));
  // Let A's tasks be claimed and park first.
  EXPECT_TRUE(Eventually(
      [&] { return CountEvents(c, "task.waiting", "rateLimit") >= std::min(backlog / 2, 40); },
      60));
  auto key = c.Call("POST", "/v1/api-keys", json{{"tenantId", "b"}, {"role", "operator"}}.dump());
  EXPECT_EQ(key.status, 201) << key.body;
  const std::string b_token = json::parse(key.body)["token"];
  std::vector<double> waits;
  for (int i = 0; i < b_tasks; ++i) {
    const auto submitted = Clock::now();
    auto b =
        testing::ApiCall("POST", c.base_url() + "/v1/commands/submit", b_token,
                         json{{"kind", "prompt"},
                              {"route", "busy"},
                              {"input", {{"text", "tenant b asks #" + std::to_string(i) + "."}}}}
                             .dump());
    EXPECT_EQ(b.status / 100, 2) << b.body;
    const bool called = Eventually(
        [&] {
          std::lock_guard lock(mu);
          return b_called.count(i) == 1;
        },
        120);
    EXPECT_TRUE(called) << "tenant b's call " << i << " did not go out within 120 s";
    if (!called) break;
    std::lock_guard lock(mu);
    waits.push_back(Seconds(b_called[i] - submitted));
  }
  // Parked waits reserve nothing and say so; the route's limit still holds.
  EXPECT_GT(c.Scalar("SELECT count(*) FROM synaps.ledger_events WHERE type = 'task.waiting'"
                     " AND data->>'reserved' = 'false'"),
            0);
  EXPECT_EQ(WindowsOverLimit(arrivals.Times()), 0);
  return waits;
}

TEST(RateLimitsTest, AnotherTenantsBacklogDoesNotDelayATenantsCalls) {
  // Slots follow the fair claim (migration 0041): parked tasks hold no slot, and each tenant
  // has about one parked task asking per slot, so tenant B's call waits about a slot or two
  // whatever tenant A queued. Before, A's tasks reserved the next 30 s of slots in the order
  // they asked, and B's one call waited 72 s behind 120 of A's tasks (~118 s before 0034).
  std::map<int, std::vector<double>> waits;
  for (int backlog : {60, 120, 240}) {
    waits[backlog] = TenantBWaits(backlog, 6);
    ASSERT_EQ(waits[backlog].size(), 6u);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  for (auto& [backlog, w] : waits) {
    const double worst = *std::max_element(w.begin(), w.end());
    std::printf(
        "[ measure  ] behind %d tasks of tenant a at 60/min: tenant b's calls waited median "
        "%.2f s, max %.2f s (6 calls)\n",
        backlog, median(w), worst);
    EXPECT_LE(worst, 5.0) << "behind " << backlog << " tasks";
  }
  // B's wait does not grow with A's backlog: 4x the backlog, about the same wait.
  EXPECT_LE(median(waits[240]), median(waits[60]) + 1.5);
}

TEST(RateLimitsTest, LimitsAreValidated) {
  Cluster c;
  c.StartApi();
  auto put = [&](const json& limits) {
    return c.Call("PUT", "/v1/control/routes/r",
                  json{{"spec", {{"provider", "local"}, {"model", "echo"}, {"limits", limits}}},
                       {"reason", "test"}}
                      .dump());
  };
  auto bad = put({{"requestsPerMinute", 0}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(json::parse(bad.body)["error"]["field"], "spec.limits.requestsPerMinute");
  bad = put({{"requestsPerMinute", 1.5}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  bad = put({{"burst", 3}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(json::parse(bad.body)["error"]["field"], "spec.limits.burst");
  bad = put(json::array());
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(put({{"requestsPerMinute", 600}, {"tokensPerMinute", 100000}}).status / 100, 2);
}

}  // namespace
}  // namespace synaps
