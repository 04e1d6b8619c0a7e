#include "worker/tool_runner.h"

#include <boost/asio/post.hpp>

#include "k8s/builtin_tools.h"

namespace synaps::worker {
namespace {

class WorkerToolRunner final : public ToolRunner {
 public:
  explicit WorkerToolRunner(boost::asio::any_io_executor executor)
      : executor_(executor), builtin_(k8s::BuiltinTools::FromEnvironment(executor)) {}

  void Invoke(const control::Tool& tool, const nlohmann::json& arguments, Done done) override {
    if (tool.type == control::ToolType::kBuiltin) {
      builtin_->Invoke(tool.name, arguments, std::move(done));
      return;
    }
    boost::asio::post(executor_, [done = std::move(done)] {
      done(Fail(ErrorCode::kUnavailable, "http tools are not wired yet"));
    });
  }

 private:
  boost::asio::any_io_executor executor_;
  std::unique_ptr<k8s::BuiltinTools> builtin_;
};

}  // namespace

std::unique_ptr<ToolRunner> MakeToolRunner(boost::asio::any_io_executor executor) {
  return std::make_unique<WorkerToolRunner>(std::move(executor));
}

}  // namespace synaps::worker
