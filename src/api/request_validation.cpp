#include "api/request_validation.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>

#include "core/ids.h"

namespace synaps::api {

using nlohmann::json;

namespace {

struct TooDeep {};

Status Invalid(const std::string& field, const std::string& message) {
  return Fail(ErrorCode::kInvalidArgument, field + ": " + message, field);
}

std::string TypeName(const json& v) { return v.type_name(); }

}  // namespace

bool IsJsonContentType(const std::string& content_type) {
  std::string ct;
  for (char c : content_type) {
    if (c == ';') break;
    if (c != ' ' && c != '\t') ct.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return ct == "application/json";
}

Result<json> ParseJsonObject(const std::string& body) {
  json v;
  try {
    v = json::parse(body, [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxJsonDepth) throw TooDeep{};
      return true;
    });
  } catch (const TooDeep&) {
    return Fail(ErrorCode::kInvalidArgument,
                "body: JSON nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels",
                "body");
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." → after "]".
    size_t p = what.find("] ");
    return Fail(ErrorCode::kInvalidArgument,
                "body: malformed JSON: " + (p == std::string::npos ? what : what.substr(p + 2)),
                "body");
  }
  if (!v.is_object()) {
    return Fail(ErrorCode::kInvalidArgument, "body: expected a JSON object, got " + TypeName(v),
                "body");
  }
  return v;
}

Result<store::SubmitRequest> ParseSubmitRequest(const std::string& body) {
  ASSIGN_OR_RETURN(json v, ParseJsonObject(body));
  static const std::set<std::string> kKnown = {
      "kind",     "input",    "prompt", "variables", "skill",     "route",      "threadId",
      "priority", "metadata", "tasks",  "queue",     "notBefore", "maxAttempts"};
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!kKnown.contains(it.key())) {
      RETURN_IF_ERROR(Invalid(it.key(), "unknown field"));
    }
  }
  store::SubmitRequest req;
  if (!v.contains("kind")) RETURN_IF_ERROR(Invalid("kind", "required"));
  if (!v["kind"].is_string()) RETURN_IF_ERROR(Invalid("kind", "must be a string"));
  req.kind = v["kind"].get<std::string>();
  if (req.kind != "prompt") {
    RETURN_IF_ERROR(Invalid("kind", "unsupported kind '" + req.kind + "' (supported: prompt)"));
  }
  if (!v.contains("input")) RETURN_IF_ERROR(Invalid("input", "required"));
  const json& input = v["input"];
  if (!input.is_object()) RETURN_IF_ERROR(Invalid("input", "must be an object"));
  for (auto it = input.begin(); it != input.end(); ++it) {
    if (it.key() != "text") RETURN_IF_ERROR(Invalid("input." + it.key(), "unknown field"));
  }
  if (!input.contains("text")) RETURN_IF_ERROR(Invalid("input.text", "required"));
  if (!input["text"].is_string()) RETURN_IF_ERROR(Invalid("input.text", "must be a string"));
  if (input["text"].get_ref<const std::string&>().empty()) {
    RETURN_IF_ERROR(Invalid("input.text", "must not be empty"));
  }
  if (v.contains("threadId")) {
    if (!v["threadId"].is_string() || !IsUuid(v["threadId"].get<std::string>())) {
      RETURN_IF_ERROR(Invalid("threadId", "must be a UUID"));
    }
    std::string t = v["threadId"].get<std::string>();
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
    req.thread_id = t;
  }
  if (v.contains("priority")) {
    if (!v["priority"].is_number_integer()) RETURN_IF_ERROR(Invalid("priority", "must be an integer"));
    int64_t p = v["priority"].get<int64_t>();
    if (p < -1000 || p > 1000) RETURN_IF_ERROR(Invalid("priority", "must be within -1000..1000"));
    req.priority = static_cast<int>(p);
  }
  if (v.contains("maxAttempts")) {
    if (!v["maxAttempts"].is_number_integer()) {
      RETURN_IF_ERROR(Invalid("maxAttempts", "must be an integer"));
    }
    int64_t n = v["maxAttempts"].get<int64_t>();
    if (n < 1 || n > 100) RETURN_IF_ERROR(Invalid("maxAttempts", "must be within 1..100"));
    req.max_attempts = static_cast<int>(n);
  }
  if (v.contains("queue")) {
    static const std::regex kQueue("[a-z0-9][a-z0-9_-]{0,62}");
    if (!v["queue"].is_string() || !std::regex_match(v["queue"].get<std::string>(), kQueue)) {
      RETURN_IF_ERROR(Invalid("queue", "must match [a-z0-9][a-z0-9_-]{0,62}"));
    }
    req.queue = v["queue"].get<std::string>();
  }
  if (v.contains("notBefore")) {
    static const std::regex kTime(
        R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2}))");
    if (!v["notBefore"].is_string() ||
        !std::regex_match(v["notBefore"].get<std::string>(), kTime)) {
      RETURN_IF_ERROR(Invalid("notBefore", "must be an RFC 3339 timestamp"));
    }
    req.not_before = v["notBefore"].get<std::string>();
  }
  if (v.contains("metadata") && !v["metadata"].is_object()) {
    RETURN_IF_ERROR(Invalid("metadata", "must be an object"));
  }
  for (const char* f : {"prompt", "variables", "skill", "route", "tasks"}) {
    if (v.contains(f)) {
      RETURN_IF_ERROR(Invalid(f, "not supported yet by this server version"));
    }
  }

  json spec = {{"kind", req.kind}, {"input", input}};
  if (v.contains("metadata")) spec["metadata"] = v["metadata"];
  req.tasks.push_back({"main", req.kind, spec, {}});
  req.payload = v;
  req.request_hash = Sha256Hex(v.dump());  // keys are sorted: the hash is canonical
  return req;
}

}  // namespace synaps::api
