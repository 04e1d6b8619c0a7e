// S3ObjectStore against a local capture server: the exact requests each operation sends (every
// one verified by the independent SigV4 implementation), and the failure handling that a real
// S3 server will not show on demand: retries on 5xx and timeouts, no retry on 403, aborting a
// failed multipart upload, an error inside a 200 reply, continuation tokens.
#include "objstore/s3_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "capture_server.h"
#include "sigv4_reference.h"

namespace synaps::objstore {
namespace {

using testing::CannedReply;
using testing::CapturedRequest;
using testing::CaptureServer;

constexpr const char* kKey = "AKIDTEST";
constexpr const char* kSecret = "secret/with+chars";

class S3StoreTest : public ::testing::Test {
 protected:
  S3Options Options() {
    S3Options o;
    o.bucket = "bucket";
    o.region = "eu-west-1";
    o.endpoint = "http://127.0.0.1:" + std::to_string(server_.port());
    o.path_style = true;
    o.access_key_id = kKey;
    o.secret_access_key = kSecret;
    o.retry_base = std::chrono::milliseconds(1);
    o.retry_cap = std::chrono::milliseconds(5);
    return o;
  }

  // Every request the server saw must carry a valid signature.
  void ExpectAllSigned() {
    for (const auto& r : server_.requests()) {
      EXPECT_EQ(testing::VerifyS3Request(r, kKey, kSecret, "eu-west-1"), "")
          << r.method << " " << r.target;
    }
  }

  CaptureServer server_;
};

TEST_F(S3StoreTest, PutSendsOneSignedPutWithContentType) {
  S3ObjectStore store(Options());
  ASSERT_TRUE(store.Put("objects/a b+c$d.txt", "hello", "text/markdown"));
  auto got = server_.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method, "PUT");
  EXPECT_EQ(got[0].target, "/bucket/objects/a%20b%2Bc%24d.txt");
  EXPECT_EQ(got[0].body, "hello");
  EXPECT_EQ(got[0].Header("content-type"), "text/markdown");
  EXPECT_NE(got[0].Header("authorization").find("content-type;"), std::string::npos);
  ExpectAllSigned();
}

TEST_F(S3StoreTest, ReferenceVerifierRejectsTamperedRequests) {
  S3ObjectStore store(Options());
  ASSERT_TRUE(store.Put("objects/k", "hello", "text/markdown"));
  CapturedRequest sent = server_.requests().at(0);
  EXPECT_EQ(testing::VerifyS3Request(sent, kKey, kSecret, "eu-west-1"), "");
  CapturedRequest body = sent;
  body.body = "hellO";
  EXPECT_NE(testing::VerifyS3Request(body, kKey, kSecret, "eu-west-1"), "");
  CapturedRequest path = sent;
  path.target = "/bucket/objects/K";
  EXPECT_NE(testing::VerifyS3Request(path, kKey, kSecret, "eu-west-1"), "");
  CapturedRequest type = sent;
  for (auto& [n, v] : type.headers) {
    if (n == "content-type") v = "text/html";
  }
  EXPECT_NE(testing::VerifyS3Request(type, kKey, kSecret, "eu-west-1"), "");
  EXPECT_NE(testing::VerifyS3Request(sent, kKey, "other-secret", "eu-west-1"), "");
  EXPECT_NE(testing::VerifyS3Request(sent, kKey, kSecret, "us-east-1"), "");
}

TEST_F(S3StoreTest, VirtualHostStylePutsBucketInHost) {
  S3Options o = Options();
  o.path_style = false;
  o.endpoint = "http://s3.example.test";
  o.connect_to = {"bucket.s3.example.test:80:127.0.0.1:" + std::to_string(server_.port())};
  S3ObjectStore store(o);
  ASSERT_TRUE(store.Put("k/v", "x", "text/plain"));
  auto got = server_.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].Header("host"), "bucket.s3.example.test");
  EXPECT_EQ(got[0].target, "/k/v");
  ExpectAllSigned();
}

TEST_F(S3StoreTest, SessionTokenIsSentAndSigned) {
  S3Options o = Options();
  o.session_token = "FQoGZXIvYXdzEXAMPLE/token==";
  S3ObjectStore store(o);
  ASSERT_TRUE(store.Exists("a"));
  auto got = server_.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method, "HEAD");
  EXPECT_EQ(got[0].Header("x-amz-security-token"), "FQoGZXIvYXdzEXAMPLE/token==");
  ExpectAllSigned();  // checks that every x-amz-* header is signed
}

TEST_F(S3StoreTest, GetExistsDeleteMapStatuses) {
  server_.SetHandler([](const CapturedRequest& r) {
    if (r.path() == "/bucket/missing")
      return CannedReply{.status = 404, .body = "<Error><Code>NoSuchKey</Code></Error>"};
    if (r.method == "DELETE") return CannedReply{.status = 204};
    return CannedReply{.status = 200, .body = "content"};
  });
  S3ObjectStore store(Options());
  auto got = store.Get("present");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(*got, "content");
  auto missing = store.Get("missing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store.Exists("missing").value_or(true), false);
  EXPECT_EQ(store.Exists("present").value_or(false), true);
  EXPECT_TRUE(store.Delete("present"));
  EXPECT_TRUE(store.Delete("missing"));  // deleting an absent key is fine
  ExpectAllSigned();
}

TEST_F(S3StoreTest, RetriesServerErrorsThenSucceeds) {
  std::atomic<int> calls{0};
  server_.SetHandler([&](const CapturedRequest&) {
    int n = ++calls;
    if (n == 1) return CannedReply{.status = 500};
    if (n == 2) return CannedReply{.status = 503, .body = "<Error><Code>SlowDown</Code></Error>"};
    return CannedReply{.status = 200};
  });
  S3ObjectStore store(Options());
  auto put = store.Put("k", "data", "text/plain");
  ASSERT_TRUE(put) << put.error().message;
  auto got = server_.requests();
  ASSERT_EQ(got.size(), 3u);
  for (const auto& r : got) EXPECT_EQ(r.body, "data");  // the body is sent again in full
  ExpectAllSigned();
}

TEST_F(S3StoreTest, GivesUpAfterMaxAttemptsWithUnavailable) {
  server_.SetHandler([](const CapturedRequest&) {
    return CannedReply{.status = 500,
                       .body =
                           "<Error><Code>InternalError</Code><Message>We "
                           "encountered an internal error</Message></Error>"};
  });
  S3Options o = Options();
  o.max_attempts = 3;
  S3ObjectStore store(o);
  auto put = store.Put("k", "data", "text/plain");
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(put.error().message.find("InternalError"), std::string::npos) << put.error().message;
  EXPECT_EQ(server_.requests().size(), 3u);
}

TEST_F(S3StoreTest, DoesNotRetryAccessDenied) {
  server_.SetHandler([](const CapturedRequest&) {
    return CannedReply{.status = 403,
                       .body =
                           "<Error><Code>SignatureDoesNotMatch</Code>"
                           "<Message>bad</Message></Error>"};
  });
  S3ObjectStore store(Options());
  auto get = store.Get("k");
  ASSERT_FALSE(get);
  EXPECT_EQ(get.error().code, ErrorCode::kPermissionDenied);
  EXPECT_NE(get.error().message.find("SignatureDoesNotMatch"), std::string::npos);
  EXPECT_EQ(server_.requests().size(), 1u);
}

TEST_F(S3StoreTest, WrongRegionRedirectNamesTheRegion) {
  server_.SetHandler([](const CapturedRequest&) {
    return CannedReply{.status = 301,
                       .headers = {{"x-amz-bucket-region", "ap-south-1"}},
                       .body = "<Error><Code>PermanentRedirect</Code></Error>"};
  });
  S3ObjectStore store(Options());
  auto get = store.Get("k");
  ASSERT_FALSE(get);
  EXPECT_EQ(get.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(get.error().message.find("region=ap-south-1"), std::string::npos)
      << get.error().message;
}

TEST_F(S3StoreTest, TimesOutAndRetriesAHangingServer) {
  server_.SetHandler([](const CapturedRequest&) {
    return CannedReply{.status = 200, .delay = std::chrono::seconds(30)};
  });
  S3Options o = Options();
  o.request_timeout = std::chrono::milliseconds(200);
  o.max_attempts = 2;
  S3ObjectStore store(o);
  auto started = std::chrono::steady_clock::now();
  auto get = store.Get("k");
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(get);
  EXPECT_EQ(get.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(server_.requests().size(), 2u);
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST_F(S3StoreTest, UnreachableEndpointIsUnavailable) {
  S3Options o = Options();
  {
    CaptureServer closed;  // a port that was free a moment ago
    o.endpoint = "http://127.0.0.1:" + std::to_string(closed.port());
  }
  o.max_attempts = 2;
  S3ObjectStore store(o);
  auto exists = store.Exists("k");
  ASSERT_FALSE(exists);
  EXPECT_EQ(exists.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(exists.error().retryable());
}

TEST_F(S3StoreTest, ConcurrentCallsShareOneStore) {
  S3ObjectStore store(Options());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::string key = "objects/t" + std::to_string(t) + "/" + std::to_string(i);
        if (!store.Put(key, key, "text/plain")) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto got = server_.requests();
  ASSERT_EQ(got.size(), 160u);
  for (const auto& r : got) EXPECT_EQ(r.body, r.path().substr(8));  // "/bucket/" + key
  ExpectAllSigned();
}

TEST_F(S3StoreTest, InvalidKeysAreRefusedWithoutARequest) {
  S3ObjectStore store(Options());
  for (std::string key : std::vector<std::string>{"", "/abs", "a/../b", "a\nb"}) {
    auto put = store.Put(key, "x", "text/plain");
    ASSERT_FALSE(put) << key;
    EXPECT_EQ(put.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(server_.requests().empty());
}

// A minimal multipart-capable server: answers Create, UploadPart and Complete like S3.
CannedReply MultipartReply(const CapturedRequest& r) {
  if (r.method == "POST" && r.query() == "uploads=") {
    return {.status = 200,
            .body =
                "<?xml version=\"1.0\"?><InitiateMultipartUploadResult><Bucket>bucket</Bucket>"
                "<Key>big</Key><UploadId>up&amp;load/1</UploadId>"
                "</InitiateMultipartUploadResult>"};
  }
  if (r.method == "PUT" && r.query().starts_with("partNumber=")) {
    return {
        .status = 200,
        .headers = {{"ETag", "\"etag-" + r.query().substr(11, r.query().find('&') - 11) + "\""}}};
  }
  if (r.method == "POST" && r.query().starts_with("uploadId=")) {
    return {.status = 200,
            .body =
                "<CompleteMultipartUploadResult><ETag>\"x-3\"</ETag>"
                "</CompleteMultipartUploadResult>"};
  }
  return {.status = 400};
}

TEST_F(S3StoreTest, LargePutUsesMultipartUpload) {
  server_.SetHandler(MultipartReply);
  S3Options o = Options();
  o.multipart_threshold = 1000;
  o.part_size = 400;
  S3ObjectStore store(o);
  std::string data(1001, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  auto put = store.Put("big", data, "application/octet-stream");
  ASSERT_TRUE(put) << put.error().message;

  auto got = server_.requests();
  ASSERT_EQ(got.size(), 5u);  // create, 3 parts, complete
  EXPECT_EQ(got[0].method, "POST");
  EXPECT_EQ(got[0].target, "/bucket/big?uploads=");
  EXPECT_EQ(got[0].Header("content-type"), "application/octet-stream");
  std::string joined;
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(got[i].method, "PUT");
    EXPECT_EQ(got[i].target,
              "/bucket/big?partNumber=" + std::to_string(i) + "&uploadId=up%26load%2F1");
    joined += got[i].body;
  }
  EXPECT_EQ(got[1].body.size(), 400u);
  EXPECT_EQ(got[3].body.size(), 201u);
  EXPECT_EQ(joined, data);
  EXPECT_EQ(got[4].method, "POST");
  EXPECT_EQ(got[4].target, "/bucket/big?uploadId=up%26load%2F1");
  EXPECT_EQ(got[4].body,
            "<CompleteMultipartUpload>"
            "<Part><PartNumber>1</PartNumber><ETag>&quot;etag-1&quot;</ETag></Part>"
            "<Part><PartNumber>2</PartNumber><ETag>&quot;etag-2&quot;</ETag></Part>"
            "<Part><PartNumber>3</PartNumber><ETag>&quot;etag-3&quot;</ETag></Part>"
            "</CompleteMultipartUpload>");
  ExpectAllSigned();
}

TEST_F(S3StoreTest, AtThresholdASinglePutIsUsed) {
  S3Options o = Options();
  o.multipart_threshold = 1000;
  S3ObjectStore store(o);
  ASSERT_TRUE(store.Put("edge", std::string(1000, 'x'), "text/plain"));
  ASSERT_EQ(server_.requests().size(), 1u);
  EXPECT_EQ(server_.requests()[0].method, "PUT");
}

TEST_F(S3StoreTest, FailedPartAbortsTheUpload) {
  server_.SetHandler([](const CapturedRequest& r) {
    if (r.method == "PUT" && r.query().starts_with("partNumber=2")) {
      return CannedReply{.status = 403, .body = "<Error><Code>AccessDenied</Code></Error>"};
    }
    if (r.method == "DELETE") return CannedReply{.status = 204};
    return MultipartReply(r);
  });
  S3Options o = Options();
  o.multipart_threshold = 10;
  o.part_size = 10;
  S3ObjectStore store(o);
  auto put = store.Put("big", std::string(35, 'z'), "text/plain");
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, ErrorCode::kPermissionDenied);
  auto got = server_.requests();
  ASSERT_EQ(got.size(), 4u);  // create, part 1, part 2 (refused), abort
  EXPECT_EQ(got[3].method, "DELETE");
  EXPECT_EQ(got[3].target, "/bucket/big?uploadId=up%26load%2F1");
  ExpectAllSigned();
}

TEST_F(S3StoreTest, ErrorInsideA200CompleteIsRetried) {
  std::atomic<int> completes{0};
  server_.SetHandler([&](const CapturedRequest& r) {
    if (r.method == "POST" && r.query().starts_with("uploadId=") && ++completes == 1) {
      return CannedReply{.status = 200,
                         .body =
                             "<?xml version=\"1.0\"?><Error><Code>InternalError</Code>"
                             "<Message>try again</Message></Error>"};
    }
    return MultipartReply(r);
  });
  S3Options o = Options();
  o.multipart_threshold = 10;
  o.part_size = 10;
  S3ObjectStore store(o);
  auto put = store.Put("big", std::string(15, 'z'), "text/plain");
  ASSERT_TRUE(put) << put.error().message;
  EXPECT_EQ(completes.load(), 2);
}

TEST_F(S3StoreTest, ListFollowsContinuationTokens) {
  server_.SetHandler([](const CapturedRequest& r) {
    if (r.query().find("continuation-token=") == std::string::npos) {
      return CannedReply{
          .status = 200,
          .body =
              "<ListBucketResult><IsTruncated>true</IsTruncated><KeyCount>2</KeyCount>"
              "<Contents><Key>objects/a&amp;1</Key><LastModified>2024-03-01T10:00:00.000Z"
              "</LastModified><Size>5</Size></Contents>"
              "<Contents><Key>objects/b</Key><LastModified>2024-03-01T10:00:01.500Z"
              "</LastModified><Size>7</Size></Contents>"
              "<NextContinuationToken>tok+en/=</NextContinuationToken></ListBucketResult>"};
    }
    return CannedReply{
        .status = 200,
        .body =
            "<ListBucketResult><IsTruncated>false</IsTruncated>"
            "<Contents><Key>objects/c</Key><LastModified>2024-03-01T10:00:02Z</LastModified>"
            "<Size>0</Size></Contents></ListBucketResult>"};
  });
  S3Options o = Options();
  o.list_page_size = 2;
  S3ObjectStore store(o);
  auto listed = store.List("objects/");
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[0].key, "objects/a&1");
  EXPECT_EQ((*listed)[0].size, 5);
  EXPECT_EQ((*listed)[1].size, 7);
  EXPECT_EQ((*listed)[2].key, "objects/c");
  EXPECT_EQ(std::chrono::system_clock::to_time_t((*listed)[0].last_modified), 1709287200);
  EXPECT_EQ((*listed)[1].last_modified - (*listed)[0].last_modified,
            std::chrono::milliseconds(1500));
  auto got = server_.requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].target, "/bucket?list-type=2&max-keys=2&prefix=objects%2F");
  EXPECT_EQ(got[1].target,
            "/bucket?continuation-token=tok%2Ben%2F%3D&list-type=2&max-keys=2&prefix=objects%2F");
  ExpectAllSigned();
}

}  // namespace
}  // namespace synaps::objstore
