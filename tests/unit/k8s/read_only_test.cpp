// The Kubernetes client is read-only by construction: its request builder makes only GET
// requests, and no source file under src/k8s contains another HTTP verb or a libcurl option
// that would send one. The integration tests check the wire as well (every request the fake
// API server saw was a GET).
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "k8s/detail/get_request.h"

namespace synaps::k8s::detail {
namespace {

TEST(GetRequestTest, BuildsAGetWithAnEncodedQuery) {
  auto r = BuildGetRequest("GET", "https://10.96.0.1:443", "/api/v1/namespaces/agents/pods",
                           {20, "app in (web,api),tier!=db", "status.phase=Running"});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->url,
            "https://10.96.0.1:443/api/v1/namespaces/agents/pods?limit=20"
            "&labelSelector=app%20in%20%28web%2Capi%29%2Ctier%21%3Ddb"
            "&fieldSelector=status.phase%3DRunning");
}

TEST(GetRequestTest, LeavesOutEmptyParameters) {
  auto r = BuildGetRequest("GET", "https://k:6443", "/api/v1/namespaces/a/events");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->url, "https://k:6443/api/v1/namespaces/a/events");
}

TEST(GetRequestTest, RefusesEveryOtherVerb) {
  for (const char* verb :
       {"POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "get", "GET ", ""}) {
    auto r = BuildGetRequest(verb, "https://k:6443", "/api/v1/namespaces/a/pods");
    ASSERT_FALSE(r) << verb;
    EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied) << verb;
    EXPECT_NE(r.error().message.find("read-only"), std::string::npos) << r.error().message;
  }
}

TEST(GetRequestTest, RefusesPathsThatAreNotApiPaths) {
  for (const char* path : {"/healthz", "api/v1/pods", "/api/v1/namespaces/a/pods?watch=1",
                           "/api/v1/namespaces/../pods", "/api/v1//pods", "/api/v1/a b",
                           "/api/v1/namespaces/a/pods#x", "/api/v1/%2e%2e/x"}) {
    auto r = BuildGetRequest("GET", "https://k:6443", path);
    ASSERT_FALSE(r) << path;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << path;
  }
}

TEST(GetRequestTest, PercentEncodesAllButUnreserved) {
  EXPECT_EQ(PercentEncode("aZ09-._~"), "aZ09-._~");
  EXPECT_EQ(PercentEncode("a=b&c d/é"), "a%3Db%26c%20d%2F%C3%A9");
}

// Every file under src/k8s, with its text.
std::vector<std::pair<std::string, std::string>> K8sSources() {
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(SYNAPS_K8S_SOURCE_DIR)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    files.emplace_back(entry.path().string(), text.str());
  }
  return files;
}

// Whether an identifier in the sources is a write verb or a libcurl feature that sends a body.
bool Forbidden(const std::string& word) {
  static const std::set<std::string> kExact = {"POST",
                                               "PUT",
                                               "PATCH",
                                               "DELETE",
                                               "CURLOPT_PUT",
                                               "CURLOPT_NOBODY",
                                               "CURLOPT_CUSTOMREQUEST",
                                               "CURLOPT_MIMEPOST",
                                               "CURLOPT_HTTPPOST",
                                               "CURLOPT_COPYPOSTFIELDS",
                                               "CURLOPT_READFUNCTION",
                                               "CURLOPT_READDATA",
                                               "curl_formadd"};
  static const std::vector<std::string> kPrefixes = {"CURLOPT_POST", "CURLOPT_UPLOAD",
                                                     "CURLOPT_INFILESIZE", "curl_mime_"};
  if (kExact.contains(word)) return true;
  for (const auto& prefix : kPrefixes) {
    if (word.starts_with(prefix)) return true;
  }
  return false;
}

TEST(ReadOnlySourcesTest, NoSourceNamesAWriteVerbOrABodySendingCurlOption) {
  auto files = K8sSources();
  ASSERT_GE(files.size(), 10u) << "found too few sources under " << SYNAPS_K8S_SOURCE_DIR;
  bool sets_get = false;
  for (const auto& [path, text] : files) {
    std::istringstream lines(text);
    std::string line;
    int number = 0;
    while (std::getline(lines, line)) {
      ++number;
      // Every identifier-like word of the line, comments and strings included.
      std::string word;
      for (size_t i = 0; i <= line.size(); ++i) {
        char c = i < line.size() ? line[i] : ' ';
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
          word += c;
          continue;
        }
        EXPECT_FALSE(Forbidden(word))
            << path << ":" << number << " names '" << word << "': " << line;
        if (word == "CURLOPT_HTTPGET") sets_get = true;
        word.clear();
      }
    }
  }
  EXPECT_TRUE(sets_get) << "the client should ask libcurl for GET explicitly";
}

TEST(ReadOnlySourcesTest, TheScanCatchesWhatItLooksFor) {
  EXPECT_TRUE(Forbidden("DELETE"));
  EXPECT_TRUE(Forbidden("CURLOPT_POSTFIELDS"));
  EXPECT_TRUE(Forbidden("CURLOPT_UPLOAD_BUFFERSIZE"));
  EXPECT_TRUE(Forbidden("curl_mime_init"));
  EXPECT_FALSE(Forbidden("CURLOPT_HTTPGET"));
  EXPECT_FALSE(Forbidden("POSTED"));
  EXPECT_FALSE(Forbidden("Deleter"));
}

}  // namespace
}  // namespace synaps::k8s::detail
