// Runs the real `synaps` binary (api, worker) as child processes for end-to-end and fault
// tests, each with its own log file under the test stack's directory.
#pragma once

#include <map>
#include <string>

#include "core/process.h"
#include "http/client.h"

namespace synaps::testing {

// In `env` of StartSynaps: run the process with this open-file limit (via prlimit(1)).
inline constexpr const char* kNofileLimitEnv = "SYNAPS_TEST_NOFILE_LIMIT";

// Starts `synaps <verb>` with `env` added to the environment; logs to `log_path`.
ChildProcess StartSynaps(const std::string& verb, const std::map<std::string, std::string>& env,
                         const std::string& log_path);

// Polls GET <base_url>/readyz until it answers 200 (or fails the test after `seconds`).
void WaitUntilReady(const std::string& base_url, int seconds = 30);

// JSON request against the API with a bearer token; returns the raw response.
http::Response ApiCall(const std::string& method, const std::string& url,
                       const std::string& token, const std::string& body = {},
                       const std::vector<std::string>& extra_headers = {});

}  // namespace synaps::testing
