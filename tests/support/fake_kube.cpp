#include "support/fake_kube.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace synaps::testing {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using nlohmann::json;

namespace {

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Deleter {
  void operator()(X509* p) const { X509_free(p); }
};
struct BioDeleter {
  void operator()(BIO* p) const { BIO_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using Cert = std::unique_ptr<X509, X509Deleter>;
using Bio = std::unique_ptr<BIO, BioDeleter>;

void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("OpenSSL: ") + what + " failed");
}

Pkey NewKey() {
  Pkey key(EVP_EC_gen("P-256"));
  Check(key != nullptr, "EVP_EC_gen");
  return key;
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  Check(ext != nullptr, "X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `common_name`, signed by `issuer_key` (self-signed when
// `issuer` is null).
Cert NewCert(EVP_PKEY* key, const std::string& common_name, X509* issuer, EVP_PKEY* issuer_key,
             const std::vector<std::pair<int, std::string>>& extensions) {
  Cert cert(X509_new());
  Check(cert != nullptr, "X509_new");
  X509_set_version(cert.get(), 2);
  std::random_device random;
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), static_cast<long>(random() & 0x7fffffff));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  for (const auto& [nid, value] : extensions) AddExtension(cert.get(), signer, nid, value);
  Check(X509_sign(cert.get(), issuer_key, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

std::string Pem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string Pem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace

KubeTlsIdentity MakeKubeTlsIdentity(const std::vector<std::string>& names) {
  Pkey ca_key = NewKey();
  Cert ca = NewCert(ca_key.get(), "synaps-test-kubernetes-ca", nullptr, ca_key.get(),
                    {{NID_basic_constraints, "critical,CA:TRUE"},
                     {NID_key_usage, "critical,keyCertSign,cRLSign"},
                     {NID_subject_key_identifier, "hash"}});
  Pkey server_key = NewKey();
  std::string alt;
  for (const auto& n : names) alt += (alt.empty() ? "" : ",") + n;
  Cert server = NewCert(server_key.get(), "kube-apiserver", ca.get(), ca_key.get(),
                        {{NID_basic_constraints, "critical,CA:FALSE"},
                         {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
                         {NID_ext_key_usage, "serverAuth"},
                         {NID_subject_alt_name, alt},
                         {NID_authority_key_identifier, "keyid:always"}});
  return {Pem(ca.get()), Pem(server.get()), Pem(server_key.get())};
}

std::string KubeRequest::BearerToken() const {
  auto it = headers.find("authorization");
  if (it == headers.end() || !it->second.starts_with("Bearer ")) return "";
  return it->second.substr(7);
}

// Handlers hold a plain Impl*: the destructor stops and joins the loop before Impl goes away.
struct FakeKube::Impl {
  Impl(const KubeTlsIdentity& identity, Handler h)
      : handler(std::move(h)), tls(ssl::context::tls_server), acceptor(io) {
    tls.use_certificate_chain(asio::buffer(identity.server_cert_pem));
    tls.use_private_key(asio::buffer(identity.server_key_pem), ssl::context::pem);
  }

  Handler handler;
  std::atomic<int> handshake_failures{0};
  mutable std::mutex mu;
  std::vector<KubeRequest> seen;  // guarded by mu
  ssl::context tls;
  asio::io_context io;
  tcp::acceptor acceptor;
  std::thread thread;

  void Accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec != asio::error::operation_aborted) Accept();
        return;
      }
      std::make_shared<Session>(this, std::move(socket))->Start();
      Accept();
    });
  }

  struct Session : std::enable_shared_from_this<Session> {
    Session(Impl* owner, tcp::socket s)
        : impl(owner), stream(std::move(s), owner->tls), timer(owner->io) {}

    Impl* impl;
    ssl::stream<tcp::socket> stream;
    asio::steady_timer timer;
    asio::streambuf in;
    KubeReply reply;
    std::string out;
    char probe = 0;

    void Start() {
      stream.async_handshake(ssl::stream_base::server,
                             [self = shared_from_this()](boost::system::error_code ec) {
                               if (ec) {
                                 ++self->impl->handshake_failures;
                                 return;
                               }
                               self->ReadRequest();
                             });
    }

    void ReadRequest() {
      asio::async_read_until(stream, in, "\r\n\r\n",
                             [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                               if (!ec) self->OnHead(n);
                             });
    }

    void OnHead(size_t head_size) {
      std::string head(asio::buffers_begin(in.data()),
                       asio::buffers_begin(in.data()) + static_cast<std::ptrdiff_t>(head_size));
      in.consume(head_size);
      KubeRequest request;
      std::istringstream lines(head);
      std::string line;
      std::getline(lines, line);
      std::istringstream first(line);
      first >> request.method >> request.target;
      size_t q = request.target.find('?');
      request.path = request.target.substr(0, q);
      if (q != std::string::npos) {
        std::istringstream query(request.target.substr(q + 1));
        std::string pair;
        while (std::getline(query, pair, '&')) {
          size_t eq = pair.find('=');
          std::string key = Decode(pair.substr(0, eq));
          request.query[key] = eq == std::string::npos ? "" : Decode(pair.substr(eq + 1));
        }
      }
      while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        request.headers[Lower(line.substr(0, colon))] = value;
      }
      {
        std::lock_guard<std::mutex> lock(impl->mu);
        impl->seen.push_back(request);
      }
      reply = impl->handler(request);
      if (reply.hang) {
        WaitForClientToLeave();
        return;
      }
      if (reply.delay.count() > 0) {
        timer.expires_after(reply.delay);
        timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
          if (!ec) self->Send();
        });
        return;
      }
      Send();
    }

    void WaitForClientToLeave() {
      stream.async_read_some(asio::buffer(&probe, 1),
                             [self = shared_from_this()](boost::system::error_code ec, size_t) {
                               if (!ec) self->WaitForClientToLeave();
                             });
    }

    void Send() {
      out = "HTTP/1.1 " + std::to_string(reply.status) + " " + Reason(reply.status) + "\r\n";
      out += "Content-Type: " + reply.content_type + "\r\n";
      out += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n\r\n";
      bool cut = reply.cut_after > 0 && reply.cut_after < reply.body.size();
      out += cut ? reply.body.substr(0, reply.cut_after) : reply.body;
      asio::async_write(stream, asio::buffer(out),
                        [self = shared_from_this(), cut](boost::system::error_code ec, size_t) {
                          if (ec) return;
                          if (cut) {
                            boost::system::error_code ignored;
                            self->stream.lowest_layer().shutdown(tcp::socket::shutdown_both,
                                                                 ignored);
                            self->stream.lowest_layer().close(ignored);
                            return;
                          }
                          self->ReadRequest();
                        });
    }
  };
};

FakeKube::FakeKube(const KubeTlsIdentity& identity, Handler handler)
    : impl_(std::make_unique<Impl>(identity, std::move(handler))) {
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen(asio::socket_base::max_listen_connections);
  impl_->Accept();
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

FakeKube::~FakeKube() {
  impl_->io.stop();
  impl_->thread.join();
}

int FakeKube::port() const { return impl_->acceptor.local_endpoint().port(); }

std::vector<KubeRequest> FakeKube::requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->seen;
}

int FakeKube::failed_handshakes() const { return impl_->handshake_failures.load(); }

KubeReply FakeKube::Json(const json& body, int status) {
  KubeReply r;
  r.status = status;
  r.body = body.dump();
  return r;
}

KubeReply FakeKube::Status(int status, const std::string& reason, const std::string& message) {
  return Json({{"kind", "Status"},
               {"apiVersion", "v1"},
               {"metadata", json::object()},
               {"status", "Failure"},
               {"message", message},
               {"reason", reason},
               {"code", status}},
              status);
}

bool FakeKube::WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

FakeServiceAccount::FakeServiceAccount(const std::string& token, const std::string& ca_pem,
                                       const std::string& namespace_name)
    : namespace_name_(namespace_name), ca_pem_(ca_pem) {
  std::string base = std::filesystem::temp_directory_path() / "synaps-k8s-sa-XXXXXX";
  if (mkdtemp(base.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = base;
  WriteGeneration(token, ca_pem);
  for (const char* file : {"token", "ca.crt", "namespace"}) {
    std::filesystem::create_symlink(std::string("..data/") + file, dir_ + "/" + file);
  }
}

FakeServiceAccount::~FakeServiceAccount() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void FakeServiceAccount::WriteGeneration(const std::string& token, const std::string& ca_pem) {
  std::string previous = generation_ > 0 ? "..gen" + std::to_string(generation_) : "";
  std::string name = "..gen" + std::to_string(++generation_);
  std::filesystem::create_directory(dir_ + "/" + name);
  WriteFile(dir_ + "/" + name + "/token", token);
  WriteFile(dir_ + "/" + name + "/ca.crt", ca_pem);
  WriteFile(dir_ + "/" + name + "/namespace", namespace_name_);
  std::filesystem::create_symlink(name, dir_ + "/..data_tmp");
  std::filesystem::rename(dir_ + "/..data_tmp", dir_ + "/..data");
  if (!previous.empty()) std::filesystem::remove_all(dir_ + "/" + previous);
}

void FakeServiceAccount::Rotate(const std::string& token) { WriteGeneration(token, ca_pem_); }

void FakeServiceAccount::WriteCa(const std::string& ca_pem) {
  ca_pem_ = ca_pem;
  WriteFile(dir_ + "/ca.crt", ca_pem);
}

}  // namespace synaps::testing
