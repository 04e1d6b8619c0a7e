#include "worker/tool_runner.h"

#include "k8s/builtin_tools.h"
#include "tools/http_tools.h"

namespace synaps::worker {
namespace {

class WorkerToolRunner final : public ToolRunner {
 public:
  explicit WorkerToolRunner(boost::asio::any_io_executor executor)
      : builtin_(k8s::BuiltinTools::FromEnvironment(executor)),
        http_(tools::HttpTools::FromEnvironment(executor)) {}

  void Invoke(const control::Tool& tool, const nlohmann::json& arguments, Done done) override {
    if (tool.type == control::ToolType::kBuiltin) {
      builtin_->Invoke(tool.name, arguments, std::move(done));
      return;
    }
    http_->Invoke(tool, arguments, std::move(done));
  }

  void InvokeTraced(const control::Tool& tool, const nlohmann::json& arguments,
                    const TraceContext& trace, Done done) override {
    if (tool.type == control::ToolType::kBuiltin) {
      builtin_->Invoke(tool.name, arguments, std::move(done));
      return;
    }
    http_->Invoke(tool, arguments, std::move(done), trace);
  }

 private:
  std::unique_ptr<k8s::BuiltinTools> builtin_;
  std::unique_ptr<tools::HttpTools> http_;
};

}  // namespace

std::unique_ptr<ToolRunner> MakeToolRunner(boost::asio::any_io_executor executor) {
  return std::make_unique<WorkerToolRunner>(std::move(executor));
}

}  // namespace synaps::worker
