// libcurl's multi interface driven by a Boost.Asio event loop: many HTTP transfers in flight
// on one thread, no thread per transfer.
//
// libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when it next needs
// the clock (CURLMOPT_TIMERFUNCTION); we watch each socket with an asio descriptor wait and
// the clock with one steady_timer, and on readiness call curl_multi_socket_action(). libcurl
// owns the sockets (it opens and closes them); we only register and deregister them with the
// reactor, and libcurl always tells us CURL_POLL_REMOVE before it closes one.
//
// Thread safety: none. Every method, and every callback it runs, is on the executor's thread.
// Transfers that end run their completion there, after their easy handle has left the multi
// handle, so a completion may free the easy handle, add new transfers or remove others.
#pragma once

#include <curl/curl.h>

#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <functional>
#include <memory>

#include "core/error.h"

namespace synaps::providers::detail {

struct CurlMultiOptions {
  // Connections kept open for reuse (CURLMOPT_MAXCONNECTS). Those in use count too but are
  // never closed for it: when a transfer ends with the cache full, libcurl closes the oldest
  // idle connection, or this transfer's own when none is idle. Transfers are not limited by it.
  long max_idle_connections = 256;
  // Connections per host, 0 = unlimited (CURLMOPT_MAX_HOST_CONNECTIONS). Transfers beyond it
  // wait in libcurl's queue.
  long max_connections_per_host = 0;
};

class CurlMulti {
 public:
  // Runs when a transfer ends, with libcurl's result for it (CURLE_OK: the HTTP exchange
  // completed, whatever the status code).
  using Completion = std::function<void(CURLcode)>;

  CurlMulti(boost::asio::any_io_executor executor, CurlMultiOptions options = {});
  // Removes every transfer still running (their completions never run) and closes all
  // connections. May be called from a completion.
  ~CurlMulti();
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  // Starts `easy`, which the caller keeps alive until its completion has run or Remove().
  // Must not be called while InsideCurl().
  Status Add(CURL* easy, Completion done);
  // Stops a running transfer; its completion does not run. No-op for an unknown handle. Must
  // not be called while InsideCurl() (libcurl forbids it): defer it with a post instead.
  void Remove(CURL* easy);
  // True while libcurl is running one of its callbacks (write, header, socket, timer), i.e.
  // while user code runs from inside a transfer's data delivery.
  bool InsideCurl() const;

  size_t running_transfers() const;
  size_t watched_sockets() const;
  const boost::asio::any_io_executor& executor() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with in-flight asio handlers, which hold it weakly
};

}  // namespace synaps::providers::detail
