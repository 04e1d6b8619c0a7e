#include "cli/api_client.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/config.h"
#include "core/utf8.h"
#include "http/client.h"

namespace synaps::cli {

using nlohmann::json;

namespace {

std::string ReadTrimmed(const std::filesystem::path& p) {
  std::ifstream in(p);
  if (!in) return {};
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool Finished(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "cancelled";
}

}  // namespace

std::string PercentEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string StateDir() {
  return std::filesystem::absolute(config::EnvOr("SYNAPS_STATE_DIR", ".synaps")).string();
}

ApiClient ApiClient::FromEnvironment() {
  std::string url = config::EnvOr("SYNAPS_API_URL", "");
  if (url.empty()) url = ReadTrimmed(std::filesystem::path(StateDir()) / "api-url");
  if (url.empty()) url = "http://127.0.0.1:8081";
  std::string token = config::EnvOr("SYNAPS_TOKEN", "");
  if (token.empty()) token = ReadTrimmed(std::filesystem::path(StateDir()) / "token");
  while (!url.empty() && url.back() == '/') url.pop_back();
  return ApiClient(url, token);
}

Result<json> ApiClient::Call(const std::string& method, const std::string& path,
                             const json* body, const std::string& idempotency_key) const {
  http::RequestOptions req;
  req.method = method;
  req.url = base_url_ + path;
  if (!token_.empty()) req.headers.push_back("Authorization: Bearer " + token_);
  if (body) {
    req.headers.push_back("Content-Type: application/json");
    req.body = body->dump();
  }
  if (!idempotency_key.empty()) req.headers.push_back("Idempotency-Key: " + idempotency_key);
  auto res = http::Send(req);
  if (!res) {
    return Fail(res.error().code, res.error().message +
                                      ". Is the API running? Start one with `synaps dev` or set "
                                      "SYNAPS_API_URL.");
  }
  json parsed = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (res->status >= 200 && res->status < 300) {
    if (parsed.is_discarded()) return Fail(ErrorCode::kInternal, "API answered with non-JSON");
    return parsed;
  }
  return std::unexpected(ErrorForStatus(res->status, res->body));
}

std::vector<std::string> ApiClient::AuthHeaders() const {
  if (token_.empty()) return {};
  return {"Authorization: Bearer " + token_};
}

Error ApiClient::ErrorForStatus(long status, const std::string& body) const {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string detail;
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object()) {
    detail = parsed["error"].value("message", std::string());
  }
  if (detail.empty()) detail = body.size() > 200 ? body.substr(0, 200) + "..." : body;
  ErrorCode code = status == 401   ? ErrorCode::kUnauthenticated
                   : status == 403 ? ErrorCode::kPermissionDenied
                   : status == 404 ? ErrorCode::kNotFound
                   : status == 409 ? ErrorCode::kConflict
                   : status == 429 ? ErrorCode::kResourceExhausted
                   : status < 500  ? ErrorCode::kInvalidArgument
                                   : ErrorCode::kUnavailable;
  std::string what = status == 401   ? "not authenticated"
                     : status == 403 ? "permission denied"
                     : status == 404 ? "not found"
                     : status == 409 ? "conflict"
                     : status == 429 ? "rate limited"
                     : status < 500  ? "refused"
                                     : "server error";
  std::string message = what + " (HTTP " + std::to_string(status) + ")";
  if (!detail.empty()) message += ": " + detail;
  if (status == 401) {
    message += token_.empty()
                   ? " (no token: set SYNAPS_TOKEN or run `synaps dev` in this directory)"
                   : " (check SYNAPS_TOKEN: it must be a live API key, a JWT signed with the "
                     "API's SYNAPS_JWT_SECRET, or the admin token)";
  } else if (status == 403) {
    message += " (use a token whose role allows this; see docs/api.md)";
  }
  return Error{code, message, {}};
}

Result<http::Response> ApiClient::Download(const std::string& path,
                                           std::chrono::milliseconds timeout) const {
  http::RequestOptions req;
  req.url = base_url_ + path;
  req.headers = AuthHeaders();
  req.timeout = timeout;
  auto res = http::Send(req);
  if (!res) {
    return Fail(res.error().code, res.error().message +
                                      ". Is the API running? Start one with `synaps dev` or set "
                                      "SYNAPS_API_URL.");
  }
  if (res->status < 200 || res->status >= 300) {
    return std::unexpected(ErrorForStatus(res->status, res->body));
  }
  return std::move(*res);
}

Result<std::string> ApiClient::Fetch(const std::string& path) const {
  http::RequestOptions req;
  req.url = base_url_ + path;
  if (!token_.empty()) req.headers.push_back("Authorization: Bearer " + token_);
  ASSIGN_OR_RETURN(http::Response res, http::Send(req));
  if (res.status != 200) {
    return Fail(ErrorCode::kUnavailable, "HTTP " + std::to_string(res.status) + ": " + res.body);
  }
  return res.body;
}

Result<json> ApiClient::WaitForRun(const std::string& run_id, int timeout_seconds) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  auto delay = std::chrono::milliseconds(20);
  while (true) {
    ASSIGN_OR_RETURN(json run, Call("GET", "/v1/runs/" + run_id));
    if (Finished(run.value("status", ""))) return run;
    if (std::chrono::steady_clock::now() >= deadline) {
      return Fail(ErrorCode::kDeadlineExceeded,
                  "run " + run_id + " still " + run.value("status", "") + " after " +
                      std::to_string(timeout_seconds) + " s");
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(500));
  }
}

namespace {

// A task's answer under its line, each line indented; past kShown bytes it ends with how long
// the whole is and where to read it.
std::string IndentedAnswer(const std::string& answer) {
  constexpr size_t kShown = 4096;
  const std::string_view shown = Utf8Prefix(answer, kShown);
  std::string out = "      | ";
  for (char ch : shown) {
    out += ch;
    if (ch == '\n') out += "      | ";
  }
  out += "\n";
  if (shown.size() < answer.size()) {
    out += "      … " + std::to_string(answer.size()) +
           " bytes in all: `runs get --json` has the whole answer\n";
  }
  return out;
}

}  // namespace

std::string FormatRun(const json& run) {
  std::ostringstream out;
  auto str = [](const json& v) { return v.is_string() ? v.get<std::string>() : std::string("-"); };
  out << "run " << str(run["id"]) << "  " << str(run["status"]) << "\n";
  out << "  thread   " << str(run["threadId"]) << "\n";
  out << "  created  " << str(run["createdAt"]) << "\n";
  if (run.contains("finishedAt") && run["finishedAt"].is_string()) {
    out << "  finished " << str(run["finishedAt"]) << "\n";
  }
  if (run.contains("error") && !run["error"].is_null()) {
    out << "  error    " << run["error"].dump() << "\n";
  }
  out << "  tasks\n";
  for (const auto& t : run["tasks"]) {
    out << "    " << str(t["name"]) << "  " << str(t["status"]) << "  attempt "
        << t.value("attempt", 0) << "\n";
    if (t.contains("answer") && t["answer"].is_string()) out << IndentedAnswer(t["answer"]);
  }
  out << "  events\n";
  for (const auto& e : run["events"]) {
    out << "    " << e.value("seq", 0) << "  " << str(e["type"]);
    // A completion names the artifact versions it produced (before 0039: artifact.created).
    const json& data = e.contains("data") ? e["data"] : json();
    if (data.is_object() && data.contains("artifacts") && data["artifacts"].is_array()) {
      for (const auto& a : data["artifacts"]) {
        if (a.is_object())
          out << "  " << str(a.value("name", json())) << " v" << a.value("version", json(0)).dump();
      }
    }
    out << "\n";
  }
  if (!run["artifacts"].empty()) out << "  artifacts\n";
  for (const auto& a : run["artifacts"]) {
    for (const auto& v : a["versions"]) {
      out << "    " << str(a["name"]) << " v" << v.value("version", 0) << "  "
          << v.value("size", 0) << " bytes  " << str(a["contentType"]) << "  id " << str(a["id"])
          << "\n";
    }
  }
  return out.str();
}

}  // namespace synaps::cli
