// SYNAPS_OBJECT_STORE parsing for s3:// URLs, and the wire helpers the S3 client is built on.
#include <gtest/gtest.h>
#include <stdlib.h>

#include "objstore/detail/s3_client.h"
#include "objstore/detail/s3_wire.h"
#include "objstore/s3_store.h"

namespace synaps::objstore {
namespace {

TEST(ParseS3UrlTest, ReadsEveryParameter) {
  S3Options o =
      ParseS3Url("s3://my-bucket?endpoint=http://127.0.0.1:9000&region=eu-west-1&path_style=1");
  EXPECT_EQ(o.bucket, "my-bucket");
  EXPECT_EQ(o.endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(o.region, "eu-west-1");
  EXPECT_TRUE(o.path_style);
  EXPECT_TRUE(o.access_key_id.empty());
}

TEST(ParseS3UrlTest, DefaultsToAwsVirtualHostInUsEast1) {
  S3Options o = ParseS3Url("s3://artifacts.example");
  EXPECT_EQ(o.region, "us-east-1");
  EXPECT_EQ(o.endpoint, "");
  EXPECT_FALSE(o.path_style);
  o.access_key_id = "a";
  o.secret_access_key = "b";
  o.region = "eu-central-1";
  S3ObjectStore store(o);
  EXPECT_EQ(store.options().endpoint, "https://s3.eu-central-1.amazonaws.com");
  detail::S3Client client(store.options());
  EXPECT_EQ(client.UrlFor({.key = "objects/sha256/ab/abc"}),
            "https://artifacts.example.s3.eu-central-1.amazonaws.com/objects/sha256/ab/abc");
}

TEST(ParseS3UrlTest, PercentEncodedEndpointIsDecoded) {
  S3Options o = ParseS3Url("s3://bkt?endpoint=http%3A%2F%2Fminio%3A9000&path_style=true");
  EXPECT_EQ(o.endpoint, "http://minio:9000");
  EXPECT_TRUE(o.path_style);
}

void ExpectConfigError(const std::string& url, const std::string& fragment) {
  try {
    ParseS3Url(url);
    ADD_FAILURE() << url << " was accepted";
  } catch (const ConfigError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("SYNAPS_OBJECT_STORE"), std::string::npos) << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << what;
  }
}

TEST(ParseS3UrlTest, RefusesMalformedUrlsNamingTheSetting) {
  ExpectConfigError("s3://", "bucket name is missing");
  ExpectConfigError("s3://?region=x", "bucket name is missing");
  ExpectConfigError("s3://bucket/prefix", "without a path");
  ExpectConfigError("s3://Bad_Bucket", "not a valid bucket name");
  ExpectConfigError("s3://ab", "not a valid bucket name");
  ExpectConfigError("s3://bucket?endpont=http://x", "unknown parameter 'endpont'");
  ExpectConfigError("s3://bucket?path_style=yes", "path_style must be 1 or 0");
  ExpectConfigError("s3://bucket?region=US East", "region");
  ExpectConfigError("s3://bucket?endpoint=ftp://host", "http:// or https://");
  ExpectConfigError("s3://bucket?endpoint=http://host/path", "no path");
  ExpectConfigError("s3://bucket?endpoint=http://host:99999", "port");
  ExpectConfigError("s3://bucket?endpoint=http://", "no host");
  ExpectConfigError("s3://bucket?region=a&region=b", "given twice");
  ExpectConfigError("s3://bucket?endpoint=%zz", "percent-encoding");
}

class EnvGuard {
 public:
  EnvGuard(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~EnvGuard() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(OpenObjectStoreTest, S3NeedsCredentialsFromTheEnvironment) {
  EnvGuard key("AWS_ACCESS_KEY_ID", nullptr);
  EnvGuard secret("AWS_SECRET_ACCESS_KEY", "s");
  try {
    OpenObjectStore("s3://bucket?endpoint=http://127.0.0.1:1&path_style=1");
    ADD_FAILURE() << "opened without AWS_ACCESS_KEY_ID";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("AWS_ACCESS_KEY_ID"), std::string::npos) << e.what();
  }
}

TEST(OpenObjectStoreTest, S3TakesKeysAndSessionToken) {
  EnvGuard key("AWS_ACCESS_KEY_ID", "AKID");
  EnvGuard secret("AWS_SECRET_ACCESS_KEY", "SECRET");
  EnvGuard token("AWS_SESSION_TOKEN", "TOKEN");
  auto store =
      OpenObjectStore("s3://bucket?endpoint=http://127.0.0.1:9&region=eu-west-1&path_style=1");
  auto* s3 = dynamic_cast<S3ObjectStore*>(store.get());
  ASSERT_NE(s3, nullptr);
  EXPECT_EQ(s3->options().access_key_id, "AKID");
  EXPECT_EQ(s3->options().secret_access_key, "SECRET");
  EXPECT_EQ(s3->options().session_token, "TOKEN");
  EXPECT_EQ(store->Describe(),
            "s3://bucket (endpoint http://127.0.0.1:9, region eu-west-1, path-style)");
  EXPECT_EQ(store->Describe().find("SECRET"), std::string::npos);
}

TEST(OpenObjectStoreTest, UnknownSchemeIsAConfigError) {
  EXPECT_THROW(OpenObjectStore("gs://bucket"), ConfigError);
  EXPECT_THROW(OpenObjectStore("file://relative"), ConfigError);
}

TEST(S3WireTest, UriEncodeKeepsUnreservedAndOptionallySlash) {
  EXPECT_EQ(detail::UriEncode("a-b_c.d~e/f g+h$", true), "a-b_c.d~e/f%20g%2Bh%24");
  EXPECT_EQ(detail::UriEncode("a/b", false), "a%2Fb");
  EXPECT_EQ(detail::UriEncode("\xC3\xA9", false), "%C3%A9");
}

TEST(S3WireTest, CanonicalQuerySortsAndKeepsEmptyValues) {
  EXPECT_EQ(detail::CanonicalQuery({{"uploads", ""}}), "uploads=");
  EXPECT_EQ(detail::CanonicalQuery({{"prefix", "a b"}, {"max-keys", "2"}, {"list-type", "2"}}),
            "list-type=2&max-keys=2&prefix=a%20b");
}

TEST(S3WireTest, XmlTextFindsElementsAndUnescapes) {
  std::string xml =
      "<R xmlns=\"x\"><KeyCount>2</KeyCount><Key>a&amp;b&lt;&#233;&#x41;</Key><Empty/>"
      "<Key>second</Key></R>";
  EXPECT_EQ(detail::XmlText(xml, "Key").value_or(""),
            "a&b<\xC3\xA9"
            "A");
  EXPECT_EQ(detail::XmlText(xml, "KeyCount").value_or(""), "2");
  EXPECT_EQ(detail::XmlText(xml, "Empty").value_or("absent"), "");
  EXPECT_FALSE(detail::XmlText(xml, "Missing"));
  EXPECT_EQ(detail::XmlElements(xml, "Key").size(), 2u);
  EXPECT_EQ(detail::XmlEscape("<a&\"'>"), "&lt;a&amp;&quot;&apos;&gt;");
}

TEST(S3WireTest, ParsesS3Timestamps) {
  auto t = detail::ParseIso8601("2013-09-17T18:07:53.250Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*t), 1379441273);
  EXPECT_TRUE(detail::ParseIso8601("2013-09-17T18:07:53Z"));
  EXPECT_FALSE(detail::ParseIso8601("2013-09-17 18:07:53"));
  EXPECT_FALSE(detail::ParseIso8601("2013-13-17T18:07:53Z"));
  EXPECT_FALSE(detail::ParseIso8601("yesterday"));
}

TEST(S3WireTest, ErrorFromResponseMapsCodes) {
  auto error = [](long status, std::string body = "") {
    return detail::ErrorFromResponse({.status = status, .body = std::move(body)}, "get k");
  };
  EXPECT_EQ(error(404).code, ErrorCode::kNotFound);
  EXPECT_EQ(error(403).code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(error(409).code, ErrorCode::kConflict);
  EXPECT_EQ(error(500).code, ErrorCode::kUnavailable);
  EXPECT_EQ(error(429).code, ErrorCode::kUnavailable);
  EXPECT_EQ(error(400, "<Error><Code>RequestTimeout</Code></Error>").code, ErrorCode::kUnavailable);
  EXPECT_EQ(error(400, "<Error><Code>InvalidArgument</Code></Error>").code,
            ErrorCode::kInvalidArgument);
  EXPECT_NE(
      error(400, "<Error><Code>X</Code><Message>why</Message></Error>").message.find("X: why"),
      std::string::npos);
}

}  // namespace
}  // namespace synaps::objstore
