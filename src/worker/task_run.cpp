#include "worker/task_run.h"

#include <spdlog/spdlog.h>

#include "control/routing.h"
#include "control/template.h"

namespace synaps::worker {

using nlohmann::json;

namespace {

json RouteJson(const control::Route& r) {
  json out = {{"name", r.name},         {"version", r.version}, {"provider", r.provider},
              {"model", r.model},       {"params", r.params}};
  if (!r.base_url.empty()) out["baseUrl"] = r.base_url;
  if (!r.api_key_env.empty()) out["apiKeyEnv"] = r.api_key_env;
  return out;
}

std::vector<std::string> Tags(const json& spec) {
  std::vector<std::string> tags;
  if (spec.contains("tags") && spec["tags"].is_array()) {
    for (const auto& t : spec["tags"]) {
      if (t.is_string()) tags.push_back(t.get<std::string>());
    }
  }
  return tags;
}

}  // namespace

Result<TaskRun::Plan> TaskRun::Resolve(const store::ClaimedItem& item,
                                       const control::Snapshot* snapshot,
                                       const json& default_route) {
  const json& spec = item.spec;
  Plan plan;
  plan.versions = {{"snapshotVersion", snapshot ? snapshot->version : 0}};

  // The user text: a named prompt rendered with the variables, or the literal input.
  std::string text;
  if (spec.contains("prompt") && spec["prompt"].is_string()) {
    std::string name = spec["prompt"].get<std::string>();
    const control::Prompt* prompt = snapshot ? snapshot->FindPrompt(name) : nullptr;
    if (prompt == nullptr) {
      return Fail(ErrorCode::kInvalidArgument,
                  "prompt '" + name + "' does not exist in control snapshot " +
                      std::to_string(snapshot ? snapshot->version : 0),
                  "prompt");
    }
    json vars = spec.value("variables", json::object());
    ASSIGN_OR_RETURN(text, control::RenderTemplate(prompt->template_text, vars));
    plan.versions["prompt"] = {{"name", name}, {"version", prompt->version}};
  } else if (spec.contains("input") && spec["input"].is_object() &&
             spec["input"].contains("text") && spec["input"]["text"].is_string()) {
    text = spec["input"]["text"].get<std::string>();
  } else {
    return Fail(ErrorCode::kInvalidArgument, "task has neither prompt nor input.text", "input.text");
  }

  // The skill's system text, and its default route.
  const control::Skill* skill = nullptr;
  std::string skill_name;
  if (spec.contains("skill") && spec["skill"].is_string()) {
    skill_name = spec["skill"].get<std::string>();
    skill = snapshot ? snapshot->FindSkill(skill_name) : nullptr;
    if (skill == nullptr) {
      return Fail(ErrorCode::kInvalidArgument, "skill '" + skill_name + "' does not exist", "skill");
    }
    plan.versions["skill"] = {{"name", skill_name}, {"version", skill->version}};
    if (!skill->system.empty()) plan.messages.push_back({.role = "system", .content = skill->system});
  }

  // Conversation: the thread's earlier turns, dependency outputs, then this task's text.
  if (item.history.is_array()) {
    for (const auto& turn : item.history) {
      if (turn.contains("input") && turn["input"].is_string()) {
        plan.messages.push_back({.role = "user", .content = turn["input"].get<std::string>()});
      }
      if (turn.contains("output") && turn["output"].is_string()) {
        plan.messages.push_back({.role = "assistant", .content = turn["output"].get<std::string>()});
      }
    }
  }
  for (auto it = item.upstream.begin(); it != item.upstream.end(); ++it) {
    const json& out = it.value();
    if (out.is_object() && out.contains("text") && out["text"].is_string()) {
      plan.messages.push_back({.role = "user",
                               .content = "Output of task " + it.key() + ":\n" +
                                          out["text"].get<std::string>()});
    }
  }
  plan.messages.push_back({.role = "user", .content = text});

  // The route: named by the task, else the skill's, else the first registry match (weighted,
  // stable per run), else the worker's default.
  const control::Route* route = nullptr;
  std::string route_name;
  if (spec.contains("route") && spec["route"].is_string()) {
    route_name = spec["route"].get<std::string>();
  } else if (skill != nullptr && skill->route) {
    route_name = *skill->route;
  }
  if (!route_name.empty()) {
    route = snapshot ? snapshot->FindRoute(route_name) : nullptr;
    if (route == nullptr) {
      return Fail(ErrorCode::kInvalidArgument, "route '" + route_name + "' does not exist", "route");
    }
  } else if (snapshot != nullptr && !snapshot->routes.empty()) {
    control::RouteQuery q{.kind = item.task_kind, .skill = skill_name, .tags = Tags(spec),
                          .tenant = item.tenant_id};
    auto selected = control::SelectRoute(snapshot->routes, q, item.run_id);
    if (selected) route = *selected;
  }
  if (route != nullptr) {
    ASSIGN_OR_RETURN(auto chain, control::FallbackChain(snapshot->routes, *route));
    for (const control::Route* r : chain) plan.routes.push_back(RouteJson(*r));
    plan.versions["route"] = {{"name", route->name}, {"version", route->version}};
  } else {
    plan.routes.push_back(default_route);
  }
  return plan;
}

TaskRun::TaskRun(store::ClaimedItem item, std::shared_ptr<const control::Snapshot> snapshot,
                 json default_route, providers::ProviderRegistry* providers, OnDelta on_delta,
                 Done done)
    : item_(std::move(item)),
      snapshot_(std::move(snapshot)),
      default_route_(std::move(default_route)),
      providers_(providers),
      on_delta_(std::move(on_delta)),
      done_(std::move(done)),
      alive_(std::make_shared<bool>(true)) {}

TaskRun::~TaskRun() { *alive_ = false; }

void TaskRun::Start() {
  if (cancel_requested_) return Finish(Fail(ErrorCode::kCancelled, "task cancelled"));
  auto plan = Resolve(item_, snapshot_.get(), default_route_);
  if (!plan) return Finish(std::unexpected(plan.error()));
  plan_ = std::move(*plan);
  CallRoute(0);
}

void TaskRun::Cancel() {
  // Never finishes synchronously: callers may be iterating over their tasks.
  if (call_) {
    call_->Cancel();  // the provider reports kCancelled to OnAnswer, posted
  } else {
    cancel_requested_ = true;  // not started yet: Start() reports kCancelled
  }
}

void TaskRun::CallRoute(size_t index) {
  const json& route = plan_.routes[index];
  auto spec = providers::ProviderSpecFromJson(route);
  if (!spec) return Finish(std::unexpected(spec.error()));
  auto provider = providers_->Get(*spec);
  if (!provider) return Finish(std::unexpected(provider.error()));
  providers::ChatRequest req;
  req.model = route.value("model", "");
  if (route.contains("params") && route["params"].is_object()) req.params = route["params"];
  req.messages = plan_.messages;
  req.on_delta = on_delta_;
  std::weak_ptr<bool> alive = alive_;
  call_ = (*provider)->Start(req, [this, alive, index](Result<providers::ChatResponse> r) {
    if (auto a = alive.lock(); !a || !*a) return;
    OnAnswer(index, std::move(r));
  });
}

void TaskRun::OnAnswer(size_t index, Result<providers::ChatResponse> r) {
  call_.reset();
  const json& route = plan_.routes[index];
  if (!r) {
    // After a route's own retries are spent, an outage moves on to its fallback.
    if (r.error().retryable() && index + 1 < plan_.routes.size()) {
      spdlog::info("task {}: route {} failed ({}); falling back to {}", item_.task_id,
                   route.value("name", "default"), r.error().message,
                   plan_.routes[index + 1].value("name", "default"));
      failures_.push_back({{"route", route.value("name", "default")},
                           {"error", r.error().message}});
      return CallRoute(index + 1);
    }
    return Finish(std::unexpected(r.error()));
  }
  TaskOutcome out;
  out.text = r->text;
  json versions = plan_.versions;
  if (route.contains("name")) {
    versions["routeUsed"] = {{"name", route["name"]}, {"version", route.value("version", 0)}};
  }
  out.output = {{"text", r->text},
                {"provider", route.value("provider", "")},
                {"model", r->model.empty() ? route.value("model", "") : r->model},
                {"finishReason", r->finish_reason},
                {"usage",
                 {{"promptTokens", r->usage.prompt_tokens},
                  {"completionTokens", r->usage.completion_tokens}}},
                {"latencyMs", r->latency.count()},
                {"timeToFirstTokenMs", r->time_to_first_token.count()},
                {"providerAttempts", r->attempts},
                {"control", versions}};
  if (!failures_.empty()) out.output["fallbacks"] = failures_;
  if (!r->reasoning.empty()) out.output["reasoning"] = r->reasoning;
  Finish(std::move(out));
}

void TaskRun::Finish(Result<TaskOutcome> r) {
  if (finished_) return;
  finished_ = true;
  auto done = std::move(done_);
  done(std::move(r));
}

}  // namespace synaps::worker
