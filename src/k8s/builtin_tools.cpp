#include "k8s/builtin_tools.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cmath>
#include <limits>

namespace synaps::k8s {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

constexpr size_t kMaxSelectorChars = 256;

json Parameters(const char* label_example, const char* field_example) {
  return {
      {"type", "object"},
      {"properties",
       {{"limit",
         {{"type", "integer"},
          {"minimum", 1},
          {"maximum", 100},
          {"description", "The most items to return (default 20)."}}},
        {"labelSelector",
         {{"type", "string"},
          {"maxLength", kMaxSelectorChars},
          {"description", std::string("Kubernetes label selector, e.g. ") + label_example}}},
        {"fieldSelector",
         {{"type", "string"},
          {"maxLength", kMaxSelectorChars},
          {"description", std::string("Kubernetes field selector, e.g. ") + field_example}}}}},
      {"additionalProperties", false},
  };
}

// Characters of the label and field selector grammars: keys (prefix/name), values, the
// operators = == != and the set forms "in (a,b)", "notin (a)", "!key".
bool SelectorChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_' || c == '/' || c == '=' || c == '!' || c == ',' || c == '(' ||
         c == ')' || c == ' ' || c == ':';
}

// A value as quoted in an error message: its JSON text, cut short.
std::string Shown(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  return text.size() <= 60 ? text : text.substr(0, 60) + "...";
}

// An integer, also when written as 20.0 (as models sometimes do); nullopt for anything else.
// Values beyond the int64 range come back as INT64_MAX, which every range check refuses.
std::optional<int64_t> IntegerValue(const json& value) {
  constexpr auto kMax = std::numeric_limits<int64_t>::max();
  if (value.is_number_unsigned()) {
    auto u = value.get<uint64_t>();
    return u > static_cast<uint64_t>(kMax) ? kMax : static_cast<int64_t>(u);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (!std::isfinite(d) || std::trunc(d) != d) return std::nullopt;
    if (std::fabs(d) >= 9.0e18) return kMax;
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

struct ToolArguments {
  int limit = 0;
  std::string label_selector;
  std::string field_selector;
};

Result<ToolArguments> ParseArguments(const std::string& tool, const json& arguments,
                                     const BuiltinToolsOptions& options,
                                     const std::string& namespace_name) {
  ToolArguments out;
  out.limit = options.default_limit;
  if (arguments.is_null()) return out;
  if (!arguments.is_object()) {
    return Fail(ErrorCode::kInvalidArgument,
                tool + ": the arguments must be a JSON object, not " + Shown(arguments),
                "arguments");
  }
  for (const auto& [key, value] : arguments.items()) {
    std::string field = "arguments." + key;
    if (key == "limit") {
      auto n = IntegerValue(value);
      if (!n || *n < 1 || *n > options.max_limit) {
        return Fail(ErrorCode::kInvalidArgument,
                    tool + ": limit must be an integer from 1 to " +
                        std::to_string(options.max_limit) + ", not " + Shown(value),
                    field);
      }
      out.limit = static_cast<int>(*n);
    } else if (key == "labelSelector" || key == "fieldSelector") {
      if (value.is_null()) continue;
      if (!value.is_string()) {
        return Fail(ErrorCode::kInvalidArgument,
                    tool + ": " + key + " must be a string, not " + Shown(value), field);
      }
      std::string selector = value.get<std::string>();
      if (selector.size() > kMaxSelectorChars) {
        return Fail(ErrorCode::kInvalidArgument,
                    tool + ": " + key + " is longer than " + std::to_string(kMaxSelectorChars) +
                        " characters",
                    field);
      }
      for (char c : selector) {
        if (!SelectorChar(c)) {
          std::string shown = (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
                                  ? "a control character"
                                  : "'" + std::string(1, c) + "'";
          return Fail(ErrorCode::kInvalidArgument,
                      tool + ": " + key + " contains " + shown +
                          ", which a Kubernetes selector cannot contain (write it like "
                          "app=web,tier!=db or status.phase=Running)",
                      field);
        }
      }
      (key == "labelSelector" ? out.label_selector : out.field_selector) = std::move(selector);
    } else if (key == "namespace") {
      return Fail(ErrorCode::kInvalidArgument,
                  tool +
                      ": there is no namespace argument: the tool reads only the worker's "
                      "own namespace" +
                      (namespace_name.empty() ? std::string() : " (" + namespace_name + ")"),
                  field);
    } else {
      return Fail(ErrorCode::kInvalidArgument,
                  tool + ": unknown argument '" + key +
                      "'; the arguments are limit, labelSelector and fieldSelector",
                  field);
    }
  }
  return out;
}

}  // namespace

BuiltinTools::BuiltinTools(asio::any_io_executor executor, std::unique_ptr<KubeClient> client,
                           BuiltinToolsOptions options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      alive_(std::make_shared<char>()),
      client_(std::move(client)) {
  if (!client_) {
    unavailable_ = Error{ErrorCode::kNotFound, "the Kubernetes tools have no client", {}};
  }
}

BuiltinTools::BuiltinTools(asio::any_io_executor executor, Error unavailable,
                           BuiltinToolsOptions options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      unavailable_(std::move(unavailable)),
      alive_(std::make_shared<char>()) {}

BuiltinTools::~BuiltinTools() = default;

std::unique_ptr<BuiltinTools> BuiltinTools::FromEnvironment(asio::any_io_executor executor) {
  KubeClientOptions options = KubeClientOptionsFromEnv();
  auto config = LoadInClusterConfig();
  if (!config) {
    spdlog::info("Kubernetes tools unavailable: {}", config.error().message);
    return std::make_unique<BuiltinTools>(std::move(executor), config.error());
  }
  spdlog::info("Kubernetes tools: API server {}, namespace {}", config->server,
               config->namespace_name);
  auto client = std::make_unique<KubeClient>(executor, std::move(*config), options);
  return std::make_unique<BuiltinTools>(std::move(executor), std::move(client));
}

const std::vector<providers::ToolDefinition>& BuiltinTools::Definitions() {
  static const std::vector<providers::ToolDefinition> kDefinitions = {
      {WireName(kPods),
       "List the pods in this worker's Kubernetes namespace (read-only). For each pod: status "
       "as kubectl shows it (Running, CrashLoopBackOff, Pending, ...), phase, ready "
       "containers, restarts, node, age, and per container the image, state and last "
       "termination (e.g. OOMKilled). Narrow it with labelSelector or fieldSelector.",
       Parameters("app=web,tier!=db", "status.phase!=Running or spec.nodeName=node-1")},
      {WireName(kEvents),
       "List recent events in this worker's Kubernetes namespace (read-only), newest first: "
       "type (Normal or Warning), reason, object (e.g. Pod/web-1), message, count and when it "
       "last happened. Narrow it with fieldSelector.",
       Parameters("app=web", "type=Warning or involvedObject.name=web-1")},
  };
  return kDefinitions;
}

const std::vector<std::string>& BuiltinTools::Names() {
  static const std::vector<std::string> kNames = {std::string(kPods), std::string(kEvents)};
  return kNames;
}

std::optional<std::string> BuiltinTools::CanonicalName(std::string_view name) {
  for (const auto& canonical : Names()) {
    if (name == canonical || name == WireName(canonical)) return canonical;
  }
  return std::nullopt;
}

std::string BuiltinTools::WireName(std::string_view name) {
  std::string out(name.substr(0, 64));
  for (char& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) c = '_';
  }
  if (out.empty()) out = "_";
  return out;
}

json BuiltinTools::ErrorResult(const Error& error) {
  json e = {{"code", ErrorCodeName(error.code)}, {"message", error.message}};
  if (!error.field.empty()) e["field"] = error.field;
  return {{"error", std::move(e)}};
}

void BuiltinTools::Reply(Done done, Result<json> result) {
  asio::post(executor_, [alive = std::weak_ptr<char>(alive_), done = std::move(done),
                         result = std::move(result)]() mutable {
    if (alive.expired()) return;
    done(std::move(result));
  });
}

void BuiltinTools::InvokeText(std::string_view name, std::string_view arguments, Done done) {
  if (arguments.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    Invoke(name, json::object(), std::move(done));
    return;
  }
  json parsed = json::parse(arguments, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    std::string shown(arguments.substr(0, 200));
    Reply(std::move(done),
          Fail(ErrorCode::kInvalidArgument,
               std::string(name) + ": the arguments are not valid JSON: " + shown, "arguments"));
    return;
  }
  Invoke(name, parsed, std::move(done));
}

void BuiltinTools::Invoke(std::string_view name, const json& arguments, Done done) {
  auto canonical = CanonicalName(name);
  if (!canonical) {
    Reply(std::move(done), Fail(ErrorCode::kNotFound,
                                "no builtin tool '" + std::string(name) +
                                    "'; the builtin tools are k8s.pods and k8s.events",
                                "name"));
    return;
  }
  std::string namespace_name = client_ ? client_->namespace_name() : std::string();
  auto args = ParseArguments(*canonical, arguments, options_, namespace_name);
  if (!args) {
    Reply(std::move(done), std::unexpected(args.error()));
    return;
  }
  if (!client_) {
    Error e = *unavailable_;
    e.message = *canonical + ": " + e.message;
    Reply(std::move(done), std::unexpected(std::move(e)));
    return;
  }
  ListQuery query{args->limit, args->label_selector, args->field_selector};
  // The client's callbacks never run after it (and so this object) is destroyed.
  if (*canonical == kPods) {
    client_->ListPods(query, [this, done = std::move(done)](Result<json> list) {
      if (!list) return done(std::unexpected(list.error()));
      done(SummarizePods(*list, client_->namespace_name(), options_.now(), options_.summary));
    });
    return;
  }
  query.limit = std::max(options_.event_scan_limit, args->limit);
  client_->ListEvents(
      query, [this, limit = args->limit, done = std::move(done)](Result<json> list) {
        if (!list) return done(std::unexpected(list.error()));
        done(SummarizeEvents(*list, client_->namespace_name(), static_cast<size_t>(limit),
                             options_.now(), options_.summary));
      });
}

}  // namespace synaps::k8s
