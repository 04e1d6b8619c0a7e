#include "support/synaps_process.h"

#include <gtest/gtest.h>

#include <thread>

namespace synaps::testing {

ChildProcess StartSynaps(const std::string& verb, const std::map<std::string, std::string>& env,
                         const std::string& log_path) {
  ProcessOptions opts;
  opts.argv = {SYNAPS_BINARY, verb};
  opts.env = env;
  // Fault tests run the process under a lower open-file limit (EMFILE).
  if (auto it = env.find(kNofileLimitEnv); it != env.end()) {
    opts.argv.insert(opts.argv.begin(), {"prlimit", "--nofile=" + it->second + ":" + it->second});
    opts.env.erase(kNofileLimitEnv);
  }
  opts.log_path = log_path;
  auto p = ChildProcess::Spawn(opts);
  if (!p) ADD_FAILURE() << "cannot start synaps " << verb << ": " << p.error().message;
  return p ? std::move(*p) : ChildProcess();
}

void WaitUntilReady(const std::string& base_url, int seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = http::Send({.url = base_url + "/readyz", .timeout = std::chrono::seconds(2)});
    if (r && r->status == 200) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL() << base_url << " did not become ready in " << seconds << " s";
}

http::Response ApiCall(const std::string& method, const std::string& url,
                       const std::string& token, const std::string& body,
                       const std::vector<std::string>& extra_headers) {
  http::RequestOptions req{.method = method, .url = url};
  if (!token.empty()) req.headers.push_back("Authorization: Bearer " + token);
  if (!body.empty()) req.headers.push_back("Content-Type: application/json");
  for (const auto& h : extra_headers) req.headers.push_back(h);
  req.body = body;
  auto r = http::Send(req);
  if (!r) {
    ADD_FAILURE() << method << " " << url << ": " << r.error().message;
    return {};
  }
  return *r;
}

}  // namespace synaps::testing
