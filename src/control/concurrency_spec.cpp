#include "control/concurrency_spec.h"

namespace synaps::control {

using nlohmann::json;

namespace {

std::unexpected<Error> Bad(const std::string& field, const std::string& message) {
  return Fail(ErrorCode::kInvalidArgument, field + ": " + message, field);
}

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '/' || c == '@' || c == '-';
}

// An integer in [min, max], or nullopt when absent.
Result<std::optional<int>> Int(const json& spec, const char* key, int min, int max) {
  auto it = spec.find(key);
  if (it == spec.end()) return std::optional<int>();
  const std::string field = std::string("spec.") + key;
  if (!it->is_number_integer()) return Bad(field, "must be an integer");
  // Non-negative JSON integers parse as unsigned: compare those as unsigned (no wrap-around).
  const bool out_of_range = it->is_number_unsigned()
                                ? it->get<uint64_t>() < static_cast<uint64_t>(min) ||
                                      it->get<uint64_t>() > static_cast<uint64_t>(max)
                                : it->get<int64_t>() < min || it->get<int64_t>() > max;
  if (out_of_range) {
    return Bad(field, "must be within " + std::to_string(min) + ".." + std::to_string(max));
  }
  return std::optional<int>(static_cast<int>(it->get<int64_t>()));
}

}  // namespace

bool IsValidFlowKey(std::string_view key) {
  if (key.empty() || key.size() > 128) return false;
  for (char c : key) {
    if (!IsKeyChar(c)) return false;
  }
  return true;
}

bool IsValidFlowPattern(std::string_view pattern) {
  if (pattern == "*") return true;
  if (pattern.ends_with('*')) pattern.remove_suffix(1);
  return IsValidFlowKey(pattern);
}

std::string_view ConcurrencyStrategyName(ConcurrencyStrategy s) {
  switch (s) {
    case ConcurrencyStrategy::kQueue:
      return "queue";
    case ConcurrencyStrategy::kCancelInProgress:
      return "cancelInProgress";
    case ConcurrencyStrategy::kCancelNewest:
      return "cancelNewest";
  }
  return "queue";
}

Result<Concurrency> ParseConcurrency(std::string_view name, const json& spec) {
  if (!spec.is_object()) return Bad("spec", "must be an object");
  for (auto it = spec.begin(); it != spec.end(); ++it) {
    if (it.key() != "match" && it.key() != "weight" && it.key() != "maxRunning" &&
        it.key() != "strategy") {
      return Bad("spec." + it.key(), "unknown field (known: match, weight, maxRunning, strategy)");
    }
  }
  Concurrency c;
  c.name = std::string(name);
  ASSIGN_OR_RETURN(c.weight, Int(spec, "weight", 1, 1000));
  ASSIGN_OR_RETURN(c.max_running, Int(spec, "maxRunning", 1, 10000));
  if (c.weight.has_value() == c.max_running.has_value()) {
    return Bad("spec", "give either weight (a fair-share weight) or maxRunning (a limit)");
  }
  if (spec.contains("strategy")) {
    if (!c.max_running) return Bad("spec.strategy", "only with maxRunning");
    const json& s = spec["strategy"];
    if (s == "queue") {
      c.strategy = ConcurrencyStrategy::kQueue;
    } else if (s == "cancelInProgress") {
      c.strategy = ConcurrencyStrategy::kCancelInProgress;
    } else if (s == "cancelNewest") {
      c.strategy = ConcurrencyStrategy::kCancelNewest;
    } else {
      return Bad("spec.strategy", "must be queue, cancelInProgress or cancelNewest");
    }
  }
  if (!spec.contains("match")) return c;
  const json& m = spec["match"];
  if (!m.is_object()) return Bad("spec.match", "must be an object");
  for (auto it = m.begin(); it != m.end(); ++it) {
    const std::string field = "spec.match." + it.key();
    if (!it->is_string()) {
      return it.key() == "tenant" || it.key() == "key" || it.key() == "fairnessKey"
                 ? Bad(field, "must be a string")
                 : Bad(field, "unknown field (known: tenant, key, fairnessKey)");
    }
    const std::string v = it->get<std::string>();
    if (it.key() == "tenant") {
      if (v.empty() || v.size() > 128) return Bad(field, "must be 1 to 128 bytes");
      c.tenant = v;
    } else if (it.key() == "key" || it.key() == "fairnessKey") {
      const bool limit_field = it.key() == "key";
      if (limit_field != c.max_running.has_value()) {
        return Bad(field, limit_field ? "only with maxRunning (weights match fairnessKey)"
                                      : "only with weight (limits match key)");
      }
      if (!IsValidFlowPattern(v)) {
        return Bad(field, "must be a key ([A-Za-z0-9_.:/@-]{1,128}), optionally ending in *");
      }
      (limit_field ? c.key : c.fairness_key) = v;
    } else {
      return Bad(field, "unknown field (known: tenant, key, fairnessKey)");
    }
  }
  return c;
}

}  // namespace synaps::control
