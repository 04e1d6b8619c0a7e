// A TCP proxy for fault tests: forwards connections to one upstream (PostgreSQL) and can FREEZE
// the connections it carries. A frozen connection stays open on both sides, but nothing is
// forwarded any more in either direction, as when a network path goes silent (a partition, a
// failover behind a load balancer, a hung peer): the client's socket neither answers nor breaks.
// Connections accepted after a freeze are forwarded normally, so a client that gives up on a
// frozen connection and opens a new one gets through.
//
// One thread of its own forwards everything (poll); the public methods are thread-safe.
// Destroying the proxy closes every connection, frozen ones included.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace synaps::testing {

class FreezeProxy {
 public:
  // Listens on 127.0.0.1 (a port the OS picks) and forwards to upstream_host:upstream_port.
  FreezeProxy(std::string upstream_host, uint16_t upstream_port);
  ~FreezeProxy();
  FreezeProxy(const FreezeProxy&) = delete;
  FreezeProxy& operator=(const FreezeProxy&) = delete;

  uint16_t port() const;
  // `url` (postgresql://user@host:port/db...) with host:port replaced by the proxy's.
  std::string Rewrite(const std::string& url) const;

  // Freezes every connection open now; returns how many it froze.
  int FreezeEstablished();
  // Forwards again on every frozen connection (what was sent meanwhile is delivered then).
  void Thaw();
  // While on, new connections are closed as soon as they are accepted: PostgreSQL unreachable.
  void RefuseNew(bool on);
  // Connections forwarded now (not frozen), frozen ones, and accepted since the start.
  int active() const;
  int frozen() const;
  int accepted() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace synaps::testing
