// A tiny HTTP/1.1 server on 127.0.0.1 (port picked by the OS) that records every request and
// answers from a handler: for checking exactly what the S3 client sends (headers, signature,
// body) and for scripting failures (5xx, hangs) that a real S3 server will not produce on demand.
// Keep-alive and "Expect: 100-continue" are supported; one thread per connection.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace synaps::objstore::testing {

struct CapturedRequest {
  std::string method;
  std::string target;                                        // path and query, as sent
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string body;

  std::string path() const { return target.substr(0, target.find('?')); }
  std::string query() const {
    size_t q = target.find('?');
    return q == std::string::npos ? "" : target.substr(q + 1);
  }
  // The first value of header `name` (lower case), or "".
  std::string Header(const std::string& name) const;
  // How many times header `name` appears.
  int HeaderCount(const std::string& name) const;
};

struct CannedReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Wait this long before answering (the server's Stop cuts it short).
  std::chrono::milliseconds delay{0};
};

class CaptureServer {
 public:
  using Handler = std::function<CannedReply(const CapturedRequest&)>;

  // Starts listening; every request gets 200 with an empty body until SetHandler.
  CaptureServer();
  ~CaptureServer();
  CaptureServer(const CaptureServer&) = delete;
  CaptureServer& operator=(const CaptureServer&) = delete;

  uint16_t port() const { return port_; }
  void SetHandler(Handler handler);
  std::vector<CapturedRequest> requests();

 private:
  void AcceptLoop();
  void Serve(int fd);
  // Sleeps up to `d`, returning early when stopping.
  void Pause(std::chrono::milliseconds d);

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::mutex mu_;
  std::condition_variable stopping_cv_;
  bool stopping_ = false;                  // guarded by mu_
  Handler handler_;                        // guarded by mu_
  std::vector<CapturedRequest> requests_;  // guarded by mu_
  std::vector<int> client_fds_;            // guarded by mu_
  std::vector<std::thread> workers_;       // guarded by mu_
};

}  // namespace synaps::objstore::testing
