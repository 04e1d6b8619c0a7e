#include "api/request_validation.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <set>

#include "control/concurrency_spec.h"
#include "core/http_grammar.h"
#include "core/ids.h"

namespace synaps::api {

using nlohmann::json;

namespace {

// An integer JSON number as int64. Numbers above INT64_MAX (which nlohmann keeps as unsigned and
// get<int64_t>() would wrap to negatives) saturate, so range checks refuse them.
int64_t AsInt64(const json& v) {
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    return INT64_MAX;
  }
  return v.get<int64_t>();
}

struct TooDeep {};

Status Invalid(const std::string& field, const std::string& message) {
  return Fail(ErrorCode::kInvalidArgument, field + ": " + message, field);
}

std::string TypeName(const json& v) { return v.type_name(); }

// {"text": "..."}: the only input shape so far.
Result<json> ParseInput(const json& input, const std::string& path) {
  if (!input.is_object()) RETURN_IF_ERROR(Invalid(path, "must be an object"));
  for (auto it = input.begin(); it != input.end(); ++it) {
    if (it.key() != "text") RETURN_IF_ERROR(Invalid(path + "." + it.key(), "unknown field"));
  }
  if (!input.contains("text")) RETURN_IF_ERROR(Invalid(path + ".text", "required"));
  if (!input["text"].is_string()) RETURN_IF_ERROR(Invalid(path + ".text", "must be a string"));
  if (input["text"].get_ref<const std::string&>().empty()) {
    RETURN_IF_ERROR(Invalid(path + ".text", "must not be empty"));
  }
  return input;
}

// tasks: [{name, input, dependsOn?}]: 1..100 uniquely named tasks whose dependencies exist and
// form no cycle.
Result<std::vector<store::TaskPlan>> ParseTasks(const json& tasks, const std::string& kind) {
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
  if (!tasks.is_array()) RETURN_IF_ERROR(Invalid("tasks", "must be an array"));
  if (tasks.empty() || tasks.size() > 100) {
    RETURN_IF_ERROR(Invalid("tasks", "must hold 1 to 100 tasks"));
  }
  std::vector<store::TaskPlan> plans;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const std::string path = "tasks[" + std::to_string(i) + "]";
    const json& t = tasks[i];
    if (!t.is_object()) RETURN_IF_ERROR(Invalid(path, "must be an object"));
    for (auto it = t.begin(); it != t.end(); ++it) {
      if (it.key() != "name" && it.key() != "input" && it.key() != "dependsOn") {
        RETURN_IF_ERROR(Invalid(path + "." + it.key(), "unknown field"));
      }
    }
    if (!t.contains("name") || !t["name"].is_string() ||
        !std::regex_match(t["name"].get<std::string>(), kName)) {
      RETURN_IF_ERROR(
          Invalid(path + ".name", "required, matching [A-Za-z0-9][A-Za-z0-9_.-]{0,63}"));
    }
    std::string name = t["name"].get<std::string>();
    if (index.contains(name))
      RETURN_IF_ERROR(Invalid(path + ".name", "duplicate task name " + name));
    if (!t.contains("input")) RETURN_IF_ERROR(Invalid(path + ".input", "required"));
    ASSIGN_OR_RETURN(json input, ParseInput(t["input"], path + ".input"));
    std::vector<std::string> deps;
    if (t.contains("dependsOn")) {
      if (!t["dependsOn"].is_array())
        RETURN_IF_ERROR(Invalid(path + ".dependsOn", "must be an array"));
      for (const auto& d : t["dependsOn"]) {
        if (!d.is_string()) RETURN_IF_ERROR(Invalid(path + ".dependsOn", "must hold task names"));
        deps.push_back(d.get<std::string>());
      }
    }
    index[name] = i;
    plans.push_back({name, kind, json{{"kind", kind}, {"input", input}}, deps});
  }
  // Unknown dependencies, then cycles (Kahn's algorithm: what cannot be ordered is on a cycle).
  std::vector<int> indegree(plans.size(), 0);
  std::vector<std::vector<size_t>> dependents(plans.size());
  for (size_t i = 0; i < plans.size(); ++i) {
    for (const auto& d : plans[i].depends_on) {
      auto it = index.find(d);
      if (it == index.end()) {
        RETURN_IF_ERROR(
            Invalid("tasks[" + std::to_string(i) + "].dependsOn", "no task named " + d));
      }
      if (it->second == i) {
        RETURN_IF_ERROR(Invalid("tasks[" + std::to_string(i) + "].dependsOn",
                                "task " + d + " depends on itself"));
      }
      ++indegree[i];
      dependents[it->second].push_back(i);
    }
  }
  std::vector<size_t> ready;
  for (size_t i = 0; i < plans.size(); ++i) {
    if (indegree[i] == 0) ready.push_back(i);
  }
  size_t ordered = 0;
  while (!ready.empty()) {
    size_t n = ready.back();
    ready.pop_back();
    ++ordered;
    for (size_t d : dependents[n]) {
      if (--indegree[d] == 0) ready.push_back(d);
    }
  }
  if (ordered != plans.size()) {
    std::string cycle;
    for (size_t i = 0; i < plans.size(); ++i) {
      if (indegree[i] > 0) cycle += (cycle.empty() ? "" : ", ") + plans[i].name;
    }
    RETURN_IF_ERROR(Invalid("tasks", "dependency cycle among: " + cycle));
  }
  return plans;
}

}  // namespace

bool IsJsonContentType(const std::string& content_type) {
  std::string ct;
  for (char c : content_type) {
    if (c == ';') break;
    if (c != ' ' && c != '\t')
      ct.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
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
  } catch (const json::out_of_range& e) {
    // A number literal too large for a double (1e999) is not a parse_error.
    return Fail(ErrorCode::kInvalidArgument, "body: malformed JSON: number out of range", "body");
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
  return ParseSubmitCommand(v);
}

namespace {

// An integer field within [lo, hi] ("must be an integer", "must be within lo..hi").
Result<int64_t> IntegerField(const json& v, const char* field, int64_t lo, int64_t hi) {
  if (!v[field].is_number_integer()) RETURN_IF_ERROR(Invalid(field, "must be an integer"));
  int64_t n = AsInt64(v[field]);
  if (n < lo || n > hi) {
    RETURN_IF_ERROR(
        Invalid(field, "must be within " + std::to_string(lo) + ".." + std::to_string(hi)));
  }
  return n;
}

// An array of at most `max` strings, each one `valid` (refused with `array_message` or
// `item_message`).
template <typename Valid>
Status StringArrayField(const json& v, const char* field, size_t max, Valid valid,
                        const std::string& array_message, const std::string& item_message) {
  if (!v[field].is_array() || v[field].size() > max) RETURN_IF_ERROR(Invalid(field, array_message));
  for (const auto& t : v[field]) {
    if (!t.is_string() || !valid(t.get_ref<const std::string&>())) {
      RETURN_IF_ERROR(Invalid(field, item_message));
    }
  }
  return Ok();
}

// What a submit says about the control registry and the agent, copied into every task's spec:
// prompt, skill, route (names only here; the worker resolves them against the snapshot it runs
// with and fails the task clearly when one does not exist), variables, tags, tools, maxSteps.
Result<json> ParseControlRefs(const json& v, const std::string& kind) {
  static const std::regex kControlName("[a-z0-9][a-z0-9_.-]{0,63}");
  json refs = json::object();
  for (const char* f : {"prompt", "skill", "route"}) {
    if (!v.contains(f)) continue;
    if (!v[f].is_string() || !std::regex_match(v[f].get<std::string>(), kControlName)) {
      RETURN_IF_ERROR(Invalid(f, "must be a name matching [a-z0-9][a-z0-9_.-]{0,63}"));
    }
    refs[f] = v[f];
  }
  if (v.contains("variables")) {
    if (!v.contains("prompt")) RETURN_IF_ERROR(Invalid("variables", "only with prompt"));
    if (!v["variables"].is_object()) RETURN_IF_ERROR(Invalid("variables", "must be an object"));
    refs["variables"] = v["variables"];
  }
  if (v.contains("tags")) {
    auto tag = [](const std::string& t) { return !t.empty() && t.size() <= 64; };
    RETURN_IF_ERROR(StringArrayField(v, "tags", 16, tag, "must be an array of at most 16 strings",
                                     "tags are strings of 1 to 64 characters"));
    refs["tags"] = v["tags"];
  }
  // Agents: the tools offered besides the skill's, and the model calls allowed.
  for (const char* f : {"tools", "maxSteps"}) {
    if (v.contains(f) && kind != "agent") RETURN_IF_ERROR(Invalid(f, "only for kind agent"));
  }
  if (v.contains("tools")) {
    auto tool = [](const std::string& t) { return std::regex_match(t, kControlName); };
    RETURN_IF_ERROR(StringArrayField(v, "tools", 32, tool,
                                     "must be an array of at most 32 tool names",
                                     "tool names match [a-z0-9][a-z0-9_.-]{0,63}"));
    refs["tools"] = v["tools"];
  }
  if (v.contains("maxSteps")) {
    ASSIGN_OR_RETURN(refs["maxSteps"], IntegerField(v, "maxSteps", 1, 100));
  }
  return refs;
}

// threadId (a UUID, kept lower-case) and onThreadBusy.
Status ParseThreadFields(const json& v, store::SubmitRequest& req) {
  if (v.contains("threadId")) {
    if (!v["threadId"].is_string() || !IsUuid(v["threadId"].get<std::string>())) {
      RETURN_IF_ERROR(Invalid("threadId", "must be a UUID"));
    }
    std::string t = v["threadId"].get<std::string>();
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
    req.thread_id = t;
  }
  if (v.contains("onThreadBusy")) {
    const json& busy = v["onThreadBusy"];
    if (!busy.is_string() ||
        (busy != "enqueue" && busy != "reject" && busy != "interrupt" && busy != "rollback")) {
      RETURN_IF_ERROR(
          Invalid("onThreadBusy", "must be one of enqueue, reject, interrupt, rollback"));
    }
    req.on_thread_busy = busy.get<std::string>();
  }
  return Ok();
}

// Where and when the tasks wait: priority, maxAttempts, queue, notBefore, and the flow-control
// keys (docs/flow-control.md: the group its tasks share slots in, and the key whose
// `concurrency` limit they count against).
Status ParseQueueFields(const json& v, store::SubmitRequest& req) {
  if (v.contains("priority")) {
    ASSIGN_OR_RETURN(int64_t p, IntegerField(v, "priority", -1000, 1000));
    req.priority = static_cast<int>(p);
  }
  if (v.contains("maxAttempts")) {
    ASSIGN_OR_RETURN(int64_t n, IntegerField(v, "maxAttempts", 1, 100));
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
  for (auto [field, target] : {std::pair{"fairnessKey", &req.fairness_key},
                               std::pair{"concurrencyKey", &req.concurrency_key}}) {
    if (!v.contains(field)) continue;
    if (!v[field].is_string() || !control::IsValidFlowKey(v[field].get<std::string>())) {
      RETURN_IF_ERROR(Invalid(field, "must match [A-Za-z0-9_.:/@-]{1,128}"));
    }
    *target = v[field].get<std::string>();
  }
  return Ok();
}

}  // namespace

Result<store::SubmitRequest> ParseSubmitCommand(const json& v) {
  static const std::set<std::string> kKnown = {
      "kind",     "input",       "prompt",         "variables",   "skill",
      "route",    "threadId",    "priority",       "metadata",    "tasks",
      "queue",    "notBefore",   "maxAttempts",    "tags",        "tools",
      "maxSteps", "fairnessKey", "concurrencyKey", "onThreadBusy"};
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!kKnown.contains(it.key())) {
      RETURN_IF_ERROR(Invalid(it.key(), "unknown field"));
    }
  }
  store::SubmitRequest req;
  if (!v.contains("kind")) RETURN_IF_ERROR(Invalid("kind", "required"));
  if (!v["kind"].is_string()) RETURN_IF_ERROR(Invalid("kind", "must be a string"));
  req.kind = v["kind"].get<std::string>();
  if (req.kind != "prompt" && req.kind != "agent") {
    RETURN_IF_ERROR(
        Invalid("kind", "unsupported kind '" + req.kind + "' (supported: prompt, agent)"));
  }
  const bool fan_out = v.contains("tasks");
  if (fan_out && (v.contains("input") || v.contains("prompt"))) {
    RETURN_IF_ERROR(Invalid(v.contains("input") ? "input" : "prompt",
                            "give either input/prompt or tasks, not both"));
  }
  ASSIGN_OR_RETURN(json refs, ParseControlRefs(v, req.kind));
  json input;
  if (!fan_out && !v.contains("prompt")) {
    if (!v.contains("input")) RETURN_IF_ERROR(Invalid("input", "required (or prompt)"));
    ASSIGN_OR_RETURN(input, ParseInput(v["input"], "input"));
  } else if (!fan_out && v.contains("input")) {
    ASSIGN_OR_RETURN(input, ParseInput(v["input"], "input"));
  }
  RETURN_IF_ERROR(ParseThreadFields(v, req));
  RETURN_IF_ERROR(ParseQueueFields(v, req));
  if (v.contains("metadata") && !v["metadata"].is_object()) {
    RETURN_IF_ERROR(Invalid("metadata", "must be an object"));
  }
  if (fan_out) {
    ASSIGN_OR_RETURN(req.tasks, ParseTasks(v["tasks"], req.kind));
  } else {
    json spec = {{"kind", req.kind}};
    if (!input.is_null()) spec["input"] = input;
    req.tasks.push_back({"main", req.kind, spec, {}});
  }
  // The attempts a task has, for the worker's arbiter retries (feedback within the attempts left).
  refs["maxAttempts"] = req.max_attempts;
  for (auto& t : req.tasks) {
    for (auto it = refs.begin(); it != refs.end(); ++it) t.spec[it.key()] = it.value();
  }
  if (v.contains("metadata")) {
    for (auto& t : req.tasks) t.spec["metadata"] = v["metadata"];
  }
  req.payload = v;
  req.request_hash = Sha256Hex(v.dump());  // keys are sorted: the hash is canonical
  return req;
}

Result<std::string> IdempotencyKeyHeader(const std::string& value, size_t max) {
  if (value.size() > max) {
    RETURN_IF_ERROR(
        Invalid("Idempotency-Key", "longer than " + std::to_string(max) + " characters"));
  }
  return value;
}

bool IsBatchSubmit(const json& body) { return body.is_object() && body.contains("commands"); }

namespace {

// An item's own idempotencyKey (taken out of the item: it is not part of the request hash, as
// the single submit's Idempotency-Key header is not), else `<header key>/<index>` when the
// request carries one.
Result<std::optional<std::string>> ItemIdempotencyKey(json& item, size_t index,
                                                      const std::string& request_key) {
  if (!item.contains("idempotencyKey")) {
    if (request_key.empty()) return std::optional<std::string>();
    return std::optional<std::string>(request_key + "/" + std::to_string(index));
  }
  const json& k = item["idempotencyKey"];
  if (!k.is_string() || k.get_ref<const std::string&>().empty() ||
      k.get_ref<const std::string&>().size() > 255) {
    RETURN_IF_ERROR(Invalid("idempotencyKey", "must be a string of 1 to 255 characters"));
  }
  std::string key = k.get<std::string>();
  item.erase("idempotencyKey");
  return std::optional<std::string>(std::move(key));
}

}  // namespace

Result<std::vector<BatchItem>> ParseSubmitBatch(const json& body, const std::string& request_key,
                                                size_t max_item_bytes) {
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (it.key() != "commands") RETURN_IF_ERROR(Invalid(it.key(), "unknown field"));
  }
  const json& commands = body["commands"];
  if (!commands.is_array()) RETURN_IF_ERROR(Invalid("commands", "must be an array"));
  if (commands.empty() || commands.size() > kMaxBatchCommands) {
    RETURN_IF_ERROR(Invalid("commands", "must hold 1 to " + std::to_string(kMaxBatchCommands) +
                                            " commands, got " + std::to_string(commands.size())));
  }
  if (request_key.size() > 248) {
    RETURN_IF_ERROR(Invalid("Idempotency-Key",
                            "longer than 248 characters (a batch appends /<index> per item)"));
  }
  std::vector<BatchItem> items(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    if (!commands[i].is_object()) {
      items[i].error =
          Error{ErrorCode::kInvalidArgument,
                "a command must be a JSON object (a submit body), got " + TypeName(commands[i])};
      continue;
    }
    if (max_item_bytes > 0) {
      if (size_t bytes = commands[i].dump().size(); bytes > max_item_bytes) {
        items[i].error = Error{ErrorCode::kResourceExhausted,
                               "the command is " + std::to_string(bytes) + " bytes, over the " +
                                   std::to_string(max_item_bytes) + " a single submit may send",
                               {}};
        continue;
      }
    }
    json item = commands[i];
    auto key = ItemIdempotencyKey(item, i, request_key);
    if (!key) {
      items[i].error = key.error();
      continue;
    }
    auto request = ParseSubmitCommand(item);
    if (!request) {
      items[i].error = request.error();
      continue;
    }
    // A batch only queues behind a busy thread: refusing or cancelling from inside a batch
    // would make one item's answer depend on another's.
    if (request->on_thread_busy != "enqueue") {
      items[i].error = Error{ErrorCode::kInvalidArgument,
                             "onThreadBusy: a batch item may only enqueue (submit it alone to "
                             "reject, interrupt or roll back)",
                             "onThreadBusy"};
      continue;
    }
    request->idempotency_key = std::move(*key);
    items[i].request = std::move(*request);
  }
  return items;
}

Status ValidateScheduleCommand(const json& spec) {
  if (!spec.is_object() || !spec.contains("command") || !spec["command"].is_object()) {
    return Ok();
  }
  auto req = ParseSubmitCommand(spec["command"]);
  if (!req) {
    return Fail(ErrorCode::kInvalidArgument, "spec.command." + req.error().message,
                "spec.command." + req.error().field);
  }
  return Ok();
}

namespace {

Status OnlyFields(const json& v, std::initializer_list<const char*> allowed,
                  const std::string& prefix = {}) {
  for (auto it = v.begin(); it != v.end(); ++it) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || it.key() == a;
    if (!ok) return Invalid(prefix + it.key(), "unknown field");
  }
  return Ok();
}

Result<int64_t> IntField(const json& v, const char* name, int64_t min, int64_t max,
                         std::optional<int64_t> fallback) {
  if (!v.contains(name)) {
    if (fallback) return *fallback;
    RETURN_IF_ERROR(Invalid(name, "required"));
  }
  if (!v[name].is_number_integer()) RETURN_IF_ERROR(Invalid(name, "must be an integer"));
  int64_t n = AsInt64(v[name]);
  if (n < min || n > max) {
    RETURN_IF_ERROR(
        Invalid(name, "must be within " + std::to_string(min) + ".." + std::to_string(max)));
  }
  return n;
}

// Standard base64 with padding, decoded by OpenSSL.
Result<std::string> DecodeBase64(const std::string& in, const std::string& field) {
  if (in.size() % 4 != 0) {
    return Fail(ErrorCode::kInvalidArgument, field + ": not valid base64", field);
  }
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return Fail(ErrorCode::kInvalidArgument, field + ": not valid base64", field);
  size_t pad = in.ends_with("==") ? 2 : in.ends_with("=") ? 1 : 0;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

}  // namespace

Result<ClaimRequest> ParseClaimRequest(const std::string& body) {
  ClaimRequest req;
  if (body.empty()) return req;
  ASSIGN_OR_RETURN(json v, ParseJsonObject(body));
  RETURN_IF_ERROR(OnlyFields(v, {"worker", "queues", "limit", "leaseSeconds"}));
  if (v.contains("worker")) {
    static const std::regex kWorker("[A-Za-z0-9._:-]{1,128}");
    if (!v["worker"].is_string() || !std::regex_match(v["worker"].get<std::string>(), kWorker)) {
      RETURN_IF_ERROR(Invalid("worker", "must match [A-Za-z0-9._:-]{1,128}"));
    }
    req.worker = v["worker"].get<std::string>();
  } else {
    req.worker = "remote";
  }
  if (v.contains("queues")) {
    static const std::regex kQueue("[a-z0-9][a-z0-9_-]{0,62}");
    if (!v["queues"].is_array() || v["queues"].empty() || v["queues"].size() > 32) {
      RETURN_IF_ERROR(Invalid("queues", "must be an array of 1 to 32 queue names"));
    }
    req.queues.clear();
    for (const auto& q : v["queues"]) {
      if (!q.is_string() || !std::regex_match(q.get<std::string>(), kQueue)) {
        RETURN_IF_ERROR(Invalid("queues", "queue names match [a-z0-9][a-z0-9_-]{0,62}"));
      }
      req.queues.push_back(q.get<std::string>());
    }
  }
  ASSIGN_OR_RETURN(int64_t limit, IntField(v, "limit", 1, 100, 1));
  ASSIGN_OR_RETURN(int64_t lease, IntField(v, "leaseSeconds", 1, 3600, 30));
  req.limit = static_cast<int>(limit);
  req.lease_seconds = static_cast<int>(lease);
  return req;
}

Result<RenewRequest> ParseRenewRequest(const std::string& body) {
  ASSIGN_OR_RETURN(json v, ParseJsonObject(body));
  RETURN_IF_ERROR(OnlyFields(v, {"leaseEpoch", "leaseSeconds"}));
  RenewRequest req;
  ASSIGN_OR_RETURN(req.lease_epoch, IntField(v, "leaseEpoch", 1, INT64_MAX, std::nullopt));
  ASSIGN_OR_RETURN(int64_t lease, IntField(v, "leaseSeconds", 1, 3600, 30));
  req.lease_seconds = static_cast<int>(lease);
  return req;
}

Result<CompleteRequest> ParseCompleteRequest(const std::string& body) {
  ASSIGN_OR_RETURN(json v, ParseJsonObject(body));
  RETURN_IF_ERROR(OnlyFields(v, {"leaseEpoch", "output", "artifacts"}));
  CompleteRequest req;
  ASSIGN_OR_RETURN(req.lease_epoch, IntField(v, "leaseEpoch", 1, INT64_MAX, std::nullopt));
  if (v.contains("output")) {
    if (!v["output"].is_object()) RETURN_IF_ERROR(Invalid("output", "must be an object"));
    req.output = v["output"];
  }
  if (v.contains("artifacts")) {
    static const std::regex kName("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    if (!v["artifacts"].is_array() || v["artifacts"].size() > 32) {
      RETURN_IF_ERROR(Invalid("artifacts", "must be an array of at most 32 artifacts"));
    }
    for (size_t i = 0; i < v["artifacts"].size(); ++i) {
      const json& a = v["artifacts"][i];
      std::string path = "artifacts[" + std::to_string(i) + "]";
      if (!a.is_object()) RETURN_IF_ERROR(Invalid(path, "must be an object"));
      RETURN_IF_ERROR(
          OnlyFields(a, {"name", "contentType", "content", "contentBase64"}, path + "."));
      ArtifactUpload up;
      if (!a.contains("name") || !a["name"].is_string() ||
          !std::regex_match(a["name"].get<std::string>(), kName)) {
        RETURN_IF_ERROR(
            Invalid(path + ".name", "required, matching [A-Za-z0-9][A-Za-z0-9._-]{0,127}"));
      }
      up.name = a["name"].get<std::string>();
      up.content_type = "text/plain; charset=utf-8";
      if (a.contains("contentType")) {
        // Sent back verbatim as the Content-Type of the artifact's download: a value outside
        // the media-type grammar (CR, LF, NUL, ...) could split that response.
        if (!a["contentType"].is_string() || !IsMediaType(a["contentType"].get<std::string>())) {
          RETURN_IF_ERROR(Invalid(path + ".contentType",
                                  "must be a media type (RFC 9110: type/subtype[; name=value]...), "
                                  "printable ASCII, at most 128 bytes"));
        }
        up.content_type = a["contentType"].get<std::string>();
      }
      bool text = a.contains("content"), b64 = a.contains("contentBase64");
      if (text == b64) RETURN_IF_ERROR(Invalid(path, "give exactly one of content, contentBase64"));
      if (text) {
        if (!a["content"].is_string())
          RETURN_IF_ERROR(Invalid(path + ".content", "must be a string"));
        up.bytes = a["content"].get<std::string>();
      } else {
        if (!a["contentBase64"].is_string()) {
          RETURN_IF_ERROR(Invalid(path + ".contentBase64", "must be a string"));
        }
        ASSIGN_OR_RETURN(
            up.bytes, DecodeBase64(a["contentBase64"].get<std::string>(), path + ".contentBase64"));
      }
      req.artifacts.push_back(std::move(up));
    }
  }
  return req;
}

Result<FailRequest> ParseFailRequest(const std::string& body) {
  ASSIGN_OR_RETURN(json v, ParseJsonObject(body));
  RETURN_IF_ERROR(OnlyFields(v, {"leaseEpoch", "error", "retryable"}));
  FailRequest req;
  ASSIGN_OR_RETURN(req.lease_epoch, IntField(v, "leaseEpoch", 1, INT64_MAX, std::nullopt));
  if (!v.contains("error") || !v["error"].is_object()) {
    RETURN_IF_ERROR(Invalid("error", "required: {code?, message}"));
  }
  RETURN_IF_ERROR(OnlyFields(v["error"], {"code", "message"}, "error."));
  if (!v["error"].contains("message") || !v["error"]["message"].is_string()) {
    RETURN_IF_ERROR(Invalid("error.message", "required string"));
  }
  if (v["error"].contains("code") && !v["error"]["code"].is_string()) {
    RETURN_IF_ERROR(Invalid("error.code", "must be a string"));
  }
  req.error = {{"code", v["error"].value("code", "worker_error")},
               {"message", v["error"]["message"]}};
  if (v.contains("retryable")) {
    if (!v["retryable"].is_boolean()) RETURN_IF_ERROR(Invalid("retryable", "must be a boolean"));
    req.retryable = v["retryable"].get<bool>();
  }
  return req;
}

Result<ApiKeyRequest> ParseApiKeyRequest(const std::string& body) {
  ASSIGN_OR_RETURN(json v, ParseJsonObject(body));
  RETURN_IF_ERROR(OnlyFields(v, {"role", "tenantId", "name", "installation"}));
  ApiKeyRequest req;
  if (!v.contains("role") || !v["role"].is_string()) RETURN_IF_ERROR(Invalid("role", "required"));
  req.role = v["role"].get<std::string>();
  if (req.role != "admin" && req.role != "operator" && req.role != "worker" &&
      req.role != "viewer") {
    RETURN_IF_ERROR(Invalid("role", "must be one of admin, operator, worker, viewer"));
  }
  if (v.contains("tenantId")) {
    if (!v["tenantId"].is_string() || !IsTenantId(v["tenantId"].get<std::string>())) {
      RETURN_IF_ERROR(Invalid("tenantId", "must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}"));
    }
    req.tenant_id = v["tenantId"].get<std::string>();
  }
  if (v.contains("name")) {
    if (!v["name"].is_string() || v["name"].get<std::string>().size() > 200) {
      RETURN_IF_ERROR(Invalid("name", "must be a string of at most 200 characters"));
    }
    req.name = v["name"].get<std::string>();
  }
  if (v.contains("installation")) {
    if (!v["installation"].is_boolean())
      RETURN_IF_ERROR(Invalid("installation", "must be a boolean"));
    req.installation = v["installation"].get<bool>();
  }
  return req;
}

}  // namespace synaps::api
