// Many calls in flight on one thread: 1,000 streamed calls against a fake provider that
// answers each after about a second must all finish in a few seconds, on the test's one event
// loop thread, without a thread per call, and give their connections back.
#include <dirent.h>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <fstream>
#include <iostream>

#include "core/config.h"
#include "providers/openai_provider.h"
#include "providers/registry.h"
#include "support/fake_openai.h"

namespace synaps::providers {
namespace {

namespace asio = boost::asio;
using testing::FakeOpenAi;
using testing::FakeReply;
using testing::FakeRequest;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int CountEntries(const char* dir) {
  int n = 0;
  DIR* d = opendir(dir);
  if (d == nullptr) return -1;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n - 2;  // . and ..
}

// A field of /proc/self/status in KiB (VmRSS, VmHWM).
long StatusKiB(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

TEST(ProviderInflightTest, ThousandSlowStreamedCallsOnOneThread) {
  // SYNAPS_TEST_INFLIGHT_CALLS tries other sizes by hand (the time bound below assumes ~1,000).
  const int kCalls = static_cast<int>(config::EnvInt("SYNAPS_TEST_INFLIGHT_CALLS", 1000, 1, 20000));
  ASSERT_TRUE(RaiseOpenFileLimit(4 * kCalls + 256)) << "this test needs about 2,100 descriptors";
  FakeOpenAi fake([](const FakeRequest&, int) {
    FakeReply r = FakeOpenAi::Stream({"slow ", "but ", "sure"});
    r.delay = 1s;
    return r;
  });
  asio::io_context io;
  OpenAiOptions o;
  o.name = "fake";
  o.base_url = fake.base_url();
  o.connect_timeout = 5s;
  o.request_timeout = 30s;
  o.retry.max_attempts = 1;  // a failure here must show, not be hidden by a retry
  OpenAiCompatibleProvider provider(io.get_executor(), o);

  const int threads_before = CountEntries("/proc/self/task");
  const int fds_before = CountEntries("/proc/self/fd");
  int ok = 0;
  int failed = 0;
  int deltas = 0;
  std::string first_error;
  std::vector<std::unique_ptr<Call>> calls;
  auto start = Clock::now();
  for (int i = 0; i < kCalls; ++i) {
    ChatRequest request;
    request.model = "fake-model";
    request.messages = {{"user", "call " + std::to_string(i)}};
    request.on_delta = [&](const ChatDelta&) { ++deltas; };
    calls.push_back(provider.Start(request, [&](Result<ChatResponse> r) {
      if (r && r->text == "slow but sure") {
        ++ok;
      } else {
        ++failed;
        if (first_error.empty()) first_error = r ? "wrong text: " + r->text : r.error().message;
      }
    }));
  }
  int peak_fds = 0;
  int peak_threads = 0;
  size_t peak_sockets = 0;
  asio::steady_timer sampler(io);
  std::function<void()> sample = [&] {
    peak_fds = std::max(peak_fds, CountEntries("/proc/self/fd"));
    peak_threads = std::max(peak_threads, CountEntries("/proc/self/task"));
    peak_sockets = std::max(peak_sockets, provider.watched_sockets());
    if (ok + failed == kCalls) return;
    sampler.expires_after(100ms);
    sampler.async_wait([&](boost::system::error_code ec) {
      if (!ec) sample();
    });
  };
  sample();
  auto deadline = start + 20s;
  while (ok + failed < kCalls && Clock::now() < deadline) io.run_one_for(100ms);
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  sampler.cancel();

  std::cout << kCalls << " calls: " << ok << " ok, " << failed << " failed in " << elapsed.count()
            << " ms; peak sockets watched " << peak_sockets << ", peak fds " << peak_fds
            << " (before " << fds_before << ", client and fake server together), threads "
            << peak_threads << " (before " << threads_before << "), peak RSS "
            << StatusKiB("VmHWM") / 1024 << " MiB" << std::endl;

  EXPECT_EQ(ok, kCalls) << first_error;
  EXPECT_EQ(fake.request_count(), kCalls);
  EXPECT_EQ(deltas, 3 * kCalls);
  // Each call waits about a second at the fake; all of them together must not take much more.
  EXPECT_GE(elapsed, 1s);
  EXPECT_LT(elapsed, 6s);
  // No thread per call: the test thread plus the fake's one.
  EXPECT_LE(peak_threads, threads_before + 1);
  // They really were in flight at once, one connection each (HTTP/1.1).
  EXPECT_GE(peak_sockets, static_cast<size_t>(kCalls * 9 / 10));
  EXPECT_EQ(provider.calls_in_flight(), 0u);

  // Finished calls give their sockets back: libcurl keeps at most max_idle_connections idle.
  io.restart();
  EXPECT_TRUE(FakeOpenAi::WaitFor(
      [&] {
        io.poll();
        return fake.open_connections() <= o.connections.max_idle_connections;
      },
      5s))
      << fake.open_connections() << " connections still open";
  calls.clear();
}

// More calls in flight than libcurl's default-sized cache (256): with the cache sized to the
// calls (as the worker sizes it to its slots), a second wave of calls reuses the first wave's
// connections instead of connecting anew; with 256, the connections beyond it are closed as
// their calls end, and the second wave connects again.
TEST(ProviderInflightTest, ASecondWaveReusesConnectionsWhenTheCacheHoldsThem) {
  constexpr int kCalls = 600;
  ASSERT_TRUE(RaiseOpenFileLimit(4 * kCalls + 256));
  FakeOpenAi fake([](const FakeRequest&, int) {
    FakeReply r = FakeOpenAi::Stream({"again"});
    r.delay = 300ms;
    return r;
  });
  auto waves = [&](long cache) {
    asio::io_context io;
    OpenAiOptions o;
    o.name = "fake";
    o.base_url = fake.base_url();
    o.retry.max_attempts = 1;
    o.connections.max_idle_connections = cache;
    OpenAiCompatibleProvider provider(io.get_executor(), o);
    const int accepted_before = fake.accepted_connections();
    int done = 0;
    for (int wave = 0; wave < 2; ++wave) {
      io.restart();  // the first wave's run ran out of work, which stops the io_context
      std::vector<std::unique_ptr<Call>> calls;
      for (int i = 0; i < kCalls; ++i) {
        ChatRequest request;
        request.model = "fake-model";
        request.messages = {{"user", "wave " + std::to_string(wave)}};
        calls.push_back(provider.Start(request, [&](Result<ChatResponse> r) {
          EXPECT_TRUE(r) << r.error().message;
          ++done;
        }));
      }
      auto started = Clock::now();
      auto deadline = started + 20s;
      while (done < (wave + 1) * kCalls && Clock::now() < deadline) io.run_one_for(100ms);
      EXPECT_EQ(done, (wave + 1) * kCalls);
      std::cout
          << "cache " << cache << ", wave " << wave << ": "
          << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()
          << " ms, accepted " << fake.accepted_connections() - accepted_before << ", open "
          << fake.open_connections() << std::endl;
    }
    return fake.accepted_connections() - accepted_before;
  };
  // Every call of the second wave found an idle connection of the first.
  EXPECT_EQ(waves(kCalls), kCalls);
  // The old sizing: the 344 connections beyond the cache were closed and made again.
  EXPECT_GE(waves(256), kCalls + (kCalls - 256) * 9 / 10);
}

}  // namespace
}  // namespace synaps::providers
