// Raw TCP for tests that must send what no HTTP client would (split headers, bad framing) and
// see exactly the bytes the server wrote back.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace synaps::testing {

// One TCP connection to 127.0.0.1:port. Closed on destruction.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool Send(const std::string& bytes);
  // Reads until the server closes the connection or `timeout` passes; returns what arrived.
  std::string ReadUntilClosed(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Reads until `needle` has arrived (or the connection closes, or `timeout` passes).
  std::string ReadUntil(const std::string& needle,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // True when the server closed the connection (read returns 0 or an error) within `timeout`.
  bool ClosedByServer(std::chrono::milliseconds timeout);
  void Close();

 private:
  int fd_ = -1;
};

// Sends `request` on a new connection and returns everything the server wrote until it closed
// the connection (or `timeout` passed).
std::string RawExchange(uint16_t port, const std::string& request,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5));

// The number of HTTP status lines ("HTTP/1.x NNN") at line starts in `bytes`.
int CountStatusLines(const std::string& bytes);

// The status code of the first response in `bytes`, 0 when none.
int FirstStatus(const std::string& bytes);

// The port of a base URL such as "http://127.0.0.1:41234".
uint16_t PortOf(const std::string& base_url);

}  // namespace synaps::testing
