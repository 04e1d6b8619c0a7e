#include "providers/local_provider.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace synaps::providers {
namespace {

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

// Shared between the Call handle and the pending handler, so either may go first.
struct LocalCallState {
  explicit LocalCallState(boost::asio::any_io_executor ex) : timer(ex) {}
  boost::asio::steady_timer timer;
  Provider::Done done;
  Result<ChatResponse> answer;
  bool finished = false;

  void Finish(Result<ChatResponse> result) {
    if (finished) return;
    finished = true;
    auto cb = std::move(done);
    cb(std::move(result));
  }
};

class LocalCall final : public Call {
 public:
  explicit LocalCall(std::shared_ptr<LocalCallState> state) : state_(std::move(state)) {}
  void Cancel() override {
    auto state = state_;
    boost::asio::post(state->timer.get_executor(), [state] {
      state->timer.cancel();
      state->Finish(Fail(ErrorCode::kCancelled, "call cancelled"));
    });
  }

 private:
  std::shared_ptr<LocalCallState> state_;
};

}  // namespace

LocalProvider::LocalProvider(boost::asio::any_io_executor executor, int latency_ms)
    : executor_(std::move(executor)), latency_ms_(latency_ms) {}

Result<ChatResponse> LocalProvider::Answer(const ChatRequest& request) {
  if (request.model != "echo") {
    return Fail(ErrorCode::kInvalidArgument,
                "the local provider has no model '" + request.model + "' (models: echo)");
  }
  ChatResponse r;
  r.model = "echo";
  for (auto it = request.messages.rbegin(); it != request.messages.rend(); ++it) {
    if (it->role == "user") {
      r.text = it->content;
      break;
    }
  }
  for (const auto& m : request.messages) r.usage.prompt_tokens += CountWords(m.content);
  r.usage.completion_tokens = CountWords(r.text);
  return r;
}

std::unique_ptr<Call> LocalProvider::Start(const ChatRequest& request, Done done) {
  auto state = std::make_shared<LocalCallState>(executor_);
  state->done = std::move(done);
  state->answer = Answer(request);
  if (latency_ms_ <= 0) {
    boost::asio::post(executor_, [state] { state->Finish(std::move(state->answer)); });
  } else {
    state->timer.expires_after(std::chrono::milliseconds(latency_ms_));
    state->timer.async_wait([state](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: Cancel() reports it
      state->Finish(std::move(state->answer));
    });
  }
  return std::make_unique<LocalCall>(state);
}

}  // namespace synaps::providers
