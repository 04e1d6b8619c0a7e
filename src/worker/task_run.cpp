#include "worker/task_run.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>

#include "control/json_schema.h"
#include "control/routing.h"
#include "control/template.h"
#include "core/barrier.h"
#include "core/log.h"
#include "core/utf8.h"
#include "k8s/builtin_tools.h"
#include "worker/task_trace.h"

namespace synaps::worker {

using nlohmann::json;

namespace {

json RouteJson(const control::Route& r) {
  json out = {{"name", r.name},
              {"version", r.version},
              {"provider", r.provider},
              {"model", r.model},
              {"params", r.params}};
  if (!r.base_url.empty()) out["baseUrl"] = r.base_url;
  if (!r.api_key_env.empty()) out["apiKeyEnv"] = r.api_key_env;
  if (r.limits) {
    out["limits"] = {{"requestsPerMinute", r.limits->requests_per_minute},
                     {"tokensPerMinute", r.limits->tokens_per_minute}};
  }
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

// An integer setting of the stored spec (maxSteps, maxAttempts): `fallback` when absent. The API
// validates these on submit; a row written otherwise (an older release, a manual edit) may hold
// anything, and fails its task with an error that names the field.
Result<int> IntSetting(const json& spec, const char* name, int fallback) {
  auto it = spec.find(name);
  if (it == spec.end()) return fallback;
  if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 1000000) {
    return Fail(ErrorCode::kInvalidArgument,
                std::string("the task's stored spec has \"") + name +
                    "\": " + it->dump().substr(0, 64) + "; it must be an integer from 0 to 1000000",
                name);
  }
  return static_cast<int>(it->get<int64_t>());
}

// The user text: a named prompt rendered with the variables (its version recorded in
// `versions`), or the literal input.
Result<std::string> TaskText(const json& spec, const control::Snapshot* snapshot, json& versions) {
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
    if (!vars.is_object()) {
      return Fail(ErrorCode::kInvalidArgument,
                  std::string("the task's \"variables\" are a JSON ") + vars.type_name() +
                      ", not an object",
                  "variables");
    }
    ASSIGN_OR_RETURN(std::string text, control::RenderTemplate(prompt->template_text, vars));
    versions["prompt"] = {{"name", name}, {"version", prompt->version}};
    return text;
  }
  if (spec.contains("input") && spec["input"].is_object() && spec["input"].contains("text") &&
      spec["input"]["text"].is_string()) {
    return spec["input"]["text"].get<std::string>();
  }
  return Fail(ErrorCode::kInvalidArgument, "task has neither prompt nor input.text", "input.text");
}

// The conversation sent to the model after the skill's system text: the thread's earlier
// turns, the outputs of the tasks this one depends on, then this task's text.
void AddConversation(const store::ClaimedItem& item, const std::string& text,
                     std::vector<providers::ChatMessage>& messages) {
  if (item.history.is_array()) {
    for (const auto& turn : item.history) {
      if (turn.contains("input") && turn["input"].is_string()) {
        messages.push_back({.role = "user", .content = turn["input"].get<std::string>()});
      }
      if (turn.contains("output") && turn["output"].is_string()) {
        messages.push_back({.role = "assistant", .content = turn["output"].get<std::string>()});
      }
    }
  }
  for (auto it = item.upstream.begin(); it != item.upstream.end(); ++it) {
    const json& out = it.value();
    if (out.is_object() && out.contains("text") && out["text"].is_string()) {
      messages.push_back(
          {.role = "user",
           .content = "Output of task " + it.key() + ":\n" + out["text"].get<std::string>()});
    }
  }
  messages.push_back({.role = "user", .content = text});
}

// The route: named by the task, else the skill's, else the first registry match (weighted,
// stable per run), else the worker's default. Fills plan.routes (with its fallbacks) and the
// route's version.
Status ResolveRoute(const store::ClaimedItem& item, const control::Snapshot* snapshot,
                    const control::Skill* skill, const control::RouteQuery& query,
                    const json& default_route, TaskRun::Plan& plan) {
  const json& spec = item.spec;
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
      return Fail(ErrorCode::kInvalidArgument, "route '" + route_name + "' does not exist",
                  "route");
    }
  } else if (snapshot != nullptr && !snapshot->routes.empty()) {
    auto selected = control::SelectRoute(snapshot->routes, query, item.run_id);
    if (selected) route = *selected;
  }
  if (route == nullptr) {
    plan.routes.push_back(default_route);
    return Ok();
  }
  ASSIGN_OR_RETURN(auto chain, control::FallbackChain(snapshot->routes, *route));
  for (const control::Route* r : chain) plan.routes.push_back(RouteJson(*r));
  plan.versions["route"] = {{"name", route->name}, {"version", route->version}};
  return Ok();
}

// Agents: the skill's tools and those the submit names, each once, no two with the same name
// for the model. Fills plan.tools and their versions.
Status ResolveTools(const json& spec, const control::Snapshot* snapshot,
                    const control::Skill* skill, TaskRun::Plan& plan) {
  std::vector<std::string> names;
  if (skill != nullptr) names = skill->tools;
  if (spec.contains("tools") && spec["tools"].is_array()) {
    for (const auto& t : spec["tools"]) {
      if (t.is_string()) names.push_back(t.get<std::string>());
    }
  }
  json used = json::array();
  for (const auto& name : names) {
    const control::Tool* tool = snapshot ? snapshot->FindTool(name) : nullptr;
    if (tool == nullptr) {
      return Fail(ErrorCode::kInvalidArgument, "tool '" + name + "' does not exist", "tools");
    }
    if (std::find(plan.tools.begin(), plan.tools.end(), tool) != plan.tools.end()) continue;
    plan.tools.push_back(tool);
    used.push_back({{"name", name}, {"version", tool->version}});
  }
  for (size_t i = 0; i < plan.tools.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      std::string wire = k8s::BuiltinTools::WireName(plan.tools[i]->name);
      if (wire == k8s::BuiltinTools::WireName(plan.tools[j]->name)) {
        return Fail(ErrorCode::kInvalidArgument,
                    "tools '" + plan.tools[j]->name + "' and '" + plan.tools[i]->name +
                        "' have the same name for the model (" + wire + "); offer only one of them",
                    "tools");
      }
    }
  }
  if (!used.empty()) plan.versions["tools"] = used;
  return Ok();
}

}  // namespace

Result<TaskRun::Plan> TaskRun::Resolve(const store::ClaimedItem& item,
                                       const control::Snapshot* snapshot,
                                       const json& default_route) {
  if (item.invalid) return std::unexpected(*item.invalid);
  const json& spec = item.spec;
  if (!spec.is_object()) {
    return Fail(
        ErrorCode::kInvalidArgument,
        std::string("the task's stored spec is a JSON ") + spec.type_name() + ", not an object",
        "spec");
  }
  Plan plan;
  plan.versions = {{"snapshotVersion", snapshot ? snapshot->version : 0}};
  ASSIGN_OR_RETURN(plan.task_text, TaskText(spec, snapshot, plan.versions));

  // The skill's system text, and its default route.
  const control::Skill* skill = nullptr;
  std::string skill_name;
  if (spec.contains("skill") && spec["skill"].is_string()) {
    skill_name = spec["skill"].get<std::string>();
    skill = snapshot ? snapshot->FindSkill(skill_name) : nullptr;
    if (skill == nullptr) {
      return Fail(ErrorCode::kInvalidArgument, "skill '" + skill_name + "' does not exist",
                  "skill");
    }
    plan.versions["skill"] = {{"name", skill_name}, {"version", skill->version}};
    if (!skill->system.empty()) {
      plan.messages.push_back({.role = "system", .content = skill->system});
    }
  }
  AddConversation(item, plan.task_text, plan.messages);

  const control::RouteQuery query{
      .kind = item.task_kind, .skill = skill_name, .tags = Tags(spec), .tenant = item.tenant_id};
  RETURN_IF_ERROR(ResolveRoute(item, snapshot, skill, query, default_route, plan));
  plan.agent = item.task_kind == "agent";
  if (plan.agent) {
    ASSIGN_OR_RETURN(plan.max_steps, IntSetting(spec, "maxSteps", kDefaultMaxSteps));
    RETURN_IF_ERROR(ResolveTools(spec, snapshot, skill, plan));
  }

  // Arbiters over the final answer, and how many feedback rounds a retry verdict may use: the
  // attempts this task has left.
  if (snapshot != nullptr) {
    plan.arbiters = control::MatchingArbiters(*snapshot, query);
    json used = json::array();
    for (const auto* a : plan.arbiters) {
      used.push_back({{"name", a->name}, {"version", a->version}});
    }
    if (!used.empty()) plan.versions["arbiters"] = used;
  }
  ASSIGN_OR_RETURN(int max_attempts, IntSetting(spec, "maxAttempts", 3));
  plan.feedback_rounds = std::max(0, max_attempts - item.attempt);
  return plan;
}

namespace {

// Tool results kept in the ledger are cut at this size (the model gets them whole).
constexpr size_t kLedgerResultBytes = 16 * 1024;
// Tool arguments a model may write: larger or deeper ones are answered with an error.
constexpr size_t kMaxArgumentBytes = 256 * 1024;
constexpr int kMaxArgumentDepth = 32;

// Route params that configure Synaps, not the provider: never sent to a remote model.
json ProviderParams(const json& route) {
  json params =
      route.contains("params") && route["params"].is_object() ? route["params"] : json::object();
  params.erase("pricing");
  if (route.value("provider", "") != "local") params.erase("script");
  return params;
}

json LedgerCopy(const std::string& text) {
  if (text.size() <= kLedgerResultBytes) {
    json parsed = json::parse(text, nullptr, false);
    if (!parsed.is_discarded()) return parsed;
    return text;
  }
  return {{"truncated", true},
          {"bytes", text.size()},
          {"head", std::string(Utf8Prefix(text, kLedgerResultBytes))}};
}

json ErrorJson(const Error& e) {
  json err = {{"code", std::string(ErrorCodeName(e.code))}, {"message", e.message}};
  if (!e.field.empty()) err["field"] = e.field;
  return err;
}

}  // namespace

TaskRun::TaskRun(store::ClaimedItem item, std::shared_ptr<const control::Snapshot> snapshot,
                 TaskRunEnv env, OnDelta on_delta, OnEvent on_event, Done done)
    : item_(std::move(item)),
      snapshot_(std::move(snapshot)),
      env_(std::move(env)),
      on_delta_(std::move(on_delta)),
      on_event_(std::move(on_event)),
      done_(std::move(done)),
      alive_(std::make_shared<bool>(true)) {
  // This attempt is a child span of the submit request's span (stored in the spec by the API).
  if (auto parent = TraceOfSpec(item_.spec)) {
    trace_ = parent->Child();
    if (env_.tracer != nullptr && trace_->sampled) {
      attempt_span_ = otel::StartSpan(*trace_, parent->span_id, "synaps.task " + item_.task_kind,
                                      otel::SpanKind::kInternal);
      attempt_span_->attributes = {{"synaps.task.id", item_.task_id},
                                   {"synaps.task.name", item_.task_name},
                                   {"synaps.run.id", item_.run_id},
                                   {"synaps.tenant", item_.tenant_id},
                                   {"synaps.task.attempt", item_.attempt}};
    }
  }
}

// Model and tool calls are children of the attempt's span. Returns the call's span when spans
// are exported.
std::optional<otel::Span> TaskRun::TraceCall(providers::ChatRequest& req, const json& route) const {
  if (!trace_) return std::nullopt;
  TraceContext span = trace_->Child();
  req.traceparent = span.Traceparent();
  req.tracestate = span.tracestate;
  if (!attempt_span_) return std::nullopt;
  // OpenTelemetry GenAI semantic conventions: "{operation} {model}", kind client.
  otel::Span s =
      otel::StartSpan(span, trace_->span_id, "chat " + req.model, otel::SpanKind::kClient);
  s.attributes = {{"gen_ai.operation.name", "chat"},
                  {"gen_ai.system", route.value("provider", "")},
                  {"gen_ai.request.model", req.model}};
  if (route.contains("name") && route["name"].is_string()) {
    s.attributes.emplace_back("synaps.route", route["name"]);
  }
  return s;
}

void TaskRun::EndCall(std::optional<otel::Span> span, const json& route,
                      std::chrono::steady_clock::time_point started,
                      const Result<providers::ChatResponse>& r) const {
  if (env_.provider_stats != nullptr) {
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
    env_.provider_stats->RecordCall(route.value("provider", ""), route.value("model", ""),
                                    took.count(),
                                    r ? std::string_view("ok") : ErrorCodeName(r.error().code));
  }
  if (!span || env_.tracer == nullptr) return;
  span->end_unix_nano = otel::NowUnixNano();
  if (r) {
    span->attributes.emplace_back("gen_ai.response.model", r->model);
    span->attributes.emplace_back("gen_ai.usage.input_tokens", r->usage.prompt_tokens);
    span->attributes.emplace_back("gen_ai.usage.output_tokens", r->usage.completion_tokens);
    if (!r->finish_reason.empty()) {
      span->attributes.emplace_back("gen_ai.response.finish_reasons",
                                    json::array({r->finish_reason}));
    }
    if (!r->id.empty()) span->attributes.emplace_back("gen_ai.response.id", r->id);
    if (r->time_to_first_token.count() > 0) {
      span->attributes.emplace_back("synaps.time_to_first_token_ms",
                                    r->time_to_first_token.count());
    }
    span->attributes.emplace_back("synaps.provider_attempts", r->attempts);
  } else {
    span->error = true;
    span->status_message = r.error().message;
  }
  env_.tracer->Export(std::move(*span));
}

TaskRun::~TaskRun() { *alive_ = false; }

void TaskRun::Start() {
  Barrier("start", [&] {
    if (cancel_requested_) return Finish(Fail(ErrorCode::kCancelled, "task cancelled"));
    auto plan = Resolve(item_, snapshot_.get(), env_.default_route);
    if (!plan) return Finish(std::unexpected(plan.error()));
    plan_ = std::move(*plan);
    messages_ = plan_.messages;
    CallModel();
  });
}

void TaskRun::Barrier(const char* step, const std::function<void()>& fn) {
  LogTraceScope log_trace(trace_ ? trace_->trace_id : std::string());
  Status s = Guarded("task " + item_.task_id + ": " + step, fn);
  if (s) return;
  // Whatever is still on its way to this run is dropped (every handler checks the flag).
  cancel_requested_ = true;
  if (call_) call_->Cancel();
  Finish(std::unexpected(s.error()));
}

void TaskRun::Cancel() {
  // Never finishes synchronously: callers may be iterating over their tasks.
  if (finished_ || cancel_requested_) return;
  cancel_requested_ = true;  // every handler checks it: an answer already on its way is dropped
  if (call_) {
    call_->Cancel();  // the provider reports kCancelled to the answer handler, posted
  } else {
    // Not started (Start() reports it), or waiting for tools: report it from the loop.
    PostCancelled();
  }
}

void TaskRun::ShareRetryAfter(providers::ChatRequest& req, const json& route) {
  if (env_.rate_gate == nullptr || !route.contains("limits") || !route.contains("name")) return;
  req.on_retry_after = [gate = env_.rate_gate, name = route["name"].get<std::string>()](
                           std::chrono::milliseconds wait) { gate->Block(name, wait); };
  std::weak_ptr<bool> alive = alive_;
  req.before_retry = [this, alive, route](std::function<void()> send) {
    if (auto a = alive.lock(); !a || !*a) return;
    SlotForRetry(route, std::move(send));
  };
}

void TaskRun::SlotForRetry(const json& route, std::function<void()> send) {
  // A request slot only: the failed attempt used no tokens, and the call's estimate was charged
  // once (SettleTokens corrects it with the tokens used).
  store::RateAsk ask = RateAskFor(route, /*tokens=*/0);
  std::weak_ptr<bool> alive = alive_;
  env_.rate_gate->Acquire(
      ask, [this, alive, send = std::move(send)](Result<store::RateAdmission> r) mutable {
        if (auto a = alive.lock(); !a || !*a) return;
        if (finished_ || cancel_requested_) return;  // the call's own cancellation reports it
        if (!r) spdlog::warn("a retry goes out without a rate-limit slot: {}", r.error().message);
        if (!r || r->wait_ms <= 0) return send();
        rate_wait_ = std::make_unique<boost::asio::steady_timer>(env_.executor);
        rate_wait_->expires_after(std::chrono::milliseconds(r->wait_ms));
        rate_wait_->async_wait(
            [this, alive, send = std::move(send)](const boost::system::error_code& ec) {
              if (auto a = alive.lock(); !a || !*a) return;
              if (ec || finished_ || cancel_requested_) return;
              send();
            });
      });
}

void TaskRun::SettleTokens(const json& route, int64_t used) {
  if (env_.rate_gate == nullptr || !route.contains("limits") || !route.contains("name")) return;
  int64_t tpm = route["limits"].value("tokensPerMinute", int64_t{0});
  if (tpm <= 0 || used <= 0 || used == charged_tokens_) return;
  env_.rate_gate->Settle(route["name"].get<std::string>(), tpm, used - charged_tokens_);
}

void TaskRun::PostCancelled() {
  std::weak_ptr<bool> alive = alive_;
  boost::asio::post(env_.executor, [this, alive] {
    if (auto a = alive.lock(); !a || !*a) return;
    Finish(Fail(ErrorCode::kCancelled, "task cancelled"));
  });
}

namespace {

// Tokens a call will use, guessed before it is made (the limiter charges them up front and
// corrects with the provider's count afterwards): ~4 characters per token of what is sent, plus
// the most the answer may use when the route says (max_tokens, max_completion_tokens).
int64_t EstimateTokens(const std::vector<providers::ChatMessage>& messages, const json& route) {
  size_t chars = 0;
  for (const auto& m : messages) {
    chars += m.content.size();
    for (const auto& c : m.tool_calls) chars += c.name.size() + c.arguments.size();
  }
  int64_t tokens = static_cast<int64_t>(chars / 4) + 1;
  const json params = route.value("params", json::object());
  for (const char* k : {"max_tokens", "max_completion_tokens"}) {
    if (params.is_object() && params.contains(k) && params[k].is_number_integer()) {
      tokens += std::max<int64_t>(params[k].get<int64_t>(), 0);
      break;
    }
  }
  return tokens;
}

}  // namespace

store::RateAsk TaskRun::RateAskFor(const json& route, int64_t tokens) const {
  const json& limits = route["limits"];
  return store::RateAsk{.route = route["name"].get<std::string>(),
                        .tenant = item_.tenant_id,
                        .requests_per_minute = limits.value("requestsPerMinute", int64_t{0}),
                        .tokens_per_minute = limits.value("tokensPerMinute", int64_t{0}),
                        .tokens = tokens,
                        .lease = std::nullopt,
                        .park_after_ms = env_.rate_park_after_ms};
}

void TaskRun::AfterRateSlot(const json& route, int64_t tokens, bool may_park,
                            std::function<void()> call) {
  if (!route.contains("limits") || env_.rate_gate == nullptr || !route.contains("name")) {
    return call();
  }
  store::RateAsk ask = RateAskFor(route, tokens);
  if (may_park) ask.lease = store::LeaseRef{item_.item_id, item_.lease_epoch};
  std::weak_ptr<bool> alive = alive_;
  env_.rate_gate->Acquire(ask, [this, alive,
                                call = std::move(call)](Result<store::RateAdmission> r) mutable {
    if (auto a = alive.lock(); !a || !*a) return;
    if (finished_) return;
    if (cancel_requested_) return Finish(Fail(ErrorCode::kCancelled, "task cancelled"));
    Barrier("rate limit", [&] {
      if (!r) {
        return Finish(Fail(ErrorCode::kUnavailable,
                           "the route's rate limiter could not be asked: " + r.error().message));
      }
      if (r->parked) {
        TaskOutcome out;
        out.released = true;
        return Finish(std::move(out));
      }
      if (r->wait_ms <= 0) return call();
      rate_wait_ = std::make_unique<boost::asio::steady_timer>(env_.executor);
      rate_wait_->expires_after(std::chrono::milliseconds(r->wait_ms));
      rate_wait_->async_wait(
          [this, alive, call = std::move(call)](const boost::system::error_code& ec) {
            if (auto a = alive.lock(); !a || !*a) return;
            if (ec || finished_) return;
            if (cancel_requested_) return Finish(Fail(ErrorCode::kCancelled, "task cancelled"));
            Barrier("rate limit wait", [&] { call(); });
          });
    });
  });
}

void TaskRun::CallModel() {
  const json& route = plan_.routes[route_index_];
  charged_tokens_ = EstimateTokens(messages_, route);
  // Only the first call may send the task back to the queue: later ones would throw away the
  // agent's steps or a fallback's progress.
  const bool first_call = steps_ == 0 && feedback_used_ == 0 && route_index_ == 0;
  AfterRateSlot(route, charged_tokens_, first_call, [this] { StartModelCall(); });
}

void TaskRun::StartModelCall() {
  const json& route = plan_.routes[route_index_];
  auto spec = providers::ProviderSpecFromJson(route);
  if (!spec) return Finish(std::unexpected(spec.error()));
  auto provider = env_.providers->Get(*spec);
  if (!provider) return Finish(std::unexpected(provider.error()));
  providers::ChatRequest req;
  req.model = route.value("model", "");
  req.params = ProviderParams(route);
  req.messages = messages_;
  std::optional<otel::Span> span = TraceCall(req, route);
  const auto started = std::chrono::steady_clock::now();
  // An answer that arbiters still have to pass is not streamed to the ledger: a held or refused
  // answer must not be readable before the verdict.
  if (plan_.arbiters.empty()) req.on_delta = on_delta_;
  ShareRetryAfter(req, route);
  for (const control::Tool* t : plan_.tools) {
    req.tools.push_back({.name = k8s::BuiltinTools::WireName(t->name),
                         .description = t->description,
                         .parameters = t->parameters});
  }
  std::weak_ptr<bool> alive = alive_;
  call_ = (*provider)->Start(req, [this, alive, span = std::move(span), index = route_index_,
                                   started](Result<providers::ChatResponse> r) mutable {
    if (auto a = alive.lock(); !a || !*a) return;
    auto call = std::move(call_);  // keeps the handle alive while the answer is handled
    EndCall(std::move(span), plan_.routes[index], started, r);
    Barrier("model answer", [&] { OnModelAnswer(std::move(r)); });
  });
}

void TaskRun::OnModelAnswer(Result<providers::ChatResponse> r) {
  if (cancel_requested_) return Finish(Fail(ErrorCode::kCancelled, "task cancelled"));
  const json& route = plan_.routes[route_index_];
  if (!r) {
    // After a route's own retries are spent, an outage moves on to its fallback.
    if (r.error().retryable() && route_index_ + 1 < plan_.routes.size()) {
      spdlog::info("task {}: route {} failed ({}); falling back to {}", item_.task_id,
                   route.value("name", "default"), r.error().message,
                   plan_.routes[route_index_ + 1].value("name", "default"));
      failures_.push_back(
          {{"route", route.value("name", "default")}, {"error", r.error().message}});
      ++route_index_;
      return CallModel();
    }
    return Finish(std::unexpected(r.error()));
  }
  SettleTokens(route, r->usage.prompt_tokens + r->usage.completion_tokens);
  ++steps_;
  usage_.prompt_tokens += r->usage.prompt_tokens;
  usage_.completion_tokens += r->usage.completion_tokens;
  latency_ms_ += r->latency.count();
  if (ttft_ms_ < 0) ttft_ms_ = r->time_to_first_token.count();
  provider_attempts_ += r->attempts;
  route_used_ = route;
  last_ = std::move(*r);

  if (plan_.agent && !last_.tool_calls.empty()) {
    if (steps_ >= plan_.max_steps) {
      return Finish(Fail(ErrorCode::kResourceExhausted,
                         "the agent reached maxSteps (" + std::to_string(plan_.max_steps) +
                             " model calls) without a final answer",
                         "maxSteps"));
    }
    messages_.push_back(
        {.role = "assistant", .content = last_.text, .tool_calls = last_.tool_calls});
    return RunTools(last_.tool_calls);
  }
  StartArbiters();
}

void TaskRun::RunTools(std::vector<providers::ToolCall> calls) {
  pending_calls_ = std::move(calls);
  tool_results_.assign(pending_calls_.size(), std::string());
  tools_outstanding_ = pending_calls_.size();
  // Calls of one step run concurrently; their results go back to the model in call order.
  for (size_t i = 0; i < pending_calls_.size(); ++i) {
    const providers::ToolCall& call = pending_calls_[i];
    ++tool_calls_;
    const control::Tool* tool = nullptr;
    for (const control::Tool* t : plan_.tools) {
      if (k8s::BuiltinTools::WireName(t->name) == call.name || t->name == call.name) tool = t;
    }
    // Some servers send "" for a call without arguments.
    const std::string& text = call.arguments.empty() ? std::string("{}") : call.arguments;
    const bool oversized =
        text.size() > kMaxArgumentBytes || JsonTextDepth(text) > kMaxArgumentDepth;
    json args = oversized ? json(json::value_t::discarded) : json::parse(text, nullptr, false);
    json called = {{"callId", call.id}, {"step", steps_}, {"tool", tool ? tool->name : call.name}};
    if (tool != nullptr) called["version"] = tool->version;
    called["arguments"] =
        args.is_discarded() ? LedgerCopy(std::string(Utf8Prefix(text, kLedgerResultBytes))) : args;
    Emit("tool.called", called);

    ToolRunner::Done finish_one = ToolCallFinisher(i, tool ? tool->name : call.name);
    if (Status usable = CheckToolCall(call, tool, oversized, args); !usable) {
      boost::asio::post(env_.executor, [finish_one, e = usable.error()]() mutable {
        finish_one(std::unexpected(e));
      });
      continue;
    }
    InvokeTool(*tool, args, std::move(finish_one));
  }
}

Status TaskRun::CheckToolCall(const providers::ToolCall& call, const control::Tool* tool,
                              bool oversized, const json& args) const {
  if (tool == nullptr) {
    return Fail(ErrorCode::kNotFound, "no tool named '" + call.name + "' is offered");
  }
  if (oversized) {
    return Fail(ErrorCode::kInvalidArgument,
                "the arguments are larger than 256 KiB or nested deeper than 32 levels",
                "arguments");
  }
  if (args.is_discarded()) {
    return Fail(ErrorCode::kInvalidArgument, "the arguments are not valid JSON", "arguments");
  }
  if (Status s = control::ValidateJson(args, tool->parameters); !s) {
    return Fail(ErrorCode::kInvalidArgument,
                "the arguments do not match the tool's parameters: " + s.error().message,
                "arguments" + s.error().field.substr(1));
  }
  if (env_.tools == nullptr) return Fail(ErrorCode::kUnavailable, "this worker runs no tools");
  return Ok();
}

ToolRunner::Done TaskRun::ToolCallFinisher(size_t i, std::string tool_name) {
  return [this, i, alive = std::weak_ptr<bool>(alive_), started = std::chrono::steady_clock::now(),
          name = std::move(tool_name)](Result<json> r) {
    if (auto a = alive.lock(); !a || !*a) return;
    if (finished_ || cancel_requested_) return;  // a cancel reports itself (PostCancelled)
    Barrier("tool result", [&] {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - started)
                    .count();
      json event = {{"callId", pending_calls_[i].id},
                    {"tool", name},
                    {"ok", r.has_value()},
                    {"durationMs", ms}};
      std::string content;
      if (r) {
        content = r->is_string() ? r->get<std::string>() : r->dump();
        event["result"] = LedgerCopy(content);
      } else {
        json err = ErrorJson(r.error());
        content = json{{"error", err}}.dump();
        event["error"] = err;
      }
      Emit("tool.result", event);
      tool_results_[i] = std::move(content);
      if (--tools_outstanding_ == 0) OnToolsDone();
    });
  };
}

void TaskRun::InvokeTool(const control::Tool& tool, const json& args, ToolRunner::Done done) {
  if (!trace_) {
    env_.tools->Invoke(tool, args, std::move(done));
    return;
  }
  TraceContext span_ctx = trace_->Child();
  if (!attempt_span_ || env_.tracer == nullptr) {
    env_.tools->InvokeTraced(tool, args, span_ctx, std::move(done));
    return;
  }
  otel::Span span = otel::StartSpan(span_ctx, trace_->span_id, "execute_tool " + tool.name,
                                    otel::SpanKind::kInternal);
  span.attributes = {{"gen_ai.operation.name", "execute_tool"}, {"gen_ai.tool.name", tool.name}};
  env_.tools->InvokeTraced(tool, args, span_ctx,
                           [done = std::move(done), span = std::move(span), tracer = env_.tracer,
                            alive = std::weak_ptr<bool>(alive_)](Result<json> r) mutable {
                             span.end_unix_nano = otel::NowUnixNano();
                             if (!r) {
                               span.error = true;
                               span.status_message = r.error().message;
                             }
                             if (auto a = alive.lock(); a && *a) tracer->Export(std::move(span));
                             done(std::move(r));
                           });
}

void TaskRun::OnToolsDone() {
  if (cancel_requested_) return;  // PostCancelled reports it
  for (size_t i = 0; i < pending_calls_.size(); ++i) {
    messages_.push_back({.role = "tool",
                         .content = std::move(tool_results_[i]),
                         .tool_call_id = pending_calls_[i].id});
  }
  pending_calls_.clear();
  tool_results_.clear();
  CallModel();
}

void TaskRun::StartArbiters() {
  verdicts_.clear();
  judges_.clear();
  next_judge_ = 0;
  if (plan_.arbiters.empty()) return Succeed(false);
  arbiters_started_ns_ = otel::NowUnixNano();
  AnswerFacts facts{.text = last_.text,
                    .prompt_tokens = usage_.prompt_tokens,
                    .completion_tokens = usage_.completion_tokens,
                    .steps = steps_,
                    .cost_usd = CostUsd(route_used_.value("params", json::object()),
                                        usage_.prompt_tokens, usage_.completion_tokens)};
  for (const control::Arbiter* a : plan_.arbiters) {
    ArbiterVerdict v{.arbiter = a->name, .version = a->version, .on_fail = a->on_fail};
    for (size_t c = 0; c < a->checks.size(); ++c) {
      const control::ArbiterCheck& check = a->checks[c];
      if (check.type == control::CheckType::kJudge) {
        judges_.push_back({verdicts_.size(), c, &check});
        v.checks.push_back({.type = check.type});
      } else {
        v.checks.push_back(EvaluateCheck(check, facts));
      }
    }
    verdicts_.push_back(std::move(v));
  }
  NextJudge();
}

void TaskRun::NextJudge() {
  if (next_judge_ == judges_.size()) return Decide();
  const JudgeSlot& slot = judges_[next_judge_];
  auto record = [this](const CheckVerdict& v) {
    const JudgeSlot& s = judges_[next_judge_];
    verdicts_[s.verdict].checks[s.check] = v;
    ++next_judge_;
  };
  const control::Route* route = snapshot_->FindRoute(slot.spec->route);
  if (route == nullptr) {
    record(JudgeVerdict(
        *slot.spec, Fail(ErrorCode::kNotFound, "route '" + slot.spec->route + "' does not exist")));
    return NextJudge();
  }
  json route_json = RouteJson(*route);
  auto spec = providers::ProviderSpecFromJson(route_json);
  auto provider = spec ? env_.providers->Get(*spec)
                       : Result<providers::Provider*>(std::unexpected(spec.error()));
  if (!provider) {
    record(JudgeVerdict(*slot.spec, std::unexpected(provider.error())));
    return NextJudge();
  }
  providers::ChatRequest req;
  req.model = route->model;
  req.params = ProviderParams(route_json);
  req.messages = JudgeRequest(*slot.spec, plan_.task_text, last_.text);
  req.stream = false;
  ShareRetryAfter(req, route_json);
  const int64_t tokens = EstimateTokens(req.messages, route_json);
  // A judge's route may have limits of its own: its call waits for a slot in place.
  auto start = [this, provider = *provider, req = std::move(req), route_json, record]() mutable {
    std::optional<otel::Span> span = TraceCall(req, route_json);
    if (span) span->attributes.emplace_back("synaps.call", "arbiter judge");
    const auto started = std::chrono::steady_clock::now();
    std::weak_ptr<bool> alive = alive_;
    call_ = provider->Start(req, [this, alive, record, span = std::move(span), route_json,
                                  started](Result<providers::ChatResponse> r) mutable {
      if (auto a = alive.lock(); !a || !*a) return;
      auto call = std::move(call_);  // keeps the handle (and this handler) alive until we return
      EndCall(std::move(span), route_json, started, r);
      if (cancel_requested_) return Finish(Fail(ErrorCode::kCancelled, "task cancelled"));
      Barrier("judge answer", [&] {
        record(JudgeVerdict(*judges_[next_judge_].spec, r));
        NextJudge();
      });
    });
  };
  AfterRateSlot(route_json, tokens, /*may_park=*/false, std::move(start));
}

void TaskRun::Decide() {
  Decision decision = worker::Decide(verdicts_);
  for (const auto& v : verdicts_) {
    json j = v.ToJson();
    j["round"] = feedback_used_;
    Emit("arbiter.verdict", j);
  }
  ExportArbiterSpans(decision);
  switch (decision) {
    case Decision::kPass:
      return Succeed(false);
    case Decision::kHold:
      return Succeed(true);
    case Decision::kRetry:
      if (feedback_used_ < plan_.feedback_rounds) {
        ++feedback_used_;
        messages_.push_back({.role = "assistant", .content = last_.text});
        messages_.push_back({.role = "user", .content = FeedbackMessage(verdicts_)});
        return CallModel();
      }
      break;
    case Decision::kFail:
      break;
  }
  std::string why;
  for (const auto& v : verdicts_) {
    for (const auto& c : v.checks) {
      if (c.passed || c.type == control::CheckType::kApproval) continue;
      why += (why.empty() ? "" : "; ") + v.arbiter + " (" +
             std::string(control::CheckTypeName(c.type)) + "): " + c.reason;
    }
  }
  std::string message = "the answer was refused by arbiters: " + why;
  if (decision == Decision::kRetry) {
    message += " (after " + std::to_string(feedback_used_) + " retries with feedback)";
  }
  Finish(Fail(ErrorCode::kInvalidArgument, message, "arbiters"));
}

void TaskRun::ExportArbiterSpans(Decision decision) const {
  if (!attempt_span_ || env_.tracer == nullptr) return;
  const int64_t now = otel::NowUnixNano();
  for (const auto& v : verdicts_) {
    otel::Span span = otel::StartSpan(trace_->Child(), trace_->span_id, "arbiter " + v.arbiter,
                                      otel::SpanKind::kInternal);
    span.start_unix_nano = arbiters_started_ns_;
    span.end_unix_nano = now;
    static constexpr const char* kDecisions[] = {"pass", "retry", "hold", "fail"};
    span.attributes = {{"synaps.arbiter.name", v.arbiter},
                       {"synaps.arbiter.version", v.version},
                       {"synaps.arbiter.passed", v.passed()},
                       {"synaps.arbiter.checks", static_cast<int64_t>(v.checks.size())},
                       {"synaps.arbiter.round", feedback_used_},
                       {"synaps.arbiter.decision", kDecisions[static_cast<int>(decision)]}};
    env_.tracer->Export(std::move(span));
  }
}

void TaskRun::Succeed(bool hold) {
  const json& route = route_used_;
  TaskOutcome out;
  out.text = last_.text;
  out.hold = hold;
  json versions = plan_.versions;
  if (route.contains("name")) {
    versions["routeUsed"] = {{"name", route["name"]}, {"version", route.value("version", 0)}};
  }
  out.output = {
      {"text", last_.text},
      {"provider", route.value("provider", "")},
      {"model", last_.model.empty() ? route.value("model", "") : last_.model},
      {"finishReason", last_.finish_reason},
      {"usage",
       {{"promptTokens", usage_.prompt_tokens}, {"completionTokens", usage_.completion_tokens}}},
      {"latencyMs", latency_ms_},
      {"timeToFirstTokenMs", std::max<int64_t>(ttft_ms_, 0)},
      {"providerAttempts", provider_attempts_},
      {"control", versions}};
  if (plan_.agent) {
    out.output["steps"] = steps_;
    out.output["toolCalls"] = tool_calls_;
  }
  if (auto cost = CostUsd(route.value("params", json::object()), usage_.prompt_tokens,
                          usage_.completion_tokens)) {
    out.output["costUsd"] = *cost;
  }
  if (!verdicts_.empty()) {
    json all = json::array();
    for (const auto& v : verdicts_) all.push_back(v.ToJson());
    out.output["arbiters"] = all;
    out.output["feedbackRounds"] = feedback_used_;
  }
  if (!failures_.empty()) out.output["fallbacks"] = failures_;
  if (!last_.reasoning.empty()) out.output["reasoning"] = last_.reasoning;
  // What the model said may hold NUL or invalid UTF-8, which jsonb refuses.
  out.output = StorableJson(out.output);
  Finish(std::move(out));
}

void TaskRun::Emit(const char* type, const json& data) {
  if (finished_) return;
  on_event_(type, StorableJson(data));
}

void TaskRun::Finish(Result<TaskOutcome> r) {
  if (finished_) return;
  finished_ = true;
  if (attempt_span_ && env_.tracer != nullptr) {
    attempt_span_->end_unix_nano = otel::NowUnixNano();
    if (!r) {
      attempt_span_->error = true;
      attempt_span_->status_message = r.error().message;
    } else if (r->hold) {
      attempt_span_->attributes.emplace_back("synaps.held_for_approval", true);
    }
    env_.tracer->Export(std::move(*attempt_span_));
    attempt_span_.reset();
  }
  auto done = std::move(done_);
  done(std::move(r));
}

}  // namespace synaps::worker
