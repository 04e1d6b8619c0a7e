// Hermetic servers for tests: one private PostgreSQL (fsync off) and one nats-server per test
// binary, in a temporary directory, on ports the OS picked — started by the same devstack code
// that `synaps dev` uses. Each test takes a fresh database cloned from a migrated template.
#pragma once

#include <memory>
#include <string>

#include "devstack/nats_server.h"
#include "devstack/postgres_server.h"

namespace synaps::testing {

class TestStack {
 public:
  // Started on first use; stopped at process exit.
  static TestStack& Get();

  // A new, migrated database; returns its URL.
  std::string FreshDatabase();
  devstack::PostgresServer& postgres() { return *postgres_; }
  devstack::NatsServer& nats() { return *nats_; }
  const std::string& root() const { return root_; }
  // A new empty directory under the stack's temporary root.
  std::string TempDir(const std::string& prefix);

 private:
  TestStack();
  std::string root_;
  std::unique_ptr<devstack::PostgresServer> postgres_;
  std::unique_ptr<devstack::NatsServer> nats_;
  int databases_ = 0;
};

}  // namespace synaps::testing
