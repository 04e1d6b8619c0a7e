// SigV4 signing checked against the worked examples in AWS's S3 documentation ("Examples of
// signature calculations", Signature Version 4 in the Authorization header): access key
// AKIAIOSFODNN7EXAMPLE, bucket examplebucket, x-amz-date 20130524T000000Z. s3rver does not verify
// signatures, so this is where signing is proven: first our independent reference
// implementation reproduces AWS's numbers, then the real S3Client (libcurl's signing, our
// headers) sends the same requests to a local capture server and must produce the same
// Authorization headers.
#include <gtest/gtest.h>

#include "capture_server.h"
#include "objstore/detail/s3_client.h"
#include "sigv4_reference.h"

namespace synaps::objstore {
namespace {

using testing::CaptureServer;
using testing::ReferenceSha256Hex;
using testing::ReferenceSignature;
using testing::SigV4Input;

constexpr const char* kAccessKey = "AKIAIOSFODNN7EXAMPLE";
constexpr const char* kSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr const char* kHost = "examplebucket.s3.amazonaws.com";
constexpr const char* kDate = "20130524T000000Z";
constexpr const char* kEmptySha =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

constexpr const char* kGetObjectSignature =
    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
constexpr const char* kPutObjectSignature =
    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd";
constexpr const char* kGetLifecycleSignature =
    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543";
constexpr const char* kListObjectsSignature =
    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7";

SigV4Input Example(std::string method, std::string uri, std::string query,
                   std::vector<std::pair<std::string, std::string>> extra,
                   std::string payload = kEmptySha) {
  SigV4Input in;
  in.method = std::move(method);
  in.canonical_uri = std::move(uri);
  in.canonical_query = std::move(query);
  in.headers = {{"host", kHost}, {"x-amz-content-sha256", payload}, {"x-amz-date", kDate}};
  for (auto& h : extra) in.headers.push_back(std::move(h));
  in.payload_hash = payload;
  in.amz_date = kDate;
  in.region = "us-east-1";
  in.secret_key = kSecretKey;
  return in;
}

TEST(SigV4ReferenceTest, ReproducesAwsGetObjectExample) {
  SigV4Input in = Example("GET", "/test.txt", "", {{"range", "bytes=0-9"}});
  EXPECT_EQ(ReferenceSha256Hex(testing::ReferenceCanonicalRequest(in)),
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(ReferenceSignature(in), kGetObjectSignature);
}

TEST(SigV4ReferenceTest, ReproducesAwsPutObjectExample) {
  std::string body = "Welcome to Amazon S3.";
  SigV4Input in = Example(
      "PUT", "/test%24file.text", "",
      {{"date", "Fri, 24 May 2013 00:00:00 GMT"}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
      ReferenceSha256Hex(body));
  EXPECT_EQ(ReferenceSha256Hex(body),
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  EXPECT_EQ(ReferenceSignature(in), kPutObjectSignature);
}

TEST(SigV4ReferenceTest, ReproducesAwsBucketExamples) {
  EXPECT_EQ(ReferenceSignature(Example("GET", "/", "lifecycle=", {})), kGetLifecycleSignature);
  EXPECT_EQ(ReferenceSignature(Example("GET", "/", "max-keys=2&prefix=J", {})),
            kListObjectsSignature);
}

// The S3Client of the examples: virtual-host style on s3.amazonaws.com, so the Host header is
// examplebucket.s3.amazonaws.com, with the connection diverted to the capture server.
class LibcurlSigningTest : public ::testing::Test {
 protected:
  LibcurlSigningTest() {
    options_.bucket = "examplebucket";
    options_.region = "us-east-1";
    options_.endpoint = "http://s3.amazonaws.com";
    options_.path_style = false;
    options_.access_key_id = kAccessKey;
    options_.secret_access_key = kSecretKey;
    options_.fixed_amz_date = kDate;
    options_.connect_to = {std::string(kHost) + ":80:127.0.0.1:" + std::to_string(server_.port())};
    options_.max_attempts = 1;
  }

  // Sends `request` and returns the Signature= value of what arrived.
  std::string SignatureOf(const detail::S3Request& request) {
    detail::S3Client client(options_);
    auto reply = client.Send(request);
    EXPECT_TRUE(reply) << reply.error().message;
    auto got = server_.requests();
    EXPECT_FALSE(got.empty());
    if (got.empty()) return "";
    last_ = got.back();
    std::string auth = last_.Header("authorization");
    size_t at = auth.find("Signature=");
    return at == std::string::npos ? auth : auth.substr(at + 10);
  }
  std::string SignedHeaders() const {
    std::string auth = last_.Header("authorization");
    size_t at = auth.find("SignedHeaders=");
    return auth.substr(at + 14, auth.find(',', at) - at - 14);
  }

  CaptureServer server_;
  S3Options options_;
  testing::CapturedRequest last_;
};

TEST_F(LibcurlSigningTest, GetObjectMatchesAwsExample) {
  std::string signature =
      SignatureOf({.method = "GET", .key = "test.txt", .headers = {{"Range", "bytes=0-9"}}});
  EXPECT_EQ(signature, kGetObjectSignature);
  EXPECT_EQ(SignedHeaders(), "host;range;x-amz-content-sha256;x-amz-date");
  EXPECT_EQ(last_.Header("host"), kHost);
  EXPECT_EQ(last_.path(), "/test.txt");
  EXPECT_EQ(last_.Header("x-amz-content-sha256"), kEmptySha);
  EXPECT_TRUE(last_.Header("authorization")
                  .starts_with("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
                               "us-east-1/s3/aws4_request,"))
      << last_.Header("authorization");
}

TEST_F(LibcurlSigningTest, PutObjectMatchesAwsExample) {
  std::string body = "Welcome to Amazon S3.";
  std::string signature = SignatureOf({.method = "PUT",
                                       .key = "test$file.text",
                                       .headers = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                                                   {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                                       .body = body});
  EXPECT_EQ(signature, kPutObjectSignature);
  EXPECT_EQ(SignedHeaders(), "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
  // The key's '$' is encoded exactly once, in the path sent and in what was signed.
  EXPECT_EQ(last_.path(), "/test%24file.text");
  EXPECT_EQ(last_.body, body);
  // The body went as an upload, so libcurl signed (and sent) no content-type of its own.
  EXPECT_EQ(last_.HeaderCount("content-type"), 0);
}

TEST_F(LibcurlSigningTest, FlagParameterIsSignedWithEmptyValue) {
  EXPECT_EQ(SignatureOf({.method = "GET", .query = {{"lifecycle", ""}}}), kGetLifecycleSignature);
  EXPECT_EQ(last_.target, "/?lifecycle=");
}

TEST_F(LibcurlSigningTest, QueryIsSentSortedAsSigned) {
  // Given out of order: the client sorts, because libcurl 7.88 signs the query as written.
  EXPECT_EQ(SignatureOf({.method = "GET", .query = {{"prefix", "J"}, {"max-keys", "2"}}}),
            kListObjectsSignature);
  EXPECT_EQ(last_.target, "/?max-keys=2&prefix=J");
}

}  // namespace
}  // namespace synaps::objstore
