// RFC 9112 framing rules of the HTTP server and the header check of its response path
// (src/api/http_types.h); the same rules through a real server are in tests/e2e/api_guard_test.
#include <gtest/gtest.h>

#include "api/http_types.h"

namespace synaps::api {
namespace {

int Check(unsigned version, std::string_view target, int hosts, std::string_view te = {},
          bool length = false) {
  std::string why;
  int status = CheckRequestFraming(version, "GET", target, hosts, te, length, &why);
  if (status != 0) {
    EXPECT_FALSE(why.empty());
  }
  return status;
}

TEST(HttpFramingTest, Http11NeedsExactlyOneHost) {
  EXPECT_EQ(Check(11, "/v1/runs", 1), 0);
  EXPECT_EQ(Check(11, "/v1/runs", 0), 400);
  EXPECT_EQ(Check(11, "/v1/runs", 2), 400);
  EXPECT_EQ(Check(10, "/v1/runs", 0), 0);
  EXPECT_EQ(Check(20, "/v1/runs", 1), 505);
}

TEST(HttpFramingTest, TargetsAreTakenAsSent) {
  EXPECT_EQ(Check(11, "Xv1/runs", 1), 400);
  EXPECT_EQ(Check(11, "*", 1), 400);
  EXPECT_EQ(Check(11, "example.com:443", 1), 400);
  EXPECT_EQ(OriginFormTarget("/v1/runs?x=1"), "/v1/runs?x=1");
  EXPECT_EQ(OriginFormTarget("Xv1/runs"), "");
  EXPECT_EQ(OriginFormTarget("http://h:1/v1/runs?x"), "/v1/runs?x");
  EXPECT_EQ(OriginFormTarget("HTTP://h"), "/");
  EXPECT_EQ(OriginFormTarget("http://h?q"), "/?q");
  EXPECT_EQ(OriginFormTarget("http:///x"), "");
}

TEST(HttpFramingTest, OnlyChunkedAloneIsAcceptedAsTransferCoding) {
  EXPECT_EQ(Check(11, "/", 1, "chunked"), 0);
  EXPECT_EQ(Check(11, "/", 1, "Chunked "), 0);
  EXPECT_EQ(Check(11, "/", 1, "chunked", /*length=*/true), 400);
  EXPECT_EQ(Check(11, "/", 1, "xchunked", /*length=*/true), 400);
  EXPECT_EQ(Check(11, "/", 1, "xchunked"), 400);  // chunked is not final
  EXPECT_EQ(Check(11, "/", 1, "gzip, chunked"), 501);
  EXPECT_EQ(Check(11, "/", 1, "chunked, chunked"), 501);
  EXPECT_EQ(Check(11, "/", 1, "chunked, gzip"), 400);
  EXPECT_EQ(Check(11, "/", 1, "a b, chunked"), 400);
  EXPECT_EQ(Check(10, "/", 0, "chunked"), 400);
}

TEST(HttpFramingTest, ResponsesWithControlCharactersInHeadersAreFlagged) {
  HttpResponse r;
  EXPECT_EQ(UnsafeResponseHeader(r), "");
  r.content_type = "text/plain\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nX-Smuggled: 1";
  EXPECT_EQ(UnsafeResponseHeader(r), "Content-Type");
  r.content_type = "text/plain";
  r.headers = {{"ETag", "\"x\""}, {"X-Request-Id", "a\nSet-Cookie: pwned=1"}};
  EXPECT_EQ(UnsafeResponseHeader(r), "X-Request-Id");
  r.headers = {{"Bad Name", "v"}};
  EXPECT_FALSE(UnsafeResponseHeader(r).empty());
}

}  // namespace
}  // namespace synaps::api
