#include "tools/http_tools.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstring>

#include "control/json_schema.h"
#include "core/barrier.h"
#include "core/utf8.h"
#include "curl/handles.h"

namespace synaps::tools {

namespace asio = boost::asio;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using curl::EasyHandle;
using curl::HeaderList;

namespace {

// One call, as the pool thread runs it.
struct Call {
  std::string tool;
  std::string url;
  std::string method;
  std::vector<std::string> allow_hosts;
  json arguments;
  std::chrono::milliseconds timeout{};
  Clock::time_point deadline;
  std::optional<TraceContext> trace;
};

// State the transfer's callbacks share with the thread that runs it.
struct Transfer {
  std::string body;
  size_t limit = 0;
  bool truncated = false;
  const std::atomic<bool>* stopping = nullptr;
  std::vector<IpAddress> allowed;  // the checked addresses, the only ones a socket may reach
  std::string refused;             // an address the socket hook refused
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  size_t room = t->limit - t->body.size();
  if (n > room) {
    t->body.append(data, room);
    t->truncated = true;
    return 0;  // stops the transfer: the rest would be cut anyway
  }
  t->body.append(data, n);
  return n;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Transfer*>(user)->stopping->load() ? 1 : 0;
}

// The last line of defence against a parser or resolver disagreement: a socket is opened only
// towards an address the policy checked.
curl_socket_t OnOpenSocket(void* user, curlsocktype, curl_sockaddr* address) {
  auto* t = static_cast<Transfer*>(user);
  std::optional<IpAddress> ip = net::AddressOf(&address->addr);
  if (!ip) {
    t->refused = "a non-IP address";
    return CURL_SOCKET_BAD;
  }
  if (std::find(t->allowed.begin(), t->allowed.end(), *ip) == t->allowed.end()) {
    t->refused = ip->ToString();
    return CURL_SOCKET_BAD;
  }
  return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

std::string AsQueryValue(const json& value) {
  return value.is_string() ? value.get<std::string>()
                           : value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string Escaped(CURL* easy, const std::string& text) {
  char* escaped = curl_easy_escape(easy, text.data(), static_cast<int>(text.size()));
  std::string out = escaped ? escaped : "";
  curl_free(escaped);
  return out;
}

// The GET url: `base` with the arguments appended to its query.
Result<std::string> WithQuery(CURL* easy, const std::string& base, const json& arguments) {
  curl::UrlHandle url = curl::NewUrl();
  if (!url || curl_url_set(url.get(), CURLUPART_URL, base.c_str(), 0) != CURLUE_OK) {
    return Fail(ErrorCode::kInternal, "cannot parse checked url " + base);
  }
  for (const auto& [key, value] : arguments.items()) {
    if (value.is_null()) continue;
    std::string pair = Escaped(easy, key) + "=" + Escaped(easy, AsQueryValue(value));
    curl_url_set(url.get(), CURLUPART_QUERY, pair.c_str(), CURLU_APPENDQUERY);
  }
  char* text = nullptr;
  if (curl_url_get(url.get(), CURLUPART_URL, &text, 0) != CURLUE_OK) {
    return Fail(ErrorCode::kInternal, "cannot build the query of " + base);
  }
  std::string out(text);
  curl_free(text);
  return out;
}

json Interpret(long status, const std::string& content_type, const std::string& location,
               const Transfer& t) {
  json parsed = t.truncated || t.body.empty() ? json(json::value_t::discarded)
                                              : json::parse(t.body, nullptr, false);
  auto body_text = [&] {
    json out = {{"status", status}, {"contentType", content_type}, {"body", ValidUtf8(t.body)}};
    if (t.truncated) out["truncated"] = true;
    return out;
  };
  if (status >= 300 && status < 400) {
    return {{"status", status},
            {"error", "redirect not followed (tools never follow redirects)"},
            {"location", location}};
  }
  if (status >= 400) {
    json out = {{"status", status}, {"error", "HTTP " + std::to_string(status)}};
    if (!parsed.is_discarded()) {
      out["body"] = parsed;
    } else if (!t.body.empty()) {
      out["body"] = ValidUtf8(t.body);
      if (t.truncated) out["truncated"] = true;
    }
    return out;
  }
  if (!parsed.is_discarded()) return parsed;
  if (t.body.empty() && !t.truncated) return {{"status", status}};
  return body_text();
}

// The addresses `target` may be reached at: its literal address, or what `options.resolve`
// answers for its host; each checked against the network policy.
Result<std::vector<IpAddress>> CheckedAddresses(const ToolTarget& target,
                                                const HttpToolsOptions& options) {
  std::vector<IpAddress> addresses;
  if (target.literal) {
    addresses = {*target.literal};
  } else {
    ASSIGN_OR_RETURN(addresses, options.resolve(target.host));
  }
  RETURN_IF_ERROR(CheckAddresses(target, addresses, options.policy));
  return addresses;
}

// The method, url and body on `e`: a GET carries the arguments in its query (checked again:
// the model must not move the host), other methods as a JSON body. `url` and `body` must
// outlive the transfer.
Status SetRequest(CURL* e, const Call& call, const ToolTarget& target, std::string& url,
                  std::string& body) {
  url = target.url;
  if (call.method == "GET") {
    ASSIGN_OR_RETURN(url, WithQuery(e, target.url, call.arguments));
    ASSIGN_OR_RETURN(ToolTarget again, CheckUrl(url, call.allow_hosts));
    if (again.host != target.host || again.port != target.port || again.scheme != target.scheme) {
      return Fail(ErrorCode::kPermissionDenied,
                  "tool " + call.tool + ": the arguments changed the url's host");
    }
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    return Ok();
  }
  body = call.arguments.dump(-1, ' ', false, json::error_handler_t::replace);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  return Ok();
}

// The request headers: JSON accepted (and sent, but for GET), the tool's name, trace context.
bool AppendHeaders(HeaderList& headers, const Call& call) {
  return headers.Append("Accept: application/json") && headers.Append("Expect:") &&
         headers.Append("X-Synaps-Tool: " + call.tool) &&
         (call.method == "GET" || headers.Append("Content-Type: application/json")) &&
         (!call.trace || headers.Append("traceparent: " + call.trace->Traceparent())) &&
         (!call.trace || call.trace->tracestate.empty() ||
          headers.Append("tracestate: " + call.trace->tracestate));
}

// Pins the checked addresses (CURLOPT_RESOLVE): libcurl does no lookup of its own, so a DNS
// answer that changes between the check and the connect (rebinding) is never used.
bool PinAddresses(HeaderList& resolve, const ToolTarget& target,
                  const std::vector<IpAddress>& addresses) {
  if (target.literal) return true;
  std::string pinned;
  for (const auto& a : addresses) {
    pinned += (pinned.empty() ? "" : ",") + (a.v6 ? "[" + a.ToString() + "]" : a.ToString());
  }
  return resolve.Append(target.host + ":" + std::to_string(target.port) + ":" + pinned);
}

// The call's deadline passed before its answer (before it started, or during the transfer).
std::unexpected<Error> NoAnswerWithin(const Call& call) {
  return Fail(ErrorCode::kDeadlineExceeded, "tool " + call.tool + ": no answer within " +
                                                std::to_string(call.timeout.count()) + " ms");
}

// What the finished transfer means for the model: a refusal, a shutdown, a timeout, a failed
// connection, or the answer (Interpret).
Result<json> Outcome(CURL* e, CURLcode rc, const Call& call, const ToolTarget& target,
                     const Transfer& transfer, const char* error_text) {
  const std::string what = "tool " + call.tool;
  if (!transfer.refused.empty()) {
    return Fail(ErrorCode::kPermissionDenied,
                what + ": refused to connect to " + transfer.refused + ", an address not checked");
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK) return Fail(ErrorCode::kCancelled, what + ": shutting down");
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return NoAnswerWithin(call);
  }
  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && transfer.truncated)) {
    return Fail(ErrorCode::kUnavailable,
                what + ": " + call.method + " " + target.url +
                    " failed: " + (error_text[0] ? error_text : curl_easy_strerror(rc)));
  }
  long status = 0;
  char* content_type = nullptr;
  char* location = nullptr;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &content_type);
  curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &location);
  return Interpret(status, content_type ? content_type : "", location ? location : "", transfer);
}

Result<json> Perform(const Call& call, const HttpToolsOptions& options,
                     const std::atomic<bool>& stopping) {
  const std::string what = "tool " + call.tool;
  ASSIGN_OR_RETURN(ToolTarget target, CheckUrl(call.url, call.allow_hosts));
  ASSIGN_OR_RETURN(std::vector<IpAddress> addresses, CheckedAddresses(target, options));
  if (stopping) return Fail(ErrorCode::kCancelled, what + ": shutting down");
  auto remaining =
      std::chrono::duration_cast<std::chrono::milliseconds>(call.deadline - Clock::now());
  if (remaining.count() <= 0) {
    return NoAnswerWithin(call);
  }

  EasyHandle easy = curl::NewEasy();
  if (!easy) return Fail(ErrorCode::kInternal, "curl_easy_init failed");
  CURL* e = easy.get();
  std::string url, body;
  RETURN_IF_ERROR(SetRequest(e, call, target, url, body));
  HeaderList headers;
  if (!AppendHeaders(headers, call)) {
    return Fail(ErrorCode::kInternal, what + ": out of memory for headers");
  }
  HeaderList resolve;
  if (!PinAddresses(resolve, target, addresses)) {
    return Fail(ErrorCode::kInternal, what + ": out of memory for the pinned addresses");
  }

  Transfer transfer;
  transfer.limit = options.result_limit_bytes;
  transfer.stopping = &stopping;
  transfer.allowed = addresses;
  char error_text[CURL_ERROR_SIZE] = {};

  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(e, CURLOPT_RESOLVE, resolve.get());
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, OnOpenSocket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &transfer);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(e, CURLOPT_USERAGENT, "synaps-tools/1");
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(remaining.count()));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(remaining.count()));
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, &transfer);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error_text);

  CURLcode rc = curl_easy_perform(e);
  return Outcome(e, rc, call, target, transfer, error_text);
}

}  // namespace

Result<std::vector<IpAddress>> ResolveHost(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc == EAI_NONAME || rc == EAI_NODATA) {
    return Fail(ErrorCode::kNotFound, "tool host " + host + " does not resolve");
  }
  if (rc != 0) {
    return Fail(ErrorCode::kUnavailable,
                "cannot resolve tool host " + host + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(found, &freeaddrinfo);
  std::vector<IpAddress> out;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    std::optional<IpAddress> ip = net::AddressOf(a->ai_addr);
    if (ip && std::find(out.begin(), out.end(), *ip) == out.end()) out.push_back(*ip);
  }
  return out;
}

HttpToolsOptions HttpToolsOptions::FromEnvironment() {
  HttpToolsOptions options;
  options.policy = NetworkPolicy::FromEnvironment();
  return options;
}

HttpTools::HttpTools(asio::any_io_executor executor, HttpToolsOptions options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      alive_(std::make_shared<char>()),
      pool_(std::max<size_t>(1, options_.threads)) {
  if (!options_.resolve) options_.resolve = ResolveHost;
}

HttpTools::~HttpTools() {
  alive_.reset();
  stopping_ = true;
  pool_.stop();  // calls still waiting never start
  pool_.join();  // running ones see `stopping_` and abort
}

std::unique_ptr<HttpTools> HttpTools::FromEnvironment(asio::any_io_executor executor) {
  return std::make_unique<HttpTools>(std::move(executor), HttpToolsOptions::FromEnvironment());
}

void HttpTools::InvokeText(const control::Tool& tool, std::string_view arguments, Done done) {
  json parsed = arguments.empty() ? json::object() : json::parse(arguments, nullptr, false);
  if (parsed.is_discarded()) {
    Reply(std::move(done),
          Fail(ErrorCode::kInvalidArgument,
               "tool " + tool.name + ": the arguments are not valid JSON", "arguments"));
    return;
  }
  Invoke(tool, parsed, std::move(done));
}

void HttpTools::Invoke(const control::Tool& tool, const json& arguments, Done done,
                       const std::optional<TraceContext>& trace) {
  json args = arguments.is_null() ? json::object() : arguments;
  Status valid = [&]() -> Status {
    if (tool.type != control::ToolType::kHttp) {
      return Fail(ErrorCode::kInvalidArgument, "tool " + tool.name + " is not an http tool");
    }
    if (!args.is_object()) {
      return Fail(ErrorCode::kInvalidArgument,
                  "tool " + tool.name + ": the arguments must be a JSON object", "arguments");
    }
    if (args.dump(-1, ' ', false, json::error_handler_t::replace).size() >
        options_.max_argument_bytes) {
      return Fail(ErrorCode::kInvalidArgument,
                  "tool " + tool.name + ": the arguments exceed " +
                      std::to_string(options_.max_argument_bytes) + " bytes",
                  "arguments");
    }
    if (!tool.parameters.is_null()) {
      Status schema = control::ValidateJson(args, tool.parameters);
      if (!schema) {
        Error e = schema.error();
        e.message =
            "tool " + tool.name + ": the arguments do not match its parameters: " + e.message;
        return std::unexpected(std::move(e));
      }
    }
    return Ok();
  }();
  if (!valid) {
    Reply(std::move(done), std::unexpected(valid.error()));
    return;
  }
  auto timeout = std::clamp(std::chrono::milliseconds(tool.timeout_ms),
                            std::chrono::milliseconds(1), options_.max_timeout);
  Call call{tool.name,
            tool.url,
            tool.method == "GET" ? "GET" : "POST",
            tool.allow_hosts,
            std::move(args),
            timeout,
            Clock::now() + timeout,
            trace};
  // The weak token is taken here, on the executor's thread, because the destructor resets it
  // there; the pool thread only carries it back.
  asio::post(pool_, [this, alive = std::weak_ptr<char>(alive_), call = std::move(call),
                     done = std::move(done)]() mutable {
    // The pool thread's barrier: a call that throws answers its caller with kInternal and the
    // thread serves the next call.
    Result<json> result =
        Guarded("tool " + call.tool, [&] { return Perform(call, options_, stopping_); });
    asio::post(executor_, [alive = std::move(alive), done = std::move(done),
                           result = std::move(result)]() mutable {
      if (alive.lock()) done(std::move(result));
    });
  });
}

void HttpTools::Reply(Done done, Result<json> result) {
  asio::post(executor_, [alive = std::weak_ptr<char>(alive_), done = std::move(done),
                         result = std::move(result)]() mutable {
    if (alive.lock()) done(std::move(result));
  });
}

}  // namespace synaps::tools
