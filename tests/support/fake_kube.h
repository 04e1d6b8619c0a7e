// A fake Kubernetes API server for the k8s client's tests. No cluster runs where the tests run,
// so the client is tested against this fake; what matters to the client is real: TLS with a CA
// generated per test (the client must verify the server against it and refuse any other), the
// bearer token in the Authorization header, HTTP/1.1 with keep-alive, and answers that are
// slow, cut short, malformed, or Kubernetes Status errors.
//
// The fake listens on 127.0.0.1 on a port the OS picks and runs its own event loop on its own
// thread. A handler decides what to answer to each request; every request is recorded.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace synaps::testing {

// PEM texts of a test PKI: a CA, and a server certificate it signed.
struct KubeTlsIdentity {
  std::string ca_pem;
  std::string server_cert_pem;
  std::string server_key_pem;
};

// Makes a fresh CA (EC P-256, self-signed) and a server certificate for `names` (entries like
// "IP:127.0.0.1" or "DNS:kubernetes.default.svc") signed by it. Throws std::runtime_error if
// OpenSSL fails.
KubeTlsIdentity MakeKubeTlsIdentity(const std::vector<std::string>& names = {"IP:127.0.0.1",
                                                                             "DNS:localhost"});

struct KubeRequest {
  std::string method;
  std::string target;                          // path and query as sent
  std::string path;                            // without the query
  std::map<std::string, std::string> query;    // percent-decoded
  std::map<std::string, std::string> headers;  // names lower-cased

  // The token of "Authorization: Bearer <token>", or "".
  std::string BearerToken() const;
};

struct KubeReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::chrono::milliseconds delay{0};  // before the status line
  bool hang = false;                   // never answer; wait for the client to give up
  // When > 0 and less than the body's size: Content-Length announces the whole body, but only
  // this many bytes are sent before the connection closes.
  size_t cut_after = 0;
};

class FakeKube {
 public:
  using Handler = std::function<KubeReply(const KubeRequest& request)>;

  FakeKube(const KubeTlsIdentity& identity, Handler handler);
  ~FakeKube();
  FakeKube(const FakeKube&) = delete;
  FakeKube& operator=(const FakeKube&) = delete;

  int port() const;
  std::vector<KubeRequest> requests() const;
  // TLS handshakes that failed (e.g. the client refused the certificate).
  int failed_handshakes() const;

  // Replies in the API server's format.
  static KubeReply Json(const nlohmann::json& body, int status = 200);
  // A Status object, as the API server sends with every error.
  static KubeReply Status(int status, const std::string& reason, const std::string& message);
  // Polls `condition` every few milliseconds until it holds or `timeout` passes.
  static bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// A service-account directory (token, ca.crt, namespace) in a fresh temporary directory, laid
// out as the kubelet lays it out: the files are symlinks into a timestamped directory reached
// through "..data", and Rotate() swaps "..data" atomically to a new one.
class FakeServiceAccount {
 public:
  FakeServiceAccount(const std::string& token, const std::string& ca_pem,
                     const std::string& namespace_name);
  ~FakeServiceAccount();
  FakeServiceAccount(const FakeServiceAccount&) = delete;
  FakeServiceAccount& operator=(const FakeServiceAccount&) = delete;

  const std::string& dir() const { return dir_; }
  // Writes a new token the way the kubelet does: into a new data directory, then an atomic
  // rename of the "..data" symlink.
  void Rotate(const std::string& token);
  // Overwrites the CA file (through the symlink).
  void WriteCa(const std::string& ca_pem);

 private:
  void WriteGeneration(const std::string& token, const std::string& ca_pem);

  std::string dir_;
  std::string namespace_name_;
  std::string ca_pem_;
  int generation_ = 0;
};

}  // namespace synaps::testing
