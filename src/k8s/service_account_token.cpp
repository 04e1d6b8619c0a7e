#include "k8s/service_account_token.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace synaps::k8s {

ServiceAccountToken::ServiceAccountToken(std::string path) : path_(std::move(path)) {}

Result<std::string> ServiceAccountToken::Current() {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    return Fail(ErrorCode::kUnauthenticated,
                "cannot read the service-account token " + path_ + ": " + std::strerror(errno));
  }
  Identity now{st.st_dev, st.st_ino, st.st_size,
               static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  if (!token_.empty() && now == identity_) return token_;

  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    return Fail(ErrorCode::kUnauthenticated,
                "cannot read the service-account token " + path_ + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  ++reads_;
  std::string token = text.str();
  size_t b = token.find_first_not_of(" \t\r\n");
  size_t e = token.find_last_not_of(" \t\r\n");
  token = b == std::string::npos ? "" : token.substr(b, e - b + 1);
  if (token.empty()) {
    return Fail(ErrorCode::kUnauthenticated, "the service-account token " + path_ + " is empty");
  }
  if (token.find_first_of("\r\n") != std::string::npos) {
    return Fail(ErrorCode::kUnauthenticated,
                "the service-account token " + path_ + " spans several lines; it is not a token");
  }
  token_ = std::move(token);
  identity_ = now;
  return token_;
}

}  // namespace synaps::k8s
