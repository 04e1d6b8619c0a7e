#include "k8s/kube_client.h"

#include <curl/curl.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <optional>
#include <unordered_set>

#include "k8s/service_account_token.h"
#include "curl/handles.h"
#include "providers/detail/curl_multi.h"

namespace synaps::k8s {

namespace asio = boost::asio;
using nlohmann::json;
using providers::detail::CurlMulti;
using curl::EasyHandle;
using curl::HeaderList;

namespace detail {
class ListCall;
}  // namespace detail

struct KubeClient::Core {
  Core(asio::any_io_executor ex, InClusterConfig cfg, KubeClientOptions opts)
      : executor(ex),
        config(std::move(cfg)),
        options(opts),
        token(config.token_path),
        multi(ex, providers::detail::CurlMultiOptions{.max_idle_connections = 8}) {}
  ~Core();

  asio::any_io_executor executor;
  InClusterConfig config;
  KubeClientOptions options;
  ServiceAccountToken token;
  std::unordered_set<detail::ListCall*> live;  // started, callback not yet run
  // Declared last, destroyed first: dropping its transfers frees the calls they belong to.
  CurlMulti multi;
};

namespace detail {
namespace {

// At most this much of a server's message goes into an error.
constexpr size_t kMaxQuotedChars = 300;

std::string Quote(std::string_view text) {
  std::string s(text.substr(0, kMaxQuotedChars));
  if (text.size() > kMaxQuotedChars) s += "...";
  return s;
}

// The `message` of a Kubernetes Status object (the body of every API error), or the start of
// the body when it is something else.
std::string ServerMessage(const std::string& body) {
  json status = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (status.is_object()) {
    auto it = status.find("message");
    if (it != status.end() && it->is_string()) return Quote(it->get<std::string>());
  }
  size_t b = body.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "(empty body)";
  return Quote(std::string_view(body).substr(b));
}

}  // namespace

// One GET: its transfer and what came back. Owned by the transfer's completion while it runs
// and by the posted callback after, so it lives as long as something can touch it.
class ListCall final : public std::enable_shared_from_this<ListCall> {
 public:
  ListCall(KubeClient::Core* core, std::string what, std::string list_kind, KubeClient::Done done)
      : core_(core),
        executor_(core->executor),
        what_(std::move(what)),
        list_kind_(std::move(list_kind)),
        done_(std::move(done)) {}

  // Registers the call and starts it from the loop, so that the callback never runs inside
  // the call that asked for it. `error` set: the call fails with it instead.
  void Begin(std::string url, std::string token, std::optional<Error> error) {
    core_->live.insert(this);
    if (error) {
      Finish(std::unexpected(std::move(*error)));
      return;
    }
    asio::post(executor_, [self = shared_from_this(), url = std::move(url),
                           token = std::move(token)] { self->Transfer(url, token); });
  }

  void Abandon() {
    core_ = nullptr;
    done_ = nullptr;
  }

 private:
  void Transfer(const std::string& url, const std::string& token) {
    if (core_ == nullptr) return;
    const KubeClientOptions& o = core_->options;
    easy_ = curl::NewEasy();
    headers_ = HeaderList();
    bool listed = headers_.Append("Authorization: Bearer " + token) &&
                  headers_.Append("Accept: application/json");
    if (!easy_ || !listed) {
      Finish(Fail(ErrorCode::kInternal, "kubernetes: cannot set up a libcurl transfer"));
      return;
    }
    CURL* e = easy_.get();
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_.get());
    // Trust the cluster CA and nothing else: without clearing CAPATH libcurl would also accept
    // any certificate from the system's store.
    curl_easy_setopt(e, CURLOPT_CAINFO, core_->config.ca_path.c_str());
    curl_easy_setopt(e, CURLOPT_CAPATH, nullptr);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
#if LIBCURL_VERSION_NUM >= 0x075700
    // A rotated cluster CA is picked up within five minutes.
    curl_easy_setopt(e, CURLOPT_CA_CACHE_TIMEOUT, 300L);
#endif
    // The API server is inside the cluster: a proxy set for the worker's outbound traffic
    // (HTTPS_PROXY) must not see these requests.
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "synaps-worker");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &ListCall::OnBodyThunk);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error_buffer_);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout.count()));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(o.request_timeout.count()));
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    started_ = std::chrono::steady_clock::now();
    auto added =
        core_->multi.Add(e, [self = shared_from_this()](CURLcode rc) { self->OnTransferDone(rc); });
    if (!added) {
      easy_.reset();
      Finish(std::unexpected(added.error()));
    }
  }

  static size_t OnBodyThunk(char* data, size_t size, size_t count, void* self) {
    return static_cast<ListCall*>(self)->OnBody(std::string_view(data, size * count));
  }

  // Returning less than given aborts the transfer.
  size_t OnBody(std::string_view bytes) {
    if (core_ == nullptr) return 0;
    if (body_.size() + bytes.size() > core_->options.max_response_bytes) {
      too_large_ = true;
      return 0;
    }
    body_.append(bytes);
    return bytes.size();
  }

  void OnTransferDone(CURLcode rc) {
    long status = 0;
    if (easy_) curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &status);
    easy_.reset();  // the connection stays in the multi handle's cache
    headers_ = HeaderList();
    if (core_ == nullptr) return;
    Finish(Evaluate(rc, status));
  }

  Result<json> Evaluate(CURLcode rc, long status) {
    std::string where = "kubernetes: " + what_ + ": ";
    if (too_large_) {
      return Fail(ErrorCode::kResourceExhausted,
                  where + "the answer is larger than " +
                      std::to_string(core_->options.max_response_bytes) +
                      " bytes; ask for fewer items (limit) or narrow the selector");
    }
    if (rc != CURLE_OK) return std::unexpected(TransferError(where, rc));
    if (status < 200 || status > 299) return std::unexpected(StatusError(where, status));
    json list = json::parse(body_, nullptr, /*allow_exceptions=*/false);
    if (list.is_discarded()) {
      return Fail(ErrorCode::kInternal, where + "the API server's answer is not valid JSON (" +
                                            std::to_string(body_.size()) +
                                            " bytes): " + Quote(body_));
    }
    if (!list.is_object() || !list.contains("items") ||
        !(list["items"].is_array() || list["items"].is_null())) {
      return Fail(ErrorCode::kInternal, where + "the API server's answer is not a " + list_kind_ +
                                            ": " + Quote(list.dump()));
    }
    if (list["items"].is_null()) list["items"] = json::array();
    return list;
  }

  Error TransferError(const std::string& where, CURLcode rc) const {
    std::string detail = error_buffer_[0] != '\0' ? error_buffer_ : curl_easy_strerror(rc);
    const InClusterConfig& c = core_->config;
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started_);
    switch (rc) {
      case CURLE_OPERATION_TIMEDOUT:
        return Error{ErrorCode::kDeadlineExceeded,
                     where + "no answer from the API server at " + c.server + " within " +
                         std::to_string(elapsed.count()) + " ms (" + detail + ")",
                     {}};
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_SSL_CERTPROBLEM:
        return Error{ErrorCode::kUnavailable,
                     where + "TLS with the API server at " + c.server +
                         " failed: its certificate could not be verified against the cluster CA " +
                         c.ca_path + " (" + detail + "); nothing was sent",
                     {}};
      case CURLE_COULDNT_CONNECT:
      case CURLE_COULDNT_RESOLVE_HOST:
        return Error{
            ErrorCode::kUnavailable,
            where + "cannot connect to the API server at " + c.server + " (" + detail + ")",
            {}};
      case CURLE_PARTIAL_FILE:
      case CURLE_RECV_ERROR:
      case CURLE_SEND_ERROR:
      case CURLE_GOT_NOTHING:
        return Error{ErrorCode::kUnavailable,
                     where +
                         "the connection to the API server broke before the whole answer "
                         "arrived (" +
                         detail + ")",
                     {}};
      default:
        return Error{ErrorCode::kUnavailable, where + detail, {}};
    }
  }

  Error StatusError(const std::string& where, long status) const {
    std::string http = "HTTP " + std::to_string(status) + ": " + ServerMessage(body_);
    const std::string& ns = core_->config.namespace_name;
    if (status == 401) {
      return Error{ErrorCode::kUnauthenticated,
                   where + http + " (the API server refused the service-account token in " +
                       core_->config.token_path +
                       "; it may have expired or be from another "
                       "cluster)",
                   {}};
    }
    if (status == 403) {
      return Error{ErrorCode::kPermissionDenied,
                   where + http +
                       " (the worker's service account needs a Role with get, list "
                       "and watch on pods and events in namespace " +
                       ns + "; the Helm chart creates it when worker.kubernetesAccess is true)",
                   {}};
    }
    if (status == 404) {
      return Error{ErrorCode::kNotFound, where + http + " (namespace " + ns + ")", {}};
    }
    if (status == 408 || status == 504) {
      return Error{ErrorCode::kDeadlineExceeded, where + http, {}};
    }
    if (status == 429 || status >= 500) return Error{ErrorCode::kUnavailable, where + http, {}};
    return Error{ErrorCode::kInvalidArgument, where + http, {}};
  }

  void Finish(Result<json> result) {
    asio::post(executor_, [self = shared_from_this(), result = std::move(result)]() mutable {
      if (self->core_ == nullptr) return;  // the client is gone
      self->core_->live.erase(self.get());
      auto done = std::move(self->done_);
      self->done_ = nullptr;
      if (done) done(std::move(result));
    });
  }

  KubeClient::Core* core_;  // null once the client is destroyed
  asio::any_io_executor executor_;
  const std::string what_;       // "GET /api/v1/namespaces/ns/pods"
  const std::string list_kind_;  // "PodList"
  KubeClient::Done done_;
  EasyHandle easy_;
  HeaderList headers_;  // carries the token; freed with the transfer
  char error_buffer_[CURL_ERROR_SIZE] = {};
  std::chrono::steady_clock::time_point started_;
  std::string body_;
  bool too_large_ = false;
};

}  // namespace detail

KubeClient::Core::~Core() {
  auto calls = std::move(live);
  for (detail::ListCall* call : calls) call->Abandon();
}

KubeClient::KubeClient(asio::any_io_executor executor, InClusterConfig config,
                       KubeClientOptions options)
    : core_(std::make_unique<Core>(std::move(executor), std::move(config), options)) {}

KubeClient::~KubeClient() = default;

void KubeClient::ListPods(const ListQuery& query, Done done) {
  List("pods", "PodList", query, std::move(done));
}

void KubeClient::ListEvents(const ListQuery& query, Done done) {
  List("events", "EventList", query, std::move(done));
}

void KubeClient::List(const std::string& resource, const std::string& list_kind,
                      const ListQuery& query, Done done) {
  std::string path = "/api/v1/namespaces/" + core_->config.namespace_name + "/" + resource;
  auto call =
      std::make_shared<detail::ListCall>(core_.get(), "GET " + path, list_kind, std::move(done));
  auto request = detail::BuildGetRequest("GET", core_->config.server, path, query);
  if (!request) {
    Error e = request.error();
    e.message = "kubernetes: GET " + path + ": " + e.message;
    call->Begin({}, {}, std::move(e));
    return;
  }
  auto token = core_->token.Current();
  if (!token) {
    Error e = token.error();
    e.message = "kubernetes: GET " + path + ": " + e.message;
    call->Begin({}, {}, std::move(e));
    return;
  }
  call->Begin(std::move(request->url), std::move(*token), std::nullopt);
}

const std::string& KubeClient::namespace_name() const { return core_->config.namespace_name; }
const InClusterConfig& KubeClient::config() const { return core_->config; }
size_t KubeClient::requests_in_flight() const { return core_->live.size(); }
int64_t KubeClient::token_reads() const { return core_->token.reads(); }

}  // namespace synaps::k8s
