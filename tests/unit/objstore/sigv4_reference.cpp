#include "sigv4_reference.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <map>
#include <sstream>

namespace synaps::objstore::testing {

namespace {

std::string Hex(const unsigned char* data, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 15]);
  }
  return out;
}

std::string Hmac(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Trim(const std::string& v) {
  // Trim, and collapse runs of spaces to one, as SigV4's canonical header values want.
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

std::string Encode(const std::string& s, bool path) {
  std::ostringstream out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (path && c == '/')) {
      out << c;
    } else {
      static const char* digits = "0123456789ABCDEF";
      out << '%' << digits[c >> 4] << digits[c & 15];
    }
  }
  return out.str();
}

std::string Decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::string ReferenceSha256Hex(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return Hex(digest, sizeof digest);
}

std::string ReferenceCanonicalRequest(const SigV4Input& in) {
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : in.headers) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    auto& slot = headers[lower];
    slot = slot.empty() ? Trim(value) : slot + "," + Trim(value);
  }
  std::string canonical_headers, signed_headers;
  for (const auto& [name, value] : headers) {
    canonical_headers += name + ":" + value + "\n";
    signed_headers += (signed_headers.empty() ? "" : ";") + name;
  }
  return in.method + "\n" + in.canonical_uri + "\n" + in.canonical_query + "\n" +
         canonical_headers + "\n" + signed_headers + "\n" + in.payload_hash;
}

std::string ReferenceSignature(const SigV4Input& in) {
  std::string date = in.amz_date.substr(0, 8);
  std::string scope = date + "/" + in.region + "/" + in.service + "/aws4_request";
  std::string to_sign = "AWS4-HMAC-SHA256\n" + in.amz_date + "\n" + scope + "\n" +
                        ReferenceSha256Hex(ReferenceCanonicalRequest(in));
  std::string key = Hmac("AWS4" + in.secret_key, date);
  key = Hmac(key, in.region);
  key = Hmac(key, in.service);
  key = Hmac(key, "aws4_request");
  std::string sig = Hmac(key, to_sign);
  return Hex(reinterpret_cast<const unsigned char*>(sig.data()), sig.size());
}

std::string VerifyS3Request(const CapturedRequest& request, const std::string& access_key,
                            const std::string& secret_key, const std::string& region) {
  std::string auth = request.Header("authorization");
  const std::string algorithm = "AWS4-HMAC-SHA256 ";
  if (!auth.starts_with(algorithm)) return "no AWS4-HMAC-SHA256 Authorization header: " + auth;
  std::map<std::string, std::string> parts;
  std::stringstream fields(auth.substr(algorithm.size()));
  std::string field;
  while (std::getline(fields, field, ',')) {
    field.erase(0, field.find_first_not_of(' '));
    size_t eq = field.find('=');
    if (eq != std::string::npos) parts[field.substr(0, eq)] = field.substr(eq + 1);
  }
  std::string amz_date = request.Header("x-amz-date");
  if (amz_date.size() != 16) return "missing or malformed x-amz-date";
  std::string expected_credential =
      access_key + "/" + amz_date.substr(0, 8) + "/" + region + "/s3/aws4_request";
  if (parts["Credential"] != expected_credential) {
    return "Credential is " + parts["Credential"] + ", expected " + expected_credential;
  }
  std::string payload = request.Header("x-amz-content-sha256");
  if (payload != ReferenceSha256Hex(request.body)) {
    return "x-amz-content-sha256 " + payload + " is not the SHA-256 of the body";
  }
  std::vector<std::string> signed_names;
  std::stringstream names(parts["SignedHeaders"]);
  for (std::string name; std::getline(names, name, ';');) signed_names.push_back(name);
  for (const char* required : {"host", "x-amz-date", "x-amz-content-sha256"}) {
    if (std::find(signed_names.begin(), signed_names.end(), required) == signed_names.end()) {
      return std::string(required) + " is not signed";
    }
  }
  for (const auto& [name, value] : request.headers) {
    if (name.starts_with("x-amz-") &&
        std::find(signed_names.begin(), signed_names.end(), name) == signed_names.end()) {
      return "header " + name + " is sent but not signed";
    }
  }
  SigV4Input in;
  in.method = request.method;
  in.payload_hash = payload;
  in.amz_date = amz_date;
  in.region = region;
  in.secret_key = secret_key;
  // The canonical URI S3 computes: each segment decoded, then encoded once.
  in.canonical_uri = Encode(Decode(request.path()), true);
  std::vector<std::pair<std::string, std::string>> query;
  std::stringstream qs(request.query());
  for (std::string pair; std::getline(qs, pair, '&');) {
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string name = Decode(pair.substr(0, eq));
    std::string value = eq == std::string::npos ? "" : Decode(pair.substr(eq + 1));
    query.emplace_back(Encode(name, false), Encode(value, false));
  }
  std::sort(query.begin(), query.end());
  for (const auto& [name, value] : query) {
    in.canonical_query += (in.canonical_query.empty() ? "" : "&") + name + "=" + value;
  }
  for (const auto& name : signed_names) {
    if (request.HeaderCount(name) == 0) return "signed header " + name + " was not sent";
    for (const auto& [n, v] : request.headers) {
      if (n == name) in.headers.emplace_back(n, v);
    }
  }
  std::string expected = ReferenceSignature(in);
  if (parts["Signature"] != expected) {
    return "signature " + parts["Signature"] + " does not match " + expected +
           "; canonical request:\n" + ReferenceCanonicalRequest(in);
  }
  return "";
}

}  // namespace synaps::objstore::testing
