// NatsBus against a real nats-server (support/test_stack.h): what reaches a subscription from
// outside — junk of every kind, a handler that throws — is counted and dropped while the
// subscription goes on serving; Subscribe returns once the server has the subscription; and a
// destroyed subscription never calls its handler again, even while messages keep arriving.
#include "bus/nats_bus.h"

#include <gtest/gtest.h>
#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bus/messages.h"
#include "support/test_stack.h"

namespace synaps::bus {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

bool Eventually(const std::function<bool()>& predicate, milliseconds limit = milliseconds(10000)) {
  auto deadline = steady_clock::now() + limit;
  while (!predicate()) {
    if (steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

// A plain nats.c connection publishing core NATS messages, as any client with bus access can.
class RawPublisher {
 public:
  RawPublisher() {
    natsStatus s = natsConnection_ConnectTo(&conn_, testing::TestStack::Get().nats().Url().c_str());
    EXPECT_EQ(s, NATS_OK) << natsStatus_GetText(s);
  }
  ~RawPublisher() {
    if (conn_ != nullptr) natsConnection_Destroy(conn_);
  }
  void Publish(const std::string& subject, const std::string& payload) {
    natsStatus s = natsConnection_Publish(conn_, subject.c_str(), payload.data(),
                                          static_cast<int>(payload.size()));
    ASSERT_EQ(s, NATS_OK) << natsStatus_GetText(s);
  }
  void Flush() { ASSERT_EQ(natsConnection_FlushTimeout(conn_, 5000), NATS_OK); }

 private:
  natsConnection* conn_ = nullptr;
};

class NatsBusTest : public ::testing::Test {
 protected:
  NatsBusTest()
      : bus_(NatsOptions{.url = testing::TestStack::Get().nats().Url(), .name = "bus-test"}) {
    EXPECT_TRUE(Eventually([&] { return bus_.connected(); }));
  }
  // A subject of its own per test.
  std::string Subject(const std::string& family) {
    return "synaps." + family + "." + std::to_string(++counter_) + "x" +
           std::to_string(reinterpret_cast<uintptr_t>(this));
  }

  NatsBus bus_;
  RawPublisher raw_;
  int counter_ = 0;
};

TEST_F(NatsBusTest, JunkOfEveryKindIsCountedAndDroppedAndTheNextMessageWorks) {
  std::mutex mu;
  std::vector<int64_t> versions;  // guarded by mu
  auto sub = bus_.Subscribe("synaps.ctrl.*",
                            [&](const std::string&, const std::string& payload) -> Status {
                              ASSIGN_OR_RETURN(ControlMessage msg, ParseControlMessage(payload));
                              if (msg.kind == "throw") throw std::logic_error("a handler bug");
                              std::lock_guard lock(mu);
                              versions.push_back(msg.snapshot_version);
                              return Ok();
                            });
  ASSERT_TRUE(sub) << sub.error().message;
  const std::vector<std::string> junk = {
      "{",                                        // malformed
      R"({"snapshotVersion":"x"})",               // mistyped
      R"([1,2,3])",                               // not an object
      std::string("\xff\xfe\x00\x01\x80", 5),     // binary
      std::string(kMaxPayloadBytes + 1, '{'),     // oversized
      R"({"snapshotVersion":3,"kind":"throw"})",  // the handler throws
  };
  for (const auto& j : junk) raw_.Publish("synaps.ctrl.prompts", j);
  raw_.Publish("synaps.ctrl.routes", R"({"kind":"routes","snapshotVersion":42})");
  raw_.Flush();
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(mu);
    return !versions.empty();
  }));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(versions, std::vector<int64_t>{42});
  }
  EXPECT_EQ(bus_.RejectedCounts()["synaps.ctrl.*"], junk.size());
}

TEST_F(NatsBusTest, SubscribeReturnsOnceTheServerHasTheSubscription) {
  // Without the flush a message published right after Subscribe (from another connection) can
  // reach the server before the subscription and be lost.
  for (int i = 0; i < 30; ++i) {
    std::string subject = Subject("test");
    std::atomic<int> got{0};
    auto sub = bus_.Subscribe(subject, [&](const std::string&, const std::string&) {
      ++got;
      return Ok();
    });
    ASSERT_TRUE(sub) << sub.error().message;
    raw_.Publish(subject, "{}");
    raw_.Flush();
    ASSERT_TRUE(Eventually([&] { return got.load() == 1; }, milliseconds(5000)))
        << "message " << i << " published after Subscribe returned was not delivered";
  }
}

TEST_F(NatsBusTest, NoHandlerCallAfterTheSubscriptionIsDestroyed) {
  std::string subject = Subject("test");
  // What the handler touches lives exactly as long as the subscription's owner.
  struct Owner {
    std::atomic<int> calls{0};
    std::atomic<bool> in_handler{false};
    std::atomic<bool> destroyed{false};
    std::atomic<int> after_destruction{0};
  };
  auto owner = std::make_unique<Owner>();
  Owner* o = owner.get();
  auto sub = bus_.Subscribe(subject, [o](const std::string&, const std::string&) {
    if (o->destroyed) ++o->after_destruction;
    o->in_handler = true;
    ++o->calls;
    std::this_thread::sleep_for(milliseconds(2));  // a handler call in progress at destruction
    o->in_handler = false;
    return Ok();
  });
  ASSERT_TRUE(sub);
  std::atomic<bool> stop{false};
  std::thread flood([&] {
    RawPublisher publisher;
    while (!stop) {
      publisher.Publish(subject, "{}");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    publisher.Flush();
  });
  ASSERT_TRUE(Eventually([&] { return o->calls.load() >= 20; }));
  sub->reset();  // while messages keep arriving and a handler call is likely running
  EXPECT_FALSE(o->in_handler.load()) << "the destructor returned during a handler call";
  o->destroyed = true;
  int calls = o->calls.load();
  std::this_thread::sleep_for(milliseconds(300));  // messages keep arriving meanwhile
  EXPECT_EQ(o->calls.load(), calls);
  EXPECT_EQ(o->after_destruction.load(), 0);
  stop = true;
  flood.join();
}

TEST_F(NatsBusTest, ASubscriptionMayBeDestroyedFromItsOwnHandler) {
  std::string subject = Subject("test");
  std::mutex mu;
  std::unique_ptr<Subscription> sub;  // guarded by mu
  std::atomic<int> calls{0};
  auto made = bus_.Subscribe(subject, [&](const std::string&, const std::string&) {
    ++calls;
    std::lock_guard lock(mu);
    sub.reset();  // the last call: the subscription ends from inside it
    return Ok();
  });
  ASSERT_TRUE(made);
  {
    std::lock_guard lock(mu);
    sub = std::move(*made);
  }
  for (int i = 0; i < 20; ++i) raw_.Publish(subject, "{}");
  raw_.Flush();
  ASSERT_TRUE(Eventually([&] { return calls.load() >= 1; }));
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(calls.load(), 1);
}

}  // namespace
}  // namespace synaps::bus
