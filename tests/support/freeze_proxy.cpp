#include "support/freeze_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <list>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace synaps::testing {
namespace {

constexpr size_t kBufferLimit = 256 * 1024;  // per direction; reading pauses above it

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// One forwarded connection: the client's socket and ours to the upstream.
struct Pair {
  int client = -1;
  int upstream = -1;
  std::string to_upstream;  // read from the client, not yet written upstream
  std::string to_client;
  bool frozen = false;
  bool closed = false;

  void Close() {
    if (client >= 0) ::close(client);
    if (upstream >= 0) ::close(upstream);
    client = upstream = -1;
    closed = true;
  }
};

// Reads what `from` has into `buffer`; false on EOF or error.
bool Pump(int from, std::string& buffer) {
  char chunk[16384];
  while (buffer.size() < kBufferLimit) {
    ssize_t n = ::recv(from, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return false;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }
  return true;
}

// Writes what it can of `buffer` to `to`; false on error.
bool Drain(int to, std::string& buffer) {
  while (!buffer.empty()) {
    ssize_t n = ::send(to, buffer.data(), buffer.size(), MSG_NOSIGNAL);
    if (n > 0) {
      buffer.erase(0, static_cast<size_t>(n));
      continue;
    }
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
  }
  return true;
}

}  // namespace

class FreezeProxy::Impl {
 public:
  Impl(std::string host, uint16_t upstream_port) : host_(std::move(host)), upstream_port_(upstream_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_, 128) != 0) {
      throw std::runtime_error("freeze proxy: cannot listen");
    }
    socklen_t len = sizeof addr;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    SetNonBlocking(listener_);
    wake_ = eventfd(0, EFD_NONBLOCK);
    thread_ = std::thread([this] { Loop(); });
  }

  ~Impl() {
    stop_ = true;
    Wake();
    thread_.join();
    for (auto& p : pairs_) p.Close();
    ::close(listener_);
    ::close(wake_);
  }

  uint16_t port() const { return port_; }

  int Freeze() {
    std::lock_guard lock(mu_);
    int n = 0;
    for (auto& p : pairs_) {
      if (!p.closed && !p.frozen) {
        p.frozen = true;
        ++n;
      }
    }
    Wake();
    return n;
  }

  void Thaw() {
    std::lock_guard lock(mu_);
    for (auto& p : pairs_) p.frozen = false;
    Wake();
  }

  int Count(bool frozen) const {
    std::lock_guard lock(mu_);
    int n = 0;
    for (const auto& p : pairs_) n += (!p.closed && p.frozen == frozen) ? 1 : 0;
    return n;
  }

  int accepted() const { return accepted_.load(); }
  void RefuseNew(bool on) { refuse_ = on; }

 private:
  void Wake() {
    uint64_t one = 1;
    (void)::write(wake_, &one, sizeof one);
  }

  void Accept() {
    while (true) {
      int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      if (refuse_) {
        ::close(client);
        continue;
      }
      int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(upstream_port_);
      inet_pton(AF_INET, host_.c_str(), &addr.sin_addr);
      // The upstream is local: a blocking connect returns at once.
      if (::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(client);
        ::close(upstream);
        continue;
      }
      int one = 1;
      setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      SetNonBlocking(client);
      SetNonBlocking(upstream);
      pairs_.push_back(Pair{.client = client, .upstream = upstream});
      ++accepted_;
    }
  }

  // One pass over a live pair after poll; closes it when either side ended.
  static void Forward(Pair& p) {
    bool ok = Pump(p.client, p.to_upstream) && Drain(p.upstream, p.to_upstream) &&
              Pump(p.upstream, p.to_client) && Drain(p.client, p.to_client);
    if (!ok) p.Close();
  }

  void Loop() {
    while (!stop_) {
      std::vector<pollfd> fds;
      std::vector<Pair*> polled;
      {
        std::lock_guard lock(mu_);
        pairs_.remove_if([](const Pair& p) { return p.closed; });
        fds.push_back({listener_, POLLIN, 0});
        fds.push_back({wake_, POLLIN, 0});
        for (auto& p : pairs_) {
          if (p.frozen) continue;
          short c = static_cast<short>((p.to_upstream.size() < kBufferLimit ? POLLIN : 0) |
                                       (p.to_client.empty() ? 0 : POLLOUT));
          short u = static_cast<short>((p.to_client.size() < kBufferLimit ? POLLIN : 0) |
                                       (p.to_upstream.empty() ? 0 : POLLOUT));
          fds.push_back({p.client, c, 0});
          fds.push_back({p.upstream, u, 0});
          polled.push_back(&p);
        }
      }
      if (::poll(fds.data(), fds.size(), 1000) <= 0) continue;
      std::lock_guard lock(mu_);
      if (fds[1].revents) {
        uint64_t v;
        (void)::read(wake_, &v, sizeof v);
      }
      if (fds[0].revents & POLLIN) Accept();
      for (size_t i = 0; i < polled.size(); ++i) {
        Pair& p = *polled[i];
        // A pair frozen while we polled is left exactly as it is.
        if (p.frozen || p.closed) continue;
        if (fds[2 + 2 * i].revents || fds[3 + 2 * i].revents) Forward(p);
      }
    }
  }

  const std::string host_;
  const uint16_t upstream_port_;
  int listener_ = -1;
  int wake_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::atomic<bool> refuse_{false};
  mutable std::mutex mu_;
  std::list<Pair> pairs_;  // guarded by mu_; a list, so polled pointers stay valid
  std::thread thread_;     // last: starts after everything above
};

FreezeProxy::FreezeProxy(std::string upstream_host, uint16_t upstream_port)
    : impl_(std::make_unique<Impl>(std::move(upstream_host), upstream_port)) {}
FreezeProxy::~FreezeProxy() = default;
uint16_t FreezeProxy::port() const { return impl_->port(); }
int FreezeProxy::FreezeEstablished() { return impl_->Freeze(); }
void FreezeProxy::Thaw() { impl_->Thaw(); }
void FreezeProxy::RefuseNew(bool on) { impl_->RefuseNew(on); }
int FreezeProxy::active() const { return impl_->Count(false); }
int FreezeProxy::frozen() const { return impl_->Count(true); }
int FreezeProxy::accepted() const { return impl_->accepted(); }

std::string FreezeProxy::Rewrite(const std::string& url) const {
  // postgresql://user@host:port/db → postgresql://user@127.0.0.1:<proxy>/db
  size_t at = url.find('@');
  size_t start = at == std::string::npos ? url.find("://") + 3 : at + 1;
  size_t end = url.find('/', start);
  return url.substr(0, start) + "127.0.0.1:" + std::to_string(port()) +
         (end == std::string::npos ? "" : url.substr(end));
}

}  // namespace synaps::testing
