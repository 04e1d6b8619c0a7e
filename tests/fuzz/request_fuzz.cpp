// libFuzzer entry point: every parser a request body or Content-Type header reaches, fed the
// same bytes. Parse failures must be values (kInvalidArgument naming a field), never crashes,
// exceptions, sanitizer reports or hangs; and what a parser accepts must respect the limits its
// header promises. A broken promise calls __builtin_trap(), which libFuzzer reports as a crash.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "api/http_types.h"
#include "api/request_validation.h"
#include "core/http_grammar.h"

namespace {

using synaps::ErrorCode;

// Names the broken promise on stderr before trapping, so a crash report says which one.
#define CHECK(condition)                                                                  \
  do {                                                                                    \
    if (!(condition)) {                                                                   \
      std::fprintf(stderr, "request_fuzz: %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
                   #condition);                                                           \
      __builtin_trap();                                                                   \
    }                                                                                     \
  } while (0)

template <class T>
void CheckRefusal(const synaps::Result<T>& r) {
  if (r) return;
  CHECK(r.error().code == ErrorCode::kInvalidArgument);
  // `field` names the member at fault, which may be the empty key itself ({"": 1}).
  CHECK(!r.error().message.empty());
}

void FuzzSubmit(const std::string& body) {
  auto r = synaps::api::ParseSubmitRequest(body);
  CheckRefusal(r);
  if (!r) return;
  CHECK(r->kind == "prompt" || r->kind == "agent");
  CHECK(!r->tasks.empty() && r->tasks.size() <= 100);
  CHECK(r->priority >= -1000 && r->priority <= 1000);
  CHECK(r->max_attempts >= 1 && r->max_attempts <= 100);
  CHECK(!r->queue.empty() && r->queue.size() <= 63);
  CHECK(r->request_hash.size() == 64);
  for (const auto& t : r->tasks) {
    CHECK(!t.name.empty() && t.name.size() <= 64);
    CHECK(t.spec.is_object() && t.spec.value("kind", "") == r->kind);
    if (t.spec.contains("input")) {
      const auto& input = t.spec["input"];
      CHECK(input.is_object() && input.contains("text") && input["text"].is_string() &&
            !input["text"].get_ref<const std::string&>().empty());
    }
  }
}

void FuzzQueueBodies(const std::string& body) {
  auto claim = synaps::api::ParseClaimRequest(body);
  CheckRefusal(claim);
  if (claim) {
    CHECK(claim->limit >= 1 && claim->limit <= 100);
    CHECK(claim->lease_seconds >= 1 && claim->lease_seconds <= 3600);
    CHECK(!claim->queues.empty() && claim->queues.size() <= 32);
    CHECK(!claim->worker.empty() && claim->worker.size() <= 128);
  }
  auto renew = synaps::api::ParseRenewRequest(body);
  CheckRefusal(renew);
  if (renew) CHECK(renew->lease_epoch >= 1 && renew->lease_seconds >= 1);
  auto complete = synaps::api::ParseCompleteRequest(body);
  CheckRefusal(complete);
  if (complete) {
    CHECK(complete->lease_epoch >= 1);
    CHECK(complete->output.is_object());
    CHECK(complete->artifacts.size() <= 32);
    for (const auto& a : complete->artifacts) {
      CHECK(!a.name.empty() && a.name.size() <= 128);
      CHECK(!a.content_type.empty() && a.content_type.size() <= 128);
      CHECK(a.bytes.size() <= body.size());
    }
  }
  auto fail = synaps::api::ParseFailRequest(body);
  CheckRefusal(fail);
  if (fail) {
    CHECK(fail->lease_epoch >= 1);
    CHECK(fail->error["message"].is_string() && fail->error["code"].is_string());
  }
}

void FuzzApiKey(const std::string& body) {
  auto r = synaps::api::ParseApiKeyRequest(body);
  CheckRefusal(r);
  if (!r) return;
  CHECK(r->role == "admin" || r->role == "operator" || r->role == "worker" || r->role == "viewer");
  CHECK(r->name.size() <= 200);
  if (r->tenant_id) CHECK(!r->tenant_id->empty() && r->tenant_id->size() <= 64);
}

}  // namespace

bool HasLineBreakOrNul(const std::string& s) {
  return s.find_first_of(std::string("\r\n\0", 3)) != std::string::npos;
}

// The response path: whatever a worker or a stored row puts in a header value (an artifact's
// content type above all) must either be refused or be unable to split the response.
void FuzzResponseHeaders(const std::string& input) {
  synaps::api::HttpResponse r;
  r.content_type = input;
  std::string bad = synaps::api::UnsafeResponseHeader(r);
  if (bad.empty()) CHECK(!HasLineBreakOrNul(input));
  r.content_type = "text/plain";
  r.headers.push_back({"X-Test", input});
  bad = synaps::api::UnsafeResponseHeader(r);
  CHECK(bad.empty() == synaps::IsSafeHeaderValue(input));
  r.headers = {{input, "v"}};
  if (synaps::api::UnsafeResponseHeader(r).empty()) CHECK(synaps::IsHttpToken(input));
  // A media type accepted for storage is a safe header value, and its essence a prefix of it.
  if (synaps::IsMediaType(input)) {
    CHECK(synaps::IsSafeHeaderValue(input));
    CHECK(input.size() <= synaps::kMaxMediaTypeBytes);
    std::string essence = synaps::MediaTypeEssence(input);
    CHECK(!essence.empty() && essence.find('/') != std::string::npos);
    CHECK(essence.size() <= input.size());
  } else {
    CHECK(synaps::MediaTypeEssence(input).empty());
  }
  // Request targets: what reaches the router is origin-form or nothing.
  std::string target = synaps::api::OriginFormTarget(input);
  CHECK(target.empty() || target.front() == '/');
  std::string why;
  int status = synaps::api::CheckRequestFraming(11, "GET", input, 1, input, false, &why);
  CHECK(status == 0 || (status >= 400 && status <= 505 && !why.empty()));
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  (void)synaps::api::IsJsonContentType(input);
  FuzzSubmit(input);
  FuzzQueueBodies(input);
  FuzzApiKey(input);
  FuzzResponseHeaders(input);
  return 0;
}
