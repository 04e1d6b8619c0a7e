// The Kubernetes client is read-only by construction: its request builder makes only GET
// requests, and no source file under src/k8s contains another HTTP verb or a libcurl option
// that would send one. The integration tests check the wire as well (every request the fake
// API server saw was a GET).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

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

TEST(ReadOnlySourcesTest, NoSourceNamesAWriteVerbOrABodySendingCurlOption) {
  auto files = K8sSources();
  ASSERT_GE(files.size(), 10u) << "found too few sources under " << SYNAPS_K8S_SOURCE_DIR;
  const std::regex forbidden(
      R"(\b(POST|PUT|PATCH|DELETE)\b)"
      R"(|CURLOPT_(POST\w*|COPYPOSTFIELDS|PUT|UPLOAD\w*|CUSTOMREQUEST|MIMEPOST|HTTPPOST|READFUNCTION|READDATA|NOBODY|INFILESIZE\w*))"
      R"(|curl_mime_\w+|curl_formadd)");
  bool sets_get = false;
  for (const auto& [path, text] : files) {
    std::istringstream lines(text);
    std::string line;
    int number = 0;
    while (std::getline(lines, line)) {
      ++number;
      std::smatch match;
      EXPECT_FALSE(std::regex_search(line, match, forbidden))
          << path << ":" << number << " names '" << match.str() << "': " << line;
    }
    if (text.find("CURLOPT_HTTPGET") != std::string::npos) sets_get = true;
  }
  EXPECT_TRUE(sets_get) << "the client should ask libcurl for GET explicitly";
}

}  // namespace
}  // namespace synaps::k8s::detail
