// Arbiters for remote workers' completions (docs/control.md, "Arbiters and remote workers"):
// a completion through POST /v1/queue/items/{id}/complete meets the same arbiters as the
// built-in worker's answer. The checks that need no model run here; a judge check holds the
// task for a person (control::ArbitrateWithoutModel).
#include <algorithm>

#include "api/router_internal.h"
#include "control/routing.h"
#include "store/control_store.h"
#include "store/queue_store.h"

namespace synaps::api::detail {

namespace {

using nlohmann::json;

int64_t IntAt(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

// The answer as the checks see it: output.text when the worker gave one, else the first
// artifact that is text or JSON, else the output itself as JSON text.
std::string AnswerText(const json& output, const std::vector<ArtifactUpload>& artifacts) {
  if (!output.is_object()) return output.dump(-1, ' ', false, json::error_handler_t::replace);
  if (auto text = output.find("text"); text != output.end() && text->is_string()) {
    return text->get<std::string>();
  }
  for (const auto& a : artifacts) {
    if (a.content_type.starts_with("text/") || a.content_type.find("json") != std::string::npos) {
      return a.bytes;
    }
  }
  return output.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<std::string> Tags(const json& spec) {
  std::vector<std::string> tags;
  if (auto it = spec.find("tags"); it != spec.end() && it->is_array()) {
    for (const auto& t : *it) {
      if (t.is_string()) tags.push_back(t.get<std::string>());
    }
  }
  return tags;
}

}  // namespace

Result<control::Arbitration> ArbitrateRemoteCompletion(
    db::Connection& conn, int64_t item_id, const json& output,
    const std::vector<ArtifactUpload>& artifacts) {
  ASSIGN_OR_RETURN(std::optional<store::ItemTask> task, store::QueueItemTask(conn, item_id));
  if (!task)
    return Fail(ErrorCode::kNotFound, "queue item " + std::to_string(item_id) + " not found");
  ASSIGN_OR_RETURN(control::Snapshot snapshot, store::LoadSnapshot(conn, std::nullopt));
  if (!task->spec.is_object()) task->spec = json::object();
  std::string skill;
  if (auto s = task->spec.find("skill"); s != task->spec.end() && s->is_string()) skill = *s;
  control::RouteQuery query{
      .kind = task->task_kind, .skill = skill, .tags = Tags(task->spec), .tenant = task->tenant_id};
  std::vector<const control::Arbiter*> arbiters = control::MatchingArbiters(snapshot, query);
  if (arbiters.empty()) return control::Arbitration{};
  // Usage and steps are what the remote worker reports: a budget holds it to its own word.
  json usage = output.is_object() ? output.value("usage", json::object()) : json::object();
  if (!usage.is_object()) usage = json::object();
  control::AnswerFacts facts{.text = AnswerText(output, artifacts),
                             .prompt_tokens = IntAt(usage, "promptTokens"),
                             .completion_tokens = IntAt(usage, "completionTokens"),
                             .steps = static_cast<int>(std::clamp<int64_t>(
                                 output.is_object() ? IntAt(output, "steps") : 0, 1, 1'000'000))};
  if (auto cost = output.find("costUsd");
      output.is_object() && cost != output.end() && cost->is_number()) {
    facts.cost_usd = cost->get<double>();
  }
  return control::ArbitrateWithoutModel(arbiters, facts);
}

}  // namespace synaps::api::detail
