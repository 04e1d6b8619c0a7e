#include "support/test_stack.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "db/connection.h"
#include "db/migrate.h"
#include "support/scratch_dir.h"

namespace synaps::testing {


TestStack& TestStack::Get() {
  // Leaked on purpose: test binaries must not race static destructors with running threads. The
  // servers are stopped and the directory removed by the scratch directory's exit hook (or by
  // PDEATHSIG and the next test process, when this one is killed).
  static TestStack* stack = new TestStack();
  return *stack;
}

TestStack::TestStack() {
  root_ = MakeScratchDir("test", [this] {
    if (nats_) nats_->Stop();
    if (postgres_) postgres_->Stop();
  });
  auto pg = devstack::PostgresServer::Start({.data_dir = root_ + "/pg",
                                             .log_path = root_ + "/postgres.log",
                                             .durable = false});
  if (!pg) throw std::runtime_error("test PostgreSQL: " + pg.error().message);
  postgres_ = std::move(*pg);
  auto nats = devstack::NatsServer::Start(
      {.store_dir = root_ + "/nats", .log_path = root_ + "/nats.log"});
  if (!nats) throw std::runtime_error("test nats-server: " + nats.error().message);
  nats_ = std::move(*nats);

  // Migrate a template once; every test database is a cheap copy of it.
  auto created = postgres_->CreateDatabase("synaps_template");
  if (!created) throw std::runtime_error(created.error().message);
  auto conn = db::Connection::Connect(postgres_->Url("synaps_template"));
  if (!conn) throw std::runtime_error(conn.error().message);
  auto migrated = db::Migrate(*conn, db::EmbeddedMigrations());
  if (!migrated) throw std::runtime_error("migrate template: " + migrated.error().message);
}

std::string TestStack::FreshDatabase() {
  std::string name = "t" + std::to_string(getpid()) + "_" + std::to_string(++databases_);
  auto conn = db::Connection::Connect(postgres_->Url("postgres"));
  if (!conn) throw std::runtime_error(conn.error().message);
  auto r = conn->Exec("CREATE DATABASE " + name + " TEMPLATE synaps_template");
  if (!r) throw std::runtime_error("create database: " + r.error().message);
  return postgres_->Url(name);
}

std::string TestStack::TempDir(const std::string& prefix) {
  std::string tmpl = root_ + "/" + prefix + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

}  // namespace synaps::testing
