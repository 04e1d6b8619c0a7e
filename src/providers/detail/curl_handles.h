// The one RAII owner of each libcurl handle type used by the providers. Non-copyable, movable.
#pragma once

#include <curl/curl.h>

#include <memory>

namespace synaps::providers::detail {

struct EasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct MultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

// A CURL easy handle. It must be out of any multi handle before it is destroyed.
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
// A CURLM multi handle. Its easy handles must be removed before it is destroyed.
using MultiHandle = std::unique_ptr<CURLM, MultiDeleter>;
// A header list. It must outlive every transfer that uses it (CURLOPT_HTTPHEADER).
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;

// Calls curl_global_init once per process; safe from any thread (libcurl 7.84+ is built
// thread-safe, see `curl -V`: "threadsafe").
void EnsureCurlGlobalInit();

}  // namespace synaps::providers::detail
