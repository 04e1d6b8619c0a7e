// The one owner of libcurl in Synaps: its process-wide initialization and the RAII owner of each
// libcurl handle type. Every component that speaks HTTP through libcurl uses these (providers,
// the S3 client, the Kubernetes client, HTTP tools, the URL policy in net/, the blocking client
// in http/ and the CLI), so there is one curl_global_init and one definition of each owner.
//
// Every owner is movable and not copyable, and frees its handle with the matching libcurl
// cleanup call. None is thread-safe: a handle is used by one thread at a time.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <string>

namespace synaps::curl {

// curl_global_init(CURL_GLOBAL_DEFAULT), once per process; safe from any thread (libcurl 7.84+
// is built thread-safe: `curl -V` lists "threadsafe"). The New* functions below call it, so
// code that makes its handles through them never needs to.
void EnsureGlobalInit();

struct EasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct MultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
struct UrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};

// A CURL easy handle. It must be out of any multi handle before it is destroyed.
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
// A CURLM multi handle. Its easy handles must be removed before it is destroyed.
using MultiHandle = std::unique_ptr<CURLM, MultiDeleter>;
// A parsed URL (libcurl's URL API).
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

// Fresh handles, after EnsureGlobalInit(); null only when libcurl is out of memory.
EasyHandle NewEasy();
MultiHandle NewMulti();
UrlHandle NewUrl();

// A curl_slist of lines (request headers, CURLOPT_RESOLVE entries). It must outlive every
// transfer that uses it.
class HeaderList {
 public:
  HeaderList() = default;
  HeaderList(HeaderList&& other) noexcept : list_(other.list_) { other.list_ = nullptr; }
  HeaderList& operator=(HeaderList&& other) noexcept;
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;
  ~HeaderList();

  // Adds a line ("Name: value"). False when libcurl could not allocate; the list is unchanged.
  bool Append(const std::string& line);
  curl_slist* get() const { return list_; }
  bool empty() const { return list_ == nullptr; }

 private:
  curl_slist* list_ = nullptr;
};

}  // namespace synaps::curl
