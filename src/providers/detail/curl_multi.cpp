#include "providers/detail/curl_multi.h"

#include <spdlog/spdlog.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

#include "curl/handles.h"

namespace synaps::providers::detail {

namespace asio = boost::asio;

namespace {

// One socket libcurl asked us to watch. Shared with the pending waits on it, which may still
// be queued after libcurl said CURL_POLL_REMOVE; `active` tells them to do nothing then.
struct SocketWatch {
  SocketWatch(const asio::any_io_executor& executor, curl_socket_t fd)
      : descriptor(executor), fd(fd) {}
  asio::posix::stream_descriptor descriptor;  // registered with the reactor, not owning fd
  curl_socket_t fd;
  int wanted = 0;  // CURL_POLL_IN, CURL_POLL_OUT or CURL_POLL_INOUT
  bool read_pending = false;
  bool write_pending = false;
  bool active = true;
};

}  // namespace

struct CurlMulti::Impl : std::enable_shared_from_this<Impl> {
  explicit Impl(asio::any_io_executor ex) : executor(std::move(ex)), timer(executor) {}

  // Deregisters a socket from the reactor without closing it (libcurl closes it). Queued
  // waits complete with operation_aborted.
  static void Forget(SocketWatch& watch) {
    watch.active = false;
    boost::system::error_code ignored;
    watch.descriptor.cancel(ignored);
    watch.descriptor.release();
  }

  static int OnSocket(CURL*, curl_socket_t fd, int what, void* userp, void* socketp) {
    auto* self = static_cast<Impl*>(userp);
    auto found = self->sockets.find(fd);
    if (what == CURL_POLL_REMOVE) {
      if (found != self->sockets.end()) {
        Forget(*found->second);
        self->sockets.erase(found);
      }
      return 0;
    }
    std::shared_ptr<SocketWatch> watch;
    if (found != self->sockets.end() && found->second.get() == socketp) {
      watch = found->second;
    } else {
      // A socket new to us. An entry under the same number without libcurl's tag would be a
      // closed socket whose number was reused; drop it first.
      if (found != self->sockets.end()) {
        Forget(*found->second);
        self->sockets.erase(found);
      }
      watch = std::make_shared<SocketWatch>(self->executor, fd);
      boost::system::error_code ec;
      watch->descriptor.assign(fd, ec);
      if (ec) {
        // Returning -1 would mark the whole multi handle dead; this transfer alone then runs
        // into its timeout instead.
        spdlog::error("cannot watch socket {} for libcurl: {}", fd, ec.message());
        return 0;
      }
      self->sockets.emplace(fd, watch);
      curl_multi_assign(self->multi.get(), fd, watch.get());
    }
    watch->wanted = what;
    self->Arm(watch);
    return 0;
  }

  static int OnTimer(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<Impl*>(userp);
    if (timeout_ms < 0) {
      self->timer.cancel();
      return 0;
    }
    if (timeout_ms == 0) {
      self->Kick();
      return 0;
    }
    // Resetting the expiry cancels the previous wait.
    self->timer.expires_after(std::chrono::milliseconds(timeout_ms));
    self->timer.async_wait([weak = self->weak_from_this()](const boost::system::error_code& ec) {
      if (!ec) TimedOut(weak.lock());
    });
    return 0;
  }

  // A timeout libcurl asked for has come (by the timer or a Kick): it runs what is due.
  static void TimedOut(const std::shared_ptr<Impl>& me) {
    if (!me || me->shut_down) return;
    me->SocketAction(CURL_SOCKET_TIMEOUT, 0);
    me->DrainCompletions();
  }

  // libcurl's "time out now" (every new transfer asks for it): a handler posted to the loop —
  // libcurl must not be re-entered from its own callback — and one for any number of such
  // asks before it runs. Not the timer: re-arming it is a timerfd_settime call per transfer,
  // 10% of the worker's CPU with 2,000 calls in flight (docs/benchmarks.md, section 4). The
  // timer keeps its earlier expiry; should it fire early, libcurl finds nothing due and
  // carries on. After the posted action libcurl names its next timeout, as it does after
  // every timeout handled (its previous one was this zero, now consumed).
  void Kick() {
    if (kick_posted) return;
    kick_posted = true;
    asio::post(executor, [weak = weak_from_this()] {
      auto me = weak.lock();
      if (me) me->kick_posted = false;  // before the action: a zero it asks for posts anew
      TimedOut(me);
    });
  }

  // Waits for the readiness libcurl wants, unless such a wait is already queued.
  void Arm(const std::shared_ptr<SocketWatch>& watch) {
    if ((watch->wanted & CURL_POLL_IN) && !watch->read_pending) {
      watch->read_pending = true;
      watch->descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                                   [weak = weak_from_this(), watch](boost::system::error_code ec) {
                                     watch->read_pending = false;
                                     OnReady(weak, watch, ec, CURL_POLL_IN, CURL_CSELECT_IN);
                                   });
    }
    if ((watch->wanted & CURL_POLL_OUT) && !watch->write_pending) {
      watch->write_pending = true;
      watch->descriptor.async_wait(asio::posix::stream_descriptor::wait_write,
                                   [weak = weak_from_this(), watch](boost::system::error_code ec) {
                                     watch->write_pending = false;
                                     OnReady(weak, watch, ec, CURL_POLL_OUT, CURL_CSELECT_OUT);
                                   });
    }
  }

  static void OnReady(const std::weak_ptr<Impl>& weak, const std::shared_ptr<SocketWatch>& watch,
                      boost::system::error_code ec, int poll_flag, int select_flag) {
    if (ec || !watch->active) return;
    auto me = weak.lock();  // keeps the state alive if a completion destroys the CurlMulti
    if (!me || me->shut_down) return;
    // libcurl may have changed its mind about this direction since the wait was queued.
    if (!(watch->wanted & poll_flag)) return;
    me->SocketAction(watch->fd, select_flag);
    if (watch->active && !me->shut_down) me->Arm(watch);
    me->DrainCompletions();
  }

  void SocketAction(curl_socket_t fd, int select_flags) {
    int running = 0;
    ++curl_depth;
    CURLMcode rc = curl_multi_socket_action(multi.get(), fd, select_flags, &running);
    --curl_depth;
    if (rc != CURLM_OK) {
      spdlog::error("curl_multi_socket_action: {}", curl_multi_strerror(rc));
    }
  }

  // Hands finished transfers to their owners, each after its handle left the multi handle.
  void DrainCompletions() {
    int left = 0;
    while (!shut_down) {
      CURLMsg* msg = curl_multi_info_read(multi.get(), &left);
      if (msg == nullptr) break;
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      CURLcode result = msg->data.result;  // `msg` is invalid once the handle is removed
      auto it = transfers.find(easy);
      if (it == transfers.end()) continue;
      Completion done = std::move(it->second);
      transfers.erase(it);
      ++curl_depth;
      curl_multi_remove_handle(multi.get(), easy);
      --curl_depth;
      done(result);
    }
  }

  void Shutdown() {
    if (shut_down) return;
    shut_down = true;
    for (auto& [easy, done] : transfers) curl_multi_remove_handle(multi.get(), easy);
    transfers.clear();
    timer.cancel();
    multi.reset();  // closes cached connections; libcurl reports their sockets removed
    for (auto& [fd, watch] : sockets) Forget(*watch);
    sockets.clear();
  }

  asio::any_io_executor executor;
  asio::steady_timer timer;
  curl::MultiHandle multi;
  std::unordered_map<curl_socket_t, std::shared_ptr<SocketWatch>> sockets;
  std::unordered_map<CURL*, Completion> transfers;
  int curl_depth = 0;  // > 0 while inside libcurl
  bool kick_posted = false;  // a Kick() is queued on the loop
  bool shut_down = false;
};

CurlMulti::CurlMulti(asio::any_io_executor executor, CurlMultiOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor))) {
  impl_->multi = curl::NewMulti();
  if (!impl_->multi) throw std::runtime_error("curl_multi_init failed");
  CURLM* m = impl_->multi.get();
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, &Impl::OnSocket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, impl_.get());
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, &Impl::OnTimer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, impl_.get());
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, options.max_idle_connections);
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, options.max_connections_per_host);
  // HTTP/2 multiplexing (the default since 7.62, stated for clarity): over TLS, many calls to
  // one provider share a few connections.
  curl_multi_setopt(m, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
}

CurlMulti::~CurlMulti() { impl_->Shutdown(); }

Status CurlMulti::Add(CURL* easy, Completion done) {
  if (impl_->shut_down) return Fail(ErrorCode::kUnavailable, "the HTTP client is shutting down");
  if (impl_->curl_depth > 0) {
    return Fail(ErrorCode::kInternal, "CurlMulti::Add called from inside a libcurl callback");
  }
  auto [it, inserted] = impl_->transfers.emplace(easy, std::move(done));
  if (!inserted) return Fail(ErrorCode::kInternal, "transfer added twice");
  CURLMcode rc = curl_multi_add_handle(impl_->multi.get(), easy);
  if (rc != CURLM_OK) {
    impl_->transfers.erase(easy);
    return Fail(ErrorCode::kInternal,
                std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc));
  }
  return Ok();
}

void CurlMulti::Remove(CURL* easy) {
  if (impl_->curl_depth > 0) {
    // libcurl would refuse (CURLM_RECURSIVE_API_CALL) and keep the handle: a caller bug.
    spdlog::error("CurlMulti::Remove called from inside a libcurl callback; ignored");
    return;
  }
  if (impl_->transfers.erase(easy) == 0) return;
  ++impl_->curl_depth;
  CURLMcode rc = curl_multi_remove_handle(impl_->multi.get(), easy);
  --impl_->curl_depth;
  if (rc != CURLM_OK) {
    spdlog::error("curl_multi_remove_handle: {}", curl_multi_strerror(rc));
  }
}

bool CurlMulti::InsideCurl() const { return impl_->curl_depth > 0; }
size_t CurlMulti::running_transfers() const { return impl_->transfers.size(); }
size_t CurlMulti::watched_sockets() const { return impl_->sockets.size(); }
const asio::any_io_executor& CurlMulti::executor() const { return impl_->executor; }

}  // namespace synaps::providers::detail
