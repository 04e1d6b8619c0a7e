// synaps usage: tasks, errors, tokens and cost per day, route and model (or any grouping of
// tenant, day, route, model, skill) from GET /v1/usage (docs/observability.md "Usage and cost").
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iomanip>
#include <iostream>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace synaps::cli {

using nlohmann::json;

namespace {

std::string Cost(double usd) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "$%.4f", usd);
  return buf;
}

std::string Dimension(const json& row, const std::string& d) {
  std::string v = row.value(d, "");
  return v.empty() ? "-" : v;
}

void PrintNumbers(const json& n) {
  std::cout << std::right << std::setw(8) << n["tasks"].get<int64_t>() << std::setw(8)
            << n["errors"].get<int64_t>() << std::setw(14) << n["promptTokens"].get<int64_t>()
            << std::setw(14) << n["completionTokens"].get<int64_t>() << std::setw(14)
            << Cost(n["costUsd"].get<double>()) << "\n";
}

}  // namespace

CLI::App* AddUsageCommand(CLI::App& app, UsageFlags& flags) {
  auto* cmd = app.add_subcommand(
      "usage", "Tasks, errors, tokens and cost from the ledger, by day, route and model");
  cmd->add_option("--from", flags.from, "first day (UTC), YYYY-MM-DD; default 29 days before --to");
  cmd->add_option("--to", flags.to, "last day (UTC), YYYY-MM-DD; default today");
  cmd->add_option("--group-by", flags.group_by,
                  "comma-separated among tenant, day, route, model, skill; \"\" for totals")
      ->capture_default_str();
  cmd->add_option("--tenant", flags.tenant, "one tenant (needs the installation scope if not yours)");
  cmd->add_flag("--json", flags.json, "machine-readable output (the API's response)");
  return cmd;
}

int RunUsage(const UsageFlags& flags) {
  ApiClient client = ApiClient::FromEnvironment();
  std::string path = "/v1/usage?groupBy=" + PercentEncode(flags.group_by);
  if (flags.from) path += "&from=" + PercentEncode(*flags.from);
  if (flags.to) path += "&to=" + PercentEncode(*flags.to);
  if (flags.tenant) path += "&tenant=" + PercentEncode(*flags.tenant);
  auto usage = client.Call("GET", path);
  if (!usage) return ReportError(usage.error(), flags.json);
  if (flags.json) {
    std::cout << usage->dump() << "\n";
    return 0;
  }
  std::vector<std::string> dims = (*usage)["groupBy"].get<std::vector<std::string>>();
  std::cout << "usage " << (*usage)["from"].get<std::string>() << " .. "
            << (*usage)["to"].get<std::string>() << " (UTC)\n";
  for (const auto& d : dims) {
    std::string head = d;
    for (auto& c : head) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::cout << std::left << std::setw(d == "day" ? 12 : 22) << head;
  }
  std::cout << std::right << std::setw(8) << "TASKS" << std::setw(8) << "ERRORS" << std::setw(14)
            << "IN TOKENS" << std::setw(14) << "OUT TOKENS" << std::setw(14) << "COST" << "\n";
  for (const auto& row : (*usage)["rows"]) {
    for (const auto& d : dims) std::cout << std::left << std::setw(d == "day" ? 12 : 22) << Dimension(row, d);
    PrintNumbers(row);
  }
  if (!dims.empty()) {
    std::cout << std::left << std::setw(0) << "total";
    size_t width = 0;
    for (const auto& d : dims) width += d == "day" ? 12 : 22;
    std::cout << std::string(width > 5 ? width - 5 : 0, ' ');
    PrintNumbers((*usage)["totals"]);
  }
  const int64_t unpriced = (*usage)["totals"]["unpricedTasks"].get<int64_t>();
  if (unpriced > 0) {
    std::cout << unpriced << " succeeded task(s) ran on routes without params.pricing: their cost"
              << " is not included\n";
  }
  if ((*usage)["truncated"].get<bool>()) {
    std::cout << "(more rows exist: narrow --from/--to or group by fewer dimensions)\n";
  }
  return 0;
}

}  // namespace synaps::cli
