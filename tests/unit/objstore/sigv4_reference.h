// An independent AWS Signature Version 4 implementation, written from AWS's description of the
// algorithm (canonical request → string to sign → derived key → HMAC), to check what libcurl
// signs. It shares no code with src/objstore. Checked itself against AWS's worked S3 examples.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "capture_server.h"

namespace synaps::objstore::testing {

struct SigV4Input {
  std::string method;
  std::string canonical_uri;                                 // already URI-encoded
  std::string canonical_query;                               // already sorted and encoded
  std::vector<std::pair<std::string, std::string>> headers;  // the signed ones, any order
  std::string payload_hash;
  std::string amz_date;  // 20130524T000000Z
  std::string region;
  std::string service = "s3";
  std::string secret_key;
};

std::string ReferenceSha256Hex(const std::string& data);
std::string ReferenceCanonicalRequest(const SigV4Input& in);
std::string ReferenceSignature(const SigV4Input& in);

// Verifies a request as S3 would: parses Authorization, rebuilds the canonical request from
// what was received (path and query decoded and re-encoded, signed headers' values trimmed,
// duplicates joined), checks x-amz-content-sha256 against the body and that every x-amz-*
// header is signed, and recomputes the signature. Returns "" when valid, else why not.
std::string VerifyS3Request(const CapturedRequest& request, const std::string& access_key,
                            const std::string& secret_key, const std::string& region);

}  // namespace synaps::objstore::testing
