// A private PostgreSQL server: initdb into a directory (once), start `postgres` on 127.0.0.1 and
// a port the OS picked, stop it with a fast shutdown. Used by `synaps dev` and by the test
// fixtures, so both run the same code. When run as root, the server runs as the `postgres`
// system user (PostgreSQL refuses root) and the data directory is handed to that user.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/process.h"

namespace synaps::devstack {

struct PostgresOptions {
  std::string data_dir;       // created and initialized when empty
  std::string log_path;       // server log
  uint16_t port = 0;          // 0 = pick a free one
  bool durable = true;        // false: fsync off, small WAL (tests)
};

class PostgresServer {
 public:
  // Initializes (if needed), starts and waits until it accepts connections; creates the
  // database `synaps`.
  static Result<std::unique_ptr<PostgresServer>> Start(PostgresOptions options);
  ~PostgresServer();

  uint16_t port() const { return options_.port; }
  // postgresql://postgres@127.0.0.1:<port>/<db>
  std::string Url(const std::string& db = "synaps") const;
  Status CreateDatabase(const std::string& name);

  // Fast shutdown (clients are disconnected). Start() again on the same port afterwards.
  void Stop();
  Status Restart();
  // SIGKILL, as in a crash.
  void Kill();

 private:
  explicit PostgresServer(PostgresOptions options) : options_(std::move(options)) {}
  Status Launch();

  PostgresOptions options_;
  ChildProcess process_;
};

// Directory holding initdb and postgres (the newest /usr/lib/postgresql/*/bin), or an error
// telling the user to run scripts/install-deps.
Result<std::string> FindPostgresBinDir();

}  // namespace synaps::devstack
