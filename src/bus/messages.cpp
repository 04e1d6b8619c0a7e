#include "bus/messages.h"

#include <nlohmann/json.hpp>

namespace synaps::bus {
namespace {

using nlohmann::json;

Result<json> ParseObject(std::string_view payload) {
  if (payload.size() > kMaxPayloadBytes) {
    return Fail(ErrorCode::kInvalidArgument, "payload of " + std::to_string(payload.size()) +
                                                 " bytes exceeds " +
                                                 std::to_string(kMaxPayloadBytes));
  }
  // Without exceptions: malformed text, invalid UTF-8 and binary come back as `discarded`.
  json parsed = json::parse(payload.begin(), payload.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Fail(ErrorCode::kInvalidArgument, "payload is not valid JSON");
  if (!parsed.is_object()) {
    return Fail(ErrorCode::kInvalidArgument,
                std::string("payload is a JSON ") + parsed.type_name() + ", not an object");
  }
  return parsed;
}

// A string field: required, or optional (absent gives "").
Result<std::string> StringField(const json& object, const char* name, bool required) {
  auto it = object.find(name);
  if (it == object.end()) {
    if (!required) return std::string();
    return Fail(ErrorCode::kInvalidArgument, std::string("\"") + name + "\" is missing", name);
  }
  if (!it->is_string()) {
    return Fail(ErrorCode::kInvalidArgument,
                std::string("\"") + name + "\" must be a string, not " + it->type_name(), name);
  }
  return it->get<std::string>();
}

Result<int64_t> PositiveIntField(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end()) {
    return Fail(ErrorCode::kInvalidArgument, std::string("\"") + name + "\" is missing", name);
  }
  if (it->is_number_unsigned()) {
    uint64_t v = it->get<uint64_t>();
    if (v >= 1 && v <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(v);
  } else if (it->is_number_integer() && it->get<int64_t>() >= 1) {
    return it->get<int64_t>();
  }
  return Fail(ErrorCode::kInvalidArgument,
              std::string("\"") + name + "\" must be a positive integer, not " +
                  (it->is_number() ? it->dump() : std::string(it->type_name())),
              name);
}

}  // namespace

Result<WakeupMessage> ParseWakeupMessage(std::string_view payload) {
  ASSIGN_OR_RETURN(json msg, ParseObject(payload));
  WakeupMessage out;
  ASSIGN_OR_RETURN(out.queue, StringField(msg, "queue", /*required=*/true));
  ASSIGN_OR_RETURN(out.run_id, StringField(msg, "runId", /*required=*/false));
  return out;
}

Result<RunMessage> ParseRunMessage(std::string_view payload) {
  ASSIGN_OR_RETURN(json msg, ParseObject(payload));
  RunMessage out;
  ASSIGN_OR_RETURN(out.type, StringField(msg, "type", /*required=*/true));
  ASSIGN_OR_RETURN(out.run_id, StringField(msg, "runId", /*required=*/true));
  return out;
}

Result<ControlMessage> ParseControlMessage(std::string_view payload) {
  ASSIGN_OR_RETURN(json msg, ParseObject(payload));
  ControlMessage out;
  ASSIGN_OR_RETURN(out.snapshot_version, PositiveIntField(msg, "snapshotVersion"));
  ASSIGN_OR_RETURN(out.kind, StringField(msg, "kind", /*required=*/false));
  ASSIGN_OR_RETURN(out.name, StringField(msg, "name", /*required=*/false));
  return out;
}

std::string SubjectFamily(std::string_view subject) {
  size_t first = subject.find('.');
  if (first == std::string_view::npos) return std::string(subject);
  size_t second = subject.find('.', first + 1);
  if (second == std::string_view::npos) return std::string(subject);
  return std::string(subject.substr(0, second)) + ".*";
}

}  // namespace synaps::bus
