// synaps submit | runs get
#include <signal.h>

#include <iostream>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace synaps::cli {

using nlohmann::json;

void UnblockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

int RunSubmit(const SubmitFlags& flags) {
  ApiClient client = ApiClient::FromEnvironment();
  json body = {{"kind", flags.kind}, {"input", {{"text", flags.text}}}};
  if (flags.thread_id) body["threadId"] = *flags.thread_id;
  if (flags.skill) body["skill"] = *flags.skill;
  if (flags.route) body["route"] = *flags.route;
  if (!flags.tools.empty()) body["tools"] = flags.tools;
  if (flags.max_steps) body["maxSteps"] = *flags.max_steps;
  if (!flags.tags.empty()) body["tags"] = flags.tags;
  auto submitted =
      client.Call("POST", "/v1/commands/submit", &body, flags.idempotency_key.value_or(""));
  if (!submitted) return ReportError(submitted.error(), flags.json);
  if (!flags.wait) {
    if (flags.json) {
      std::cout << submitted->dump() << "\n";
    } else {
      std::cout << "submitted: run " << (*submitted)["runId"].get<std::string>() << " (thread "
                << (*submitted)["threadId"].get<std::string>() << ")\n";
    }
    return 0;
  }
  auto run = client.WaitForRun((*submitted)["runId"].get<std::string>(), flags.timeout_seconds);
  if (!run) return ReportError(run.error(), flags.json);
  if (flags.json) {
    std::cout << run->dump() << "\n";
  } else {
    std::cout << FormatRun(*run);
  }
  return (*run)["status"] == "succeeded" ? 0 : 1;
}

int RunRunsGet(const std::string& run_id, bool as_json) {
  ApiClient client = ApiClient::FromEnvironment();
  auto run = client.Call("GET", "/v1/runs/" + PercentEncode(run_id));
  if (!run) return ReportError(run.error(), as_json);
  if (as_json) {
    std::cout << run->dump() << "\n";
  } else {
    std::cout << FormatRun(*run);
  }
  return 0;
}

int RunRunsGetArchived(const std::string& run_id, bool as_json) {
  ApiClient client = ApiClient::FromEnvironment();
  auto run = client.Call("GET", "/v1/runs/" + PercentEncode(run_id) + "/archive");
  if (!run) return ReportError(run.error(), as_json);
  if (as_json) {
    std::cout << run->dump() << "\n";
    return 0;
  }
  const auto& r = (*run)["run"];
  const auto& a = (*run)["archive"];
  std::cout << "run " << r.value("id", "") << " (archived " << a.value("archivedAt", "") << " in "
            << a.value("dataKey", "") << ")\n"
            << "  status   " << r.value("status", "") << "\n"
            << "  created  " << r.value("created_at", "") << "\n"
            << "  finished " << r.value("finished_at", "") << "\n"
            << "  tasks    " << (*run)["tasks"].size() << "\n"
            << "  events   " << (*run)["events"].size() << "\n"
            << "  artifacts " << (*run)["artifactVersions"].size() << " versions\n";
  for (const auto& t : (*run)["tasks"]) {
    std::cout << "  task " << t.value("name", "") << "  " << t.value("status", "") << "\n";
  }
  return 0;
}

}  // namespace synaps::cli
