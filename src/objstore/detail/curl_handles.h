// One RAII owner per libcurl handle: CurlEasy owns a CURL*, CurlHeaders owns a curl_slist*.
// Both are movable and not copyable. Neither is thread-safe; a handle is used by one thread at a
// time (S3Client keeps idle easy handles in a pool guarded by its mutex).
#pragma once

#include <curl/curl.h>

#include <memory>
#include <string>

namespace synaps::objstore::detail {

// curl_global_init, once per process, before the first handle is made.
void EnsureCurlGlobalInit();

class CurlEasy {
 public:
  // A fresh handle; get() is null only if libcurl is out of memory.
  static CurlEasy Create();
  CURL* get() const { return handle_.get(); }
  explicit operator bool() const { return handle_ != nullptr; }

 private:
  struct Deleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
  };
  std::unique_ptr<CURL, Deleter> handle_;
};

class CurlHeaders {
 public:
  CurlHeaders() = default;
  CurlHeaders(CurlHeaders&& other) noexcept : list_(other.list_) { other.list_ = nullptr; }
  CurlHeaders& operator=(CurlHeaders&& other) noexcept {
    if (this != &other) {
      if (list_) curl_slist_free_all(list_);
      list_ = other.list_;
      other.list_ = nullptr;
    }
    return *this;
  }
  CurlHeaders(const CurlHeaders&) = delete;
  CurlHeaders& operator=(const CurlHeaders&) = delete;
  ~CurlHeaders() {
    if (list_) curl_slist_free_all(list_);
  }

  // Adds "Name: value". Returns false when libcurl could not allocate (the list is unchanged).
  bool Append(const std::string& line) {
    curl_slist* next = curl_slist_append(list_, line.c_str());
    if (next == nullptr) return false;
    list_ = next;
    return true;
  }
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

}  // namespace synaps::objstore::detail
