#include "curl/handles.h"

#include <mutex>

namespace synaps::curl {

void EnsureGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

EasyHandle NewEasy() {
  EnsureGlobalInit();
  return EasyHandle(curl_easy_init());
}

MultiHandle NewMulti() {
  EnsureGlobalInit();
  return MultiHandle(curl_multi_init());
}

UrlHandle NewUrl() {
  EnsureGlobalInit();
  return UrlHandle(curl_url());
}

HeaderList& HeaderList::operator=(HeaderList&& other) noexcept {
  if (this != &other) {
    if (list_ != nullptr) curl_slist_free_all(list_);
    list_ = other.list_;
    other.list_ = nullptr;
  }
  return *this;
}

HeaderList::~HeaderList() {
  if (list_ != nullptr) curl_slist_free_all(list_);
}

bool HeaderList::Append(const std::string& line) {
  curl_slist* next = curl_slist_append(list_, line.c_str());
  if (next == nullptr) return false;
  list_ = next;
  return true;
}

}  // namespace synaps::curl
