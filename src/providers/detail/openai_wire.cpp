#include "providers/detail/openai_wire.h"

#include <set>

namespace synaps::providers::detail {

using nlohmann::json;

namespace {

// The value of `key` when it is a string; "" when missing, null or another type.
std::string StringField(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

// Reads prompt/completion token counts when `usage` is an object with numbers.
void ReadUsage(const json& usage, Usage& out) {
  if (!usage.is_object()) return;
  auto read = [&](const char* key, int64_t& field) {
    auto it = usage.find(key);
    if (it != usage.end() && it->is_number()) field = it->get<int64_t>();
  };
  read("prompt_tokens", out.prompt_tokens);
  read("completion_tokens", out.completion_tokens);
}

// Reasoning text: `reasoning_content` (Kimi, DeepSeek, vLLM) or `reasoning` (OpenRouter,
// Ollama).
std::string ReasoningField(const json& message) {
  std::string r = StringField(message, "reasoning_content");
  if (r.empty()) r = StringField(message, "reasoning");
  return r;
}

// Tool-call arguments are a JSON string by the spec; a few servers send an object.
std::string ArgumentsText(const json& function) {
  auto it = function.find("arguments");
  if (it == function.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

std::string Truncate(std::string s, size_t max) {
  if (s.size() > max) {
    s.resize(max);
    s += "...";
  }
  return s;
}

const std::set<std::string>& KnownRoles() {
  static const std::set<std::string> roles = {"system", "developer", "user", "assistant", "tool"};
  return roles;
}

const std::set<std::string>& ProviderOwnedFields() {
  static const std::set<std::string> fields = {"model",          "messages", "stream",
                                               "stream_options", "tools",    "tool_choice"};
  return fields;
}

}  // namespace

namespace {

// Message `i` of a request in the wire format, or why it cannot be sent (field messages[i].*).
Result<json> WireMessage(const ChatMessage& m, size_t i) {
  std::string at = "messages[" + std::to_string(i) + "]";
  if (!KnownRoles().count(m.role)) {
    return Fail(ErrorCode::kInvalidArgument,
                "unknown role '" + m.role + "' (use system, developer, user, assistant, tool)",
                at + ".role");
  }
  json out = {{"role", m.role}};
  if (m.role == "tool") {
    if (m.tool_call_id.empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  "a tool message must name the call it answers (tool_call_id)",
                  at + ".tool_call_id");
    }
    out["tool_call_id"] = m.tool_call_id;
  } else if (!m.tool_call_id.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "only tool messages carry a tool_call_id",
                at + ".tool_call_id");
  }
  if (!m.tool_calls.empty()) {
    if (m.role != "assistant") {
      return Fail(ErrorCode::kInvalidArgument, "only assistant messages carry tool_calls",
                  at + ".tool_calls");
    }
    json calls = json::array();
    for (size_t j = 0; j < m.tool_calls.size(); ++j) {
      const ToolCall& c = m.tool_calls[j];
      if (c.id.empty() || c.name.empty()) {
        return Fail(ErrorCode::kInvalidArgument, "a tool call needs an id and a name",
                    at + ".tool_calls[" + std::to_string(j) + "]");
      }
      calls.push_back({{"id", c.id},
                       {"type", "function"},
                       {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    }
    out["tool_calls"] = std::move(calls);
    // OpenAI wants null, not "", beside tool calls when there is no text.
    out["content"] = m.content.empty() ? json(nullptr) : json(m.content);
  } else {
    out["content"] = m.content;
  }
  if (!m.name.empty()) out["name"] = m.name;
  return out;
}

// The tools offered, in the wire format, or why one cannot be (field tools[i].*).
Result<json> WireTools(const std::vector<ToolDefinition>& definitions) {
  json tools = json::array();
  for (size_t i = 0; i < definitions.size(); ++i) {
    const ToolDefinition& t = definitions[i];
    std::string at = "tools[" + std::to_string(i) + "]";
    if (t.name.empty()) {
      return Fail(ErrorCode::kInvalidArgument, "a tool needs a name", at + ".name");
    }
    if (!t.parameters.is_object()) {
      return Fail(ErrorCode::kInvalidArgument, "tool parameters must be a JSON Schema object",
                  at + ".parameters");
    }
    json function = {{"name", t.name}, {"parameters", t.parameters}};
    if (!t.description.empty()) function["description"] = t.description;
    tools.push_back({{"type", "function"}, {"function", std::move(function)}});
  }
  return tools;
}

}  // namespace

Result<json> BuildChatBody(const ChatRequest& request, bool stream, bool include_usage) {
  if (request.model.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "the request names no model", "model");
  }
  if (request.messages.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "the request has no messages", "messages");
  }
  json body = json::object();
  if (!request.params.is_null()) {
    if (!request.params.is_object()) {
      return Fail(ErrorCode::kInvalidArgument, "params must be a JSON object", "params");
    }
    for (const auto& [key, value] : request.params.items()) {
      if (ProviderOwnedFields().count(key)) {
        return Fail(ErrorCode::kInvalidArgument,
                    "params." + key + " is set by the provider itself; remove it from params",
                    "params." + key);
      }
      body[key] = value;
    }
  }
  body["model"] = request.model;
  json messages = json::array();
  for (size_t i = 0; i < request.messages.size(); ++i) {
    ASSIGN_OR_RETURN(json message, WireMessage(request.messages[i], i));
    messages.push_back(std::move(message));
  }
  body["messages"] = std::move(messages);
  if (!request.tools.empty()) {
    ASSIGN_OR_RETURN(body["tools"], WireTools(request.tools));
  }
  if (!request.tool_choice.is_null()) {
    if (!request.tool_choice.is_string() && !request.tool_choice.is_object()) {
      return Fail(ErrorCode::kInvalidArgument,
                  "tool_choice must be \"auto\", \"none\", \"required\" or an object",
                  "tool_choice");
    }
    body["tool_choice"] = request.tool_choice;
  }
  body["stream"] = stream;
  if (stream && include_usage) body["stream_options"] = {{"include_usage", true}};
  return body;
}

Result<ChatResponse> ParseCompletion(const json& body) {
  if (!body.is_object()) {
    return Fail(ErrorCode::kInternal, "the provider's answer is not a JSON object");
  }
  if (auto err = body.find("error"); err != body.end() && !err->is_null()) {
    return Fail(ErrorCode::kUnavailable,
                "the provider answered with an error: " + ErrorBodyMessage(body.dump()));
  }
  auto choices = body.find("choices");
  if (choices == body.end() || !choices->is_array() || choices->empty() ||
      !(*choices)[0].is_object()) {
    return Fail(ErrorCode::kInternal,
                "the provider's answer has no choices: " + Truncate(body.dump(), 300));
  }
  const json& choice = (*choices)[0];
  auto message = choice.find("message");
  if (message == choice.end() || !message->is_object()) {
    return Fail(ErrorCode::kInternal, "the provider's answer has no message in choices[0]");
  }
  ChatResponse r;
  r.text = StringField(*message, "content");
  r.reasoning = ReasoningField(*message);
  r.finish_reason = StringField(choice, "finish_reason");
  r.model = StringField(body, "model");
  r.id = StringField(body, "id");
  if (auto calls = message->find("tool_calls"); calls != message->end() && calls->is_array()) {
    for (const json& c : *calls) {
      if (!c.is_object()) continue;
      ToolCall call;
      call.id = StringField(c, "id");
      if (auto f = c.find("function"); f != c.end() && f->is_object()) {
        call.name = StringField(*f, "name");
        call.arguments = ArgumentsText(*f);
      }
      if (call.name.empty()) {
        return Fail(ErrorCode::kInternal, "the provider sent a tool call without a name");
      }
      r.tool_calls.push_back(std::move(call));
    }
  }
  ReadUsage(choice.value("usage", json()), r.usage);
  ReadUsage(body.value("usage", json()), r.usage);
  return r;
}

Result<ChatDelta> StreamAssembler::Apply(const json& chunk) {
  if (!chunk.is_object()) {
    return Fail(ErrorCode::kInternal,
                "a stream chunk is not a JSON object: " + Truncate(chunk.dump(), 200));
  }
  if (auto err = chunk.find("error"); err != chunk.end() && !err->is_null()) {
    return Fail(ErrorCode::kUnavailable,
                "the provider reported an error mid-stream: " + ErrorBodyMessage(chunk.dump()));
  }
  if (!started_) {
    started_ = true;
    response_.finish_reason.clear();
  }
  ChatDelta delta;
  if (response_.id.empty()) response_.id = StringField(chunk, "id");
  if (std::string model = StringField(chunk, "model"); !model.empty()) response_.model = model;
  ReadUsage(chunk.value("usage", json()), response_.usage);
  auto choices = chunk.find("choices");
  if (choices == chunk.end() || !choices->is_array()) return delta;
  for (const json& choice : *choices) {
    if (!choice.is_object()) continue;
    auto index = choice.find("index");
    if (index != choice.end() && index->is_number_integer() && index->get<int64_t>() != 0) {
      continue;
    }
    ReadUsage(choice.value("usage", json()), response_.usage);  // Moonshot puts it here
    if (auto d = choice.find("delta"); d != choice.end() && d->is_object()) {
      std::string text = StringField(*d, "content");
      response_.text += text;
      delta.text += text;
      std::string reasoning = ReasoningField(*d);
      response_.reasoning += reasoning;
      delta.reasoning += reasoning;
      if (auto calls = d->find("tool_calls"); calls != d->end() && calls->is_array()) {
        for (const json& fragment : *calls) {
          if (!fragment.is_object()) continue;
          std::vector<ToolCall>& all = response_.tool_calls;
          std::string id = StringField(fragment, "id");
          size_t at;
          if (auto i = fragment.find("index"); i != fragment.end() && i->is_number_integer()) {
            int64_t n = i->get<int64_t>();
            if (n < 0 || n > 1024) {
              return Fail(ErrorCode::kInternal,
                          "the provider sent an implausible tool call index " + std::to_string(n));
            }
            at = static_cast<size_t>(n);
          } else if (all.empty() || (!id.empty() && id != all.back().id)) {
            at = all.size();  // servers that send whole calls without an index
          } else {
            at = all.size() - 1;
          }
          if (all.size() <= at) all.resize(at + 1);
          ToolCall& call = all[at];
          if (!id.empty()) call.id = id;
          if (auto f = fragment.find("function"); f != fragment.end() && f->is_object()) {
            std::string name = StringField(*f, "name");
            if (call.name.empty()) call.name = name;
            auto args = f->find("arguments");
            if (args != f->end() && args->is_string()) {
              call.arguments += args->get<std::string>();
            } else if (args != f->end() && args->is_object()) {
              call.arguments = args->dump();
            }
          }
        }
      }
    }
    if (std::string reason = StringField(choice, "finish_reason"); !reason.empty()) {
      response_.finish_reason = reason;
      finished_ = true;
    }
  }
  return delta;
}

ChatResponse StreamAssembler::Take() {
  ChatResponse r = std::move(response_);
  std::erase_if(r.tool_calls, [](const ToolCall& c) {
    return c.id.empty() && c.name.empty() && c.arguments.empty();
  });
  response_ = ChatResponse{};
  return r;
}

std::string ErrorBodyMessage(const std::string& body, std::string* code) {
  std::string message;
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded() && j.is_object()) {
    if (auto e = j.find("error"); e != j.end()) {
      if (e->is_object()) {
        message = StringField(*e, "message");
        if (code != nullptr) {
          auto c = e->find("code");
          if (c != e->end() && c->is_string()) {
            *code = c->get<std::string>();
          } else {
            *code = StringField(*e, "type");
          }
        }
      } else if (e->is_string()) {
        message = e->get<std::string>();
      }
    }
    if (message.empty()) message = StringField(j, "message");
    if (message.empty()) {
      if (auto d = j.find("detail"); d != j.end()) {
        message = d->is_string() ? d->get<std::string>() : Truncate(d->dump(), 300);
      }
    }
  }
  if (message.empty()) {
    size_t b = body.find_first_not_of(" \t\r\n");
    message = b == std::string::npos ? "(empty body)" : Truncate(body.substr(b), 300);
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
      message.pop_back();
    }
  }
  return message;
}

HttpFailure ClassifyHttpStatus(long status, const std::string& body,
                               const std::string& x_should_retry) {
  std::string code;
  std::string message = "HTTP " + std::to_string(status) + ": " + ErrorBodyMessage(body, &code);
  HttpFailure f{Error{ErrorCode::kInternal, message, {}}, false};
  if (status == 401 || status == 403) {
    f.error.code = ErrorCode::kPermissionDenied;
  } else if (status == 429) {
    if (code == "insufficient_quota" || code == "billing_hard_limit_reached") {
      f.error.code = ErrorCode::kResourceExhausted;
    } else {
      f.error.code = ErrorCode::kUnavailable;
      f.retry = true;
    }
  } else if (status == 408) {
    f.error.code = ErrorCode::kDeadlineExceeded;
    f.retry = true;
  } else if (status >= 500 && status <= 599) {
    f.error.code = ErrorCode::kUnavailable;
    f.retry = true;
  } else if (status >= 400 && status <= 499) {
    f.error.code = ErrorCode::kInvalidArgument;
  } else {
    f.error.message = "unexpected " + message;
  }
  if (x_should_retry == "true") f.retry = true;
  if (x_should_retry == "false") f.retry = false;
  return f;
}

HttpFailure ClassifyCurlError(CURLcode code, const std::string& detail) {
  std::string message = curl_easy_strerror(code);
  if (!detail.empty() && detail != message) message += " (" + detail + ")";
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return {Error{ErrorCode::kDeadlineExceeded, "timed out: " + message, {}}, true};
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return {Error{ErrorCode::kInvalidArgument, "bad provider URL: " + message, {}}, false};
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      // The same certificate will fail again at once; the queue may retry later.
      return {Error{ErrorCode::kUnavailable, "TLS verification failed: " + message, {}}, false};
    case CURLE_PARTIAL_FILE:
      return {Error{ErrorCode::kUnavailable,
                    "the connection closed before the answer was complete: " + message,
                    {}},
              true};
    default:
      return {Error{ErrorCode::kUnavailable, "connection failed: " + message, {}}, true};
  }
}

}  // namespace synaps::providers::detail
