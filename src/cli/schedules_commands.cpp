// synaps schedules list | get | trigger | backfill: schedules through the API
// (docs/schedules.md). Their specs are applied with `synaps control apply` (kind schedules).
#include <CLI/CLI.hpp>
#include <iomanip>
#include <iostream>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace synaps::cli {

using nlohmann::json;

namespace {

std::string Text(const json& v, const char* key, const std::string& missing = "-") {
  if (!v.is_object() || !v.contains(key) || v[key].is_null()) return missing;
  return v[key].is_string() ? v[key].get<std::string>() : v[key].dump();
}

// "cron 0 2 * * * (Europe/Berlin)" or "every 5m".
std::string When(const json& spec) {
  if (spec.contains("cron")) {
    return "cron " + spec["cron"].get<std::string>() + " (" + Text(spec, "timezone", "UTC") + ")";
  }
  return "every " + Text(spec, "every");
}

// "2026-01-01T02:00:00Z started (run ...)" for a fire time.
std::string FireLine(const json& f) {
  std::string line = Text(f, "fireTime") + "  " + Text(f, "status", Text(f, "outcome")) + "  " +
                     Text(f, "origin");
  if (f.contains("runId") && f["runId"].is_string()) {
    line += "  run " + f["runId"].get<std::string>();
    if (f.contains("runStatus") && f["runStatus"].is_string()) {
      line += " (" + f["runStatus"].get<std::string>() + ")";
    }
  }
  if (f.contains("reason") && f["reason"].is_string()) line += "  " + f["reason"].get<std::string>();
  return line;
}

int List(const ApiClient& client, bool as_json) {
  auto list = client.Call("GET", "/v1/schedules");
  if (!list) return ReportError(list.error(), as_json);
  if (as_json) {
    std::cout << list->dump() << "\n";
    return 0;
  }
  const json& items = (*list)["items"];
  if (items.empty()) {
    std::cout << "no schedules (apply one with: synaps control apply -f schedule.yaml)\n";
    return 0;
  }
  std::cout << std::left << std::setw(26) << "NAME" << std::setw(8) << "STATE" << std::setw(34)
            << "WHEN" << std::setw(22) << "NEXT" << "LAST\n";
  for (const auto& s : items) {
    std::string next = s["nextFireTimes"].empty() ? "-" : s["nextFireTimes"][0].get<std::string>();
    std::string last = s["lastFire"].is_null()
                           ? "-"
                           : Text(s["lastFire"], "status") + " " + Text(s["lastFire"], "fireTime");
    std::cout << std::left << std::setw(26) << Text(s, "name") << std::setw(8) << Text(s, "state")
              << std::setw(34) << When(s["spec"]) << std::setw(22) << next << last << "\n";
  }
  return 0;
}

int Get(const ApiClient& client, const std::string& name, bool as_json) {
  auto s = client.Call("GET", "/v1/schedules/" + PercentEncode(name));
  if (!s) return ReportError(s.error(), as_json);
  if (as_json) {
    std::cout << s->dump() << "\n";
    return 0;
  }
  const json& spec = (*s)["spec"];
  std::cout << "schedule " << Text(*s, "name") << " (version " << Text(*s, "version") << ", "
            << Text(*s, "state") << ")\n";
  if (s->contains("pausedReason")) std::cout << "  paused:    " << Text(*s, "pausedReason") << "\n";
  std::cout << "  when:      " << When(spec) << "\n"
            << "  overlap:   " << Text(spec, "overlap", "skip") << "\n"
            << "  catch-up:  " << Text(spec, "catchupWindow", "1m") << "\n"
            << "  tenant:    " << Text(*s, "tenant") << "\n"
            << "  command:   " << spec["command"].dump() << "\n";
  std::cout << "next fire times:\n";
  if ((*s)["nextFireTimes"].empty()) std::cout << "  none\n";
  for (const auto& t : (*s)["nextFireTimes"]) std::cout << "  " << t.get<std::string>() << "\n";
  std::cout << "recent fire times:\n";
  const json recent = s->value("recentFires", json::array());
  if (recent.empty()) std::cout << "  none\n";
  for (const auto& f : recent) std::cout << "  " << FireLine(f) << "\n";
  return 0;
}

int Trigger(const ApiClient& client, const SchedulesFlags& flags) {
  json body = json::object();
  if (flags.overlap) body["overlap"] = *flags.overlap;
  auto r = client.Call("POST", "/v1/schedules/" + PercentEncode(flags.name) + "/trigger", &body);
  if (!r) return ReportError(r.error(), flags.json);
  if (flags.json) {
    std::cout << r->dump() << "\n";
    return 0;
  }
  std::cout << flags.name << ": " << FireLine(*r) << "\n";
  return 0;
}

int Backfill(const ApiClient& client, const SchedulesFlags& flags) {
  json body = {{"from", flags.from}, {"to", flags.to}};
  if (flags.overlap) body["overlap"] = *flags.overlap;
  auto r = client.Call("POST", "/v1/schedules/" + PercentEncode(flags.name) + "/backfill", &body);
  if (!r) return ReportError(r.error(), flags.json);
  if (flags.json) {
    std::cout << r->dump() << "\n";
    return 0;
  }
  std::cout << flags.name << ": " << Text(*r, "fireTimes") << " fire times, "
            << Text(*r, "started") << " started, " << Text(*r, "buffered") << " buffered, "
            << Text(*r, "skipped") << " skipped, " << Text(*r, "duplicate")
            << " decided before\n";
  for (const auto& f : (*r)["fires"]) std::cout << "  " << FireLine(f) << "\n";
  return 0;
}

}  // namespace

CLI::App* AddSchedulesCommand(CLI::App& app, SchedulesFlags& flags) {
  auto* cmd = app.add_subcommand(
      "schedules", "Schedules: state, next fire times, run now, backfill (specs: control apply)");
  cmd->require_subcommand(1);
  const auto overlaps = CLI::IsMember({"skip", "bufferOne", "bufferAll", "cancelOther", "allow"});

  auto* list = cmd->add_subcommand("list", "Every schedule with its state and next fire time");
  list->add_flag("--json", flags.json, "machine-readable output");
  list->callback([&flags] { flags.verb = "list"; });

  auto* get = cmd->add_subcommand("get", "One schedule: spec, next fire times, recent results");
  get->add_option("name", flags.name, "schedule name")->required();
  get->add_flag("--json", flags.json, "machine-readable output");
  get->callback([&flags] { flags.verb = "get"; });

  auto* trigger = cmd->add_subcommand("trigger", "Run the schedule's command now");
  trigger->add_option("name", flags.name, "schedule name")->required();
  trigger->add_option("--overlap", flags.overlap, "this overlap policy instead of the spec's")
      ->check(overlaps);
  trigger->add_flag("--json", flags.json, "machine-readable output");
  trigger->callback([&flags] { flags.verb = "trigger"; });

  auto* backfill = cmd->add_subcommand(
      "backfill", "Run every fire time in [--from, --to) (RFC 3339 times, not in the future)");
  backfill->add_option("name", flags.name, "schedule name")->required();
  backfill->add_option("--from", flags.from, "first time of the range, e.g. 2026-01-01T00:00:00Z")
      ->required();
  backfill->add_option("--to", flags.to, "end of the range (excluded)")->required();
  backfill->add_option("--overlap", flags.overlap, "this overlap policy instead of the spec's")
      ->check(overlaps);
  backfill->add_flag("--json", flags.json, "machine-readable output");
  backfill->callback([&flags] { flags.verb = "backfill"; });
  return cmd;
}

int RunSchedules(const SchedulesFlags& flags) {
  ApiClient client = ApiClient::FromEnvironment();
  if (flags.verb == "list") return List(client, flags.json);
  if (flags.verb == "get") return Get(client, flags.name, flags.json);
  if (flags.verb == "trigger") return Trigger(client, flags);
  if (flags.verb == "backfill") return Backfill(client, flags);
  return ReportError({ErrorCode::kInvalidArgument, "unknown schedules verb", ""}, flags.json);
}

}  // namespace synaps::cli
