#include "providers/local_provider.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace synaps::providers {
namespace {

using Clock = std::chrono::steady_clock;

int64_t CountWords(const std::string& s) {
  int64_t n = 0;
  bool in_word = false;
  for (char c : s) {
    bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

// "a b  c" -> "a ", "b  ", "c": each word with the blanks after it, so the pieces join back
// to the original text.
std::vector<std::string> WordPieces(const std::string& s) {
  std::vector<std::string> pieces;
  size_t i = 0;
  while (i < s.size()) {
    size_t word_end = s.find_first_of(" \n\t\r", i);
    if (word_end == std::string::npos) word_end = s.size();
    size_t next = s.find_first_not_of(" \n\t\r", word_end);
    if (next == std::string::npos) next = s.size();
    pieces.push_back(s.substr(i, next - i));
    i = next;
  }
  return pieces;
}

// Shared between the Call handle and the pending handler, so either may go first.
struct LocalCallState {
  explicit LocalCallState(boost::asio::any_io_executor ex) : timer(ex) {}
  boost::asio::steady_timer timer;
  Provider::Done done;
  DeltaCallback on_delta;
  Result<ChatResponse> answer;
  Clock::time_point started = Clock::now();
  bool finished = false;

  void Deliver() {
    if (finished) return;
    if (answer && on_delta) {
      for (const auto& piece : WordPieces(answer->text)) {
        on_delta(ChatDelta{1, piece, {}});
        if (finished) return;  // the delta callback cancelled the call
      }
    }
    if (answer) {
      answer->latency = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
      answer->time_to_first_token = answer->latency;
    }
    Finish(std::move(answer));
  }

  void Finish(Result<ChatResponse> result) {
    if (finished) return;
    finished = true;
    on_delta = nullptr;
    auto cb = std::move(done);
    cb(std::move(result));
  }
};

class LocalCall final : public Call {
 public:
  explicit LocalCall(std::shared_ptr<LocalCallState> state) : state_(std::move(state)) {}
  void Cancel() override {
    auto state = state_;
    boost::asio::dispatch(state->timer.get_executor(), [state] {
      if (state->finished) return;
      state->timer.cancel();
      // Mark it finished now so no delta follows, report from the loop.
      state->finished = true;
      state->on_delta = nullptr;
      boost::asio::post(state->timer.get_executor(), [state] {
        auto cb = std::move(state->done);
        cb(Fail(ErrorCode::kCancelled, "call cancelled"));
      });
    });
  }

 private:
  std::shared_ptr<LocalCallState> state_;
};

// Route params {"script": [step, ...]}: the answer to a request is step number k, where k is
// the number of assistant messages already in the conversation (the last step repeats). A step
// is one of {"text": "..."}, {"toolCalls": [{"name": "...", "arguments": {...}}]},
// {"score": 0.8, "reason"?: "..."} (a judge's reply) or {"echo": true} (the echo behaviour).
// Returns false when the request has no script or the step says echo.
Result<bool> ScriptedAnswer(const ChatRequest& request, ChatResponse& r) {
  auto it = request.params.find("script");
  if (it == request.params.end()) return false;
  const nlohmann::json& script = *it;
  if (!script.is_array() || script.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "params.script must be a non-empty array of steps",
                "params.script");
  }
  size_t assistant_turns = 0;
  for (const auto& m : request.messages) assistant_turns += m.role == "assistant" ? 1 : 0;
  size_t k = std::min(assistant_turns, script.size() - 1);
  const nlohmann::json& step = script[k];
  const std::string field = "params.script[" + std::to_string(k) + "]";
  if (!step.is_object()) return Fail(ErrorCode::kInvalidArgument, field + " must be an object", field);
  if (step.value("echo", false)) return false;
  if (step.contains("text") && step["text"].is_string()) {
    r.text = step["text"].get<std::string>();
  } else if (step.contains("score") && step["score"].is_number()) {
    nlohmann::json reason = step.contains("reason") ? step["reason"] : nlohmann::json("scripted");
    nlohmann::json reply = {{"score", step["score"]}, {"reason", reason}};
    r.text = reply.dump();
  } else if (step.contains("toolCalls") && step["toolCalls"].is_array()) {
    int64_t earlier_calls = 0;
    for (const auto& m : request.messages) earlier_calls += static_cast<int64_t>(m.tool_calls.size());
    for (const auto& call : step["toolCalls"]) {
      if (!call.is_object() || !call.contains("name") || !call["name"].is_string()) {
        return Fail(ErrorCode::kInvalidArgument, field + ".toolCalls: each needs a name", field);
      }
      nlohmann::json args = call.value("arguments", nlohmann::json::object());
      r.tool_calls.push_back({"call_" + std::to_string(++earlier_calls),
                              call["name"].get<std::string>(),
                              args.is_string() ? args.get<std::string>() : args.dump()});
    }
    r.finish_reason = "tool_calls";
  } else {
    return Fail(ErrorCode::kInvalidArgument,
                field + " must have text, score, toolCalls or echo", field);
  }
  for (const auto& m : request.messages) r.usage.prompt_tokens += CountWords(m.content);
  r.usage.completion_tokens = CountWords(r.text);
  return true;
}

}  // namespace

LocalProvider::LocalProvider(boost::asio::any_io_executor executor, int latency_ms)
    : executor_(std::move(executor)), latency_ms_(latency_ms) {}

Result<ChatResponse> LocalProvider::Answer(const ChatRequest& request) {
  if (request.model != "echo") {
    return Fail(ErrorCode::kInvalidArgument,
                "the local provider has no model '" + request.model + "' (models: echo)", "model");
  }
  ChatResponse r;
  r.model = "echo";
  r.finish_reason = "stop";
  r.id = "local";
  ASSIGN_OR_RETURN(bool scripted, ScriptedAnswer(request, r));
  if (scripted) return r;
  const ChatMessage* last_user = nullptr;
  for (auto it = request.messages.rbegin(); it != request.messages.rend(); ++it) {
    if (it->role == "user") {
      last_user = &*it;
      break;
    }
  }
  if (!request.messages.empty() && request.messages.back().role == "tool") {
    r.text = request.messages.back().content;
  } else if (last_user != nullptr) {
    r.text = last_user->content;
    static const std::string kToolCommand = "/tool ";
    if (r.text.starts_with(kToolCommand) && !request.tools.empty()) {
      std::string rest = r.text.substr(kToolCommand.size());
      size_t space = rest.find(' ');
      std::string name = rest.substr(0, space);
      std::string args = space == std::string::npos ? "" : rest.substr(space + 1);
      for (const auto& tool : request.tools) {
        if (tool.name != name) continue;
        int64_t earlier_calls = 0;
        for (const auto& m : request.messages) earlier_calls += m.tool_calls.size();
        r.tool_calls.push_back(
            {"call_" + std::to_string(earlier_calls + 1), name, args.empty() ? "{}" : args});
        r.text.clear();
        r.finish_reason = "tool_calls";
        break;
      }
    }
  }
  for (const auto& m : request.messages) r.usage.prompt_tokens += CountWords(m.content);
  r.usage.completion_tokens = CountWords(r.text);
  return r;
}

std::unique_ptr<Call> LocalProvider::Start(const ChatRequest& request, Done done) {
  auto state = std::make_shared<LocalCallState>(executor_);
  state->done = std::move(done);
  if (request.stream) state->on_delta = request.on_delta;
  state->answer = Answer(request);
  if (latency_ms_ <= 0) {
    boost::asio::post(executor_, [state] { state->Deliver(); });
  } else {
    state->timer.expires_after(std::chrono::milliseconds(latency_ms_));
    state->timer.async_wait([state](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: Cancel() reports it
      state->Deliver();
    });
  }
  return std::make_unique<LocalCall>(state);
}

}  // namespace synaps::providers
