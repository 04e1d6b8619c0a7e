// synaps control apply | get | history | rollback | delete | snapshot: the control registry
// through the API (docs/control.md).
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "control/documents.h"
#include "control/spec.h"

namespace synaps::cli {

using nlohmann::json;

namespace {

int Report(const Error& e, bool as_json) {
  if (as_json) {
    json err = {{"code", std::string(ErrorCodeName(e.code))}, {"message", e.message}};
    if (!e.field.empty()) err["field"] = e.field;
    std::cout << json{{"error", err}}.dump() << "\n";
  } else {
    std::cerr << "error: " << e.message << "\n";
  }
  return 1;
}

std::string Escape(const std::string& value) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<std::string> ReadInput(const std::string& path) {
  std::ostringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
    return text.str();
  }
  std::ifstream in(path);
  if (!in) return Fail(ErrorCode::kInvalidArgument, "cannot read " + path);
  text << in.rdbuf();
  return text.str();
}

std::string ItemPath(const std::string& kind, const std::string& name) {
  return "/v1/control/" + kind + "/" + name;
}

// The spec as the diff shows it: YAML, the way the file is written.
std::string Shown(const json& spec) { return control::JsonToYaml(spec); }

std::string Indent(const std::string& text, const std::string& prefix) {
  std::string out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out += prefix + line + "\n";
  return out;
}

// `text` cut to `width` characters on one line.
std::string OneLine(std::string text, size_t width) {
  for (auto& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (text.size() > width) text = text.substr(0, width - 3) + "...";
  return text;
}

// "2025-03-01T12:00:00.123+00:00" → "2025-03-01 12:00:00".
std::string When(const std::string& at) {
  std::string s = at.substr(0, 19);
  if (s.size() > 10 && s[10] == 'T') s[10] = ' ';
  return s;
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

// References that resolve neither in the file nor in the registry's `items` are worth a
// warning: the registry accepts them (items may arrive in any order) but a task using them
// would fail.
std::vector<std::string> UnresolvedReferences(const json& items,
                                              const std::vector<control::Document>& docs) {
  std::set<std::string> known;
  for (const auto& [kind, of_kind] : items.items()) {
    for (const auto& [name, _] : of_kind.items()) known.insert(kind + "/" + name);
  }
  for (const auto& d : docs) known.insert(d.kind + "/" + d.name);
  std::vector<std::string> warnings;
  for (const auto& d : docs) {
    for (const auto& ref : control::References(d.kind, d.spec)) {
      if (!known.contains(ref)) {
        warnings.push_back(d.kind + "/" + d.name + " refers to " + ref + ", which does not exist");
      }
    }
  }
  return warnings;
}

// What applying one document would do against the registry: its result entry (kind, name,
// action create/update/unchanged, currentVersion) and the diff a person reads.
struct PlannedDocument {
  json entry;
  std::string diff;
  const json* before = nullptr;  // the registry's item, or null when it does not exist
};

PlannedDocument Plan(const control::Document& d, const json& items) {
  PlannedDocument p;
  if (items.contains(d.kind) && items[d.kind].contains(d.name)) p.before = &items[d.kind][d.name];
  std::string action = p.before == nullptr             ? "create"
                       : (*p.before)["spec"] == d.spec ? "unchanged"
                                                       : "update";
  p.entry = {{"kind", d.kind}, {"name", d.name}, {"action", action}};
  if (p.before != nullptr) p.entry["currentVersion"] = (*p.before)["version"];
  if (action == "create") {
    p.diff = Indent(Shown(d.spec), "+ ");
  } else if (action == "update") {
    p.diff = control::LineDiff(Shown((*p.before)["spec"]), Shown(d.spec));
  }
  return p;
}

void PrintPlanned(const std::string& id, const PlannedDocument& p) {
  const std::string action = p.entry["action"];
  if (action == "unchanged") {
    std::cout << "unchanged " << id << " (version " << (*p.before)["version"] << ")\n";
  } else if (action == "create") {
    std::cout << "would create " << id << "\n" << Indent(p.diff, "    ");
  } else {
    std::cout << "would update " << id << " (version " << (*p.before)["version"] << ")\n"
              << Indent(p.diff, "    ");
  }
}

// Writes one document; fills `entry` with the outcome (version, snapshotVersion, or error).
// False when the registry refused it.
bool Put(const ApiClient& client, const control::Document& d, const std::string& reason,
         bool as_json, json& entry) {
  const std::string id = d.kind + "/" + d.name;
  json body = {{"spec", d.spec}, {"reason", d.reason.empty() ? reason : d.reason}};
  auto put = client.Call("PUT", ItemPath(d.kind, d.name), &body);
  if (!put) {
    entry["error"] = put.error().message;
    if (!as_json) std::cerr << "error: " << id << ": " << put.error().message << "\n";
    return false;
  }
  const bool changed = (*put)["changed"].get<bool>();
  if (!changed) entry["action"] = "unchanged";
  entry["version"] = (*put)["version"];
  entry["snapshotVersion"] = (*put)["snapshotVersion"];
  if (!as_json) {
    if (!changed) {
      std::cout << "unchanged " << id << " (version " << (*put)["version"] << ")\n";
    } else {
      std::cout << (entry["action"] == "create" ? "created " : "updated ") << id << " (version "
                << (*put)["version"] << ", snapshot " << (*put)["snapshotVersion"] << ")\n";
    }
  }
  return true;
}

int Apply(const ApiClient& client, const ControlFlags& flags) {
  auto text = ReadInput(flags.file);
  if (!text) return Report(text.error(), flags.json);
  // Every document is checked before anything is sent, so a bad one applies nothing.
  auto docs = control::ParseDocuments(*text);
  if (!docs) return Report(docs.error(), flags.json);
  if (docs->empty()) {
    return Report({ErrorCode::kInvalidArgument, flags.file + " holds no documents", ""},
                  flags.json);
  }
  auto current = client.Call("GET", "/v1/control/snapshot");
  if (!current) return Report(current.error(), flags.json);
  const json& items = (*current)["items"];
  std::vector<std::string> warnings = UnresolvedReferences(items, *docs);

  const std::string default_reason = flags.reason.value_or("synaps control apply -f " + flags.file);
  json results = json::array();
  bool failed = false;
  for (const auto& d : *docs) {
    PlannedDocument planned = Plan(d, items);
    if (flags.dry_run) {
      if (!planned.diff.empty()) planned.entry["diff"] = planned.diff;
      if (!flags.json) PrintPlanned(d.kind + "/" + d.name, planned);
      results.push_back(planned.entry);
      continue;
    }
    failed = !Put(client, d, default_reason, flags.json, planned.entry);
    results.push_back(planned.entry);
    if (failed) break;  // later documents may depend on this one: stop here
  }
  if (flags.json) {
    std::cout << json{{"dryRun", flags.dry_run}, {"items", results}, {"warnings", warnings}}.dump()
              << "\n";
  } else {
    for (const auto& w : warnings) std::cerr << "warning: " << w << "\n";
    if (failed) {
      std::cerr << "stopped: " << (results.size() - 1) << " of " << docs->size()
                << " documents applied\n";
    }
  }
  return failed ? 1 : 0;
}

int Get(const ApiClient& client, const ControlFlags& flags) {
  if (!control::IsKind(flags.kind)) {
    return Report(
        {ErrorCode::kInvalidArgument, "KIND must be one of " + control::KindList(), "kind"},
        flags.json);
  }
  if (!flags.name) {
    auto list = client.Call("GET", "/v1/control/" + flags.kind);
    if (!list) return Report(list.error(), flags.json);
    if (flags.json) {
      std::cout << list->dump() << "\n";
      return 0;
    }
    if ((*list)["items"].empty()) {
      std::cout << "no " << flags.kind << "\n";
      return 0;
    }
    std::cout << Pad("NAME", 28) << Pad("VERSION", 9) << Pad("CHANGED", 21) << "REASON\n";
    for (const auto& it : (*list)["items"]) {
      std::cout << Pad(it["name"].get<std::string>(), 28)
                << Pad(std::to_string(it["version"].get<int>()), 9)
                << Pad(When(it["at"].get<std::string>()), 21)
                << OneLine(it["reason"].get<std::string>(), 60) << "\n";
    }
    return 0;
  }
  std::string path = ItemPath(flags.kind, *flags.name);
  if (flags.version) path += "?version=" + std::to_string(*flags.version);
  auto item = client.Call("GET", path);
  if (!item) return Report(item.error(), flags.json);
  if (flags.json) {
    std::cout << item->dump() << "\n";
    return 0;
  }
  // A document `synaps control apply -f` takes back, with the version's history as comments.
  const json& v = *item;
  std::cout << "# " << v["kind"].get<std::string>() << "/" << v["name"].get<std::string>()
            << " version " << v["version"] << " (" << v["action"].get<std::string>() << " by "
            << v["actor"].get<std::string>() << " at " << v["at"].get<std::string>() << ")\n"
            << "# reason: " << OneLine(v["reason"].get<std::string>(), 200) << "\n";
  if (v["deleted"].get<bool>()) {
    std::cout << "# deleted: this version is a tombstone\n";
    return 0;
  }
  std::cout << control::JsonToYaml({{"kind", v["kind"]}, {"name", v["name"]}, {"spec", v["spec"]}});
  return 0;
}

int History(const ApiClient& client, const ControlFlags& flags) {
  std::string query;
  auto add = [&](const std::string& key, const std::optional<std::string>& value) {
    if (value) query += (query.empty() ? "?" : "&") + key + "=" + Escape(*value);
  };
  add("kind", flags.kind.empty() ? std::nullopt : std::optional<std::string>(flags.kind));
  add("name", flags.name);
  add("actor", flags.actor);
  add("cursor", flags.cursor);
  if (flags.limit) add("limit", std::to_string(*flags.limit));
  auto page = client.Call("GET", "/v1/control/changes" + query);
  if (!page) return Report(page.error(), flags.json);
  if (flags.json) {
    std::cout << page->dump() << "\n";
    return 0;
  }
  if ((*page)["items"].empty()) {
    std::cout << "no changes\n";
    return 0;
  }
  std::cout << Pad("CHANGE", 8) << Pad("AT", 21) << Pad("ITEM", 34) << Pad("VERSION", 8)
            << Pad("ACTION", 9) << Pad("ACTOR", 22) << "REASON\n";
  for (const auto& c : (*page)["items"]) {
    std::cout << Pad(std::to_string(c["id"].get<int64_t>()), 8)
              << Pad(When(c["at"].get<std::string>()), 21)
              << Pad(c["kind"].get<std::string>() + "/" + c["name"].get<std::string>(), 34)
              << Pad(std::to_string(c["version"].get<int>()), 8)
              << Pad(c["action"].get<std::string>(), 9)
              << Pad(OneLine(c["actor"].get<std::string>(), 20), 22)
              << OneLine(c["reason"].get<std::string>(), 60) << "\n";
  }
  if (page->contains("nextCursor")) {
    std::cout << "more: synaps control history --cursor "
              << (*page)["nextCursor"].get<std::string>() << "\n";
  }
  return 0;
}

int Rollback(const ApiClient& client, const ControlFlags& flags) {
  json body = {{"toVersion", flags.to_version.value_or(0)}, {"reason", flags.reason.value_or("")}};
  auto r = client.Call("POST", ItemPath(flags.kind, flags.name.value_or("")) + "/rollback", &body);
  if (!r) return Report(r.error(), flags.json);
  if (flags.json) {
    std::cout << r->dump() << "\n";
  } else if (!(*r)["changed"].get<bool>()) {
    std::cout << flags.kind << "/" << *flags.name << " already equals version " << *flags.to_version
              << " (version " << (*r)["version"] << "): nothing changed\n";
  } else {
    std::cout << "rolled back " << flags.kind << "/" << *flags.name << " to version "
              << *flags.to_version << ": now version " << (*r)["version"] << " (snapshot "
              << (*r)["snapshotVersion"] << ")\n";
  }
  return 0;
}

int Delete(const ApiClient& client, const ControlFlags& flags) {
  json body = {{"reason", flags.reason.value_or("")}};
  auto r = client.Call("DELETE", ItemPath(flags.kind, flags.name.value_or("")), &body);
  if (!r) return Report(r.error(), flags.json);
  if (flags.json) {
    std::cout << r->dump() << "\n";
  } else {
    std::cout << "deleted " << flags.kind << "/" << *flags.name << " (tombstone version "
              << (*r)["version"] << ", snapshot " << (*r)["snapshotVersion"] << ")\n";
  }
  return 0;
}

int Snapshot(const ApiClient& client, const ControlFlags& flags) {
  std::string path = "/v1/control/snapshot";
  if (flags.version) path += "?version=" + std::to_string(*flags.version);
  auto s = client.Call("GET", path);
  if (!s) return Report(s.error(), flags.json);
  if (flags.json) {
    std::cout << s->dump() << "\n";
    return 0;
  }
  std::cout << "snapshot " << (*s)["version"] << "\n";
  for (auto kind : control::kKinds) {
    const json& of_kind = (*s)["items"][std::string(kind)];
    std::cout << "  " << kind << (of_kind.empty() ? ": none" : "") << "\n";
    for (const auto& [name, item] : of_kind.items()) {
      std::cout << "    " << Pad(name, 28) << "v" << item["version"] << "\n";
    }
  }
  return 0;
}

}  // namespace

CLI::App* AddControlCommand(CLI::App& app, ControlFlags& flags) {
  auto* control = app.add_subcommand("control", "The control registry: " + control::KindList());
  control->require_subcommand(1);
  const auto kinds = CLI::IsMember(
      {"prompts", "skills", "tools", "routes", "arbiters", "schedules", "concurrency"});

  auto* apply = control->add_subcommand(
      "apply", "Apply YAML documents {kind, name, spec, reason?} separated by ---");
  apply->add_option("-f,--filename", flags.file, "the YAML file (- for stdin)")->required();
  apply->add_flag("--dry-run", flags.dry_run, "print what would change, as a diff; change nothing");
  apply->add_option("--reason", flags.reason,
                    "why (recorded with every change; default names the file)");
  apply->add_flag("--json", flags.json, "machine-readable output");
  apply->callback([&flags] { flags.verb = "apply"; });

  auto* get = control->add_subcommand(
      "get", "List a kind's items, or show one (as a document apply takes back)");
  get->add_option("kind", flags.kind, control::KindList())->required()->check(kinds);
  get->add_option("name", flags.name, "item name");
  get->add_option("--version", flags.version, "this version instead of the current one")
      ->check(CLI::Range(int64_t{1}, int64_t{2'000'000'000}));
  get->add_flag("--json", flags.json, "machine-readable output");
  get->callback([&flags] { flags.verb = "get"; });

  auto* history = control->add_subcommand("history", "The audit log of changes, newest first");
  history->add_option("--kind", flags.kind, "only this kind")->check(kinds);
  history->add_option("--name", flags.name, "only items of this name");
  history->add_option("--actor", flags.actor, "only changes by this actor");
  history->add_option("--limit", flags.limit, "changes per page (1..500, default 50)")
      ->check(CLI::Range(1, 500));
  history->add_option("--cursor", flags.cursor, "the page after this cursor");
  history->add_flag("--json", flags.json, "machine-readable output");
  history->callback([&flags] { flags.verb = "history"; });

  auto* rollback = control->add_subcommand(
      "rollback", "Make an earlier version's spec current again (as a new version)");
  rollback->add_option("kind", flags.kind, "item kind")->required()->check(kinds);
  rollback->add_option("name", flags.name, "item name")->required();
  rollback->add_option("--to", flags.to_version, "the version to restore")
      ->required()
      ->check(CLI::Range(1, 2'000'000'000));
  rollback->add_option("--reason", flags.reason, "why (recorded with the change)")->required();
  rollback->add_flag("--json", flags.json, "machine-readable output");
  rollback->callback([&flags] { flags.verb = "rollback"; });

  auto* del = control->add_subcommand("delete", "Delete an item (a tombstone version)");
  del->add_option("kind", flags.kind, "item kind")->required()->check(kinds);
  del->add_option("name", flags.name, "item name")->required();
  del->add_option("--reason", flags.reason, "why (recorded with the change)")->required();
  del->add_flag("--json", flags.json, "machine-readable output");
  del->callback([&flags] { flags.verb = "delete"; });

  auto* snapshot = control->add_subcommand(
      "snapshot", "The effective snapshot: every current item and its version");
  snapshot->add_option("--version", flags.version, "the snapshot at this earlier version")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 62));
  snapshot->add_flag("--json", flags.json, "the full snapshot with specs, as JSON");
  snapshot->callback([&flags] { flags.verb = "snapshot"; });
  return control;
}

int RunControl(const ControlFlags& flags) {
  ApiClient client = ApiClient::FromEnvironment();
  if (flags.verb == "apply") return Apply(client, flags);
  if (flags.verb == "get") return Get(client, flags);
  if (flags.verb == "history") return History(client, flags);
  if (flags.verb == "rollback") return Rollback(client, flags);
  if (flags.verb == "delete") return Delete(client, flags);
  if (flags.verb == "snapshot") return Snapshot(client, flags);
  return Report({ErrorCode::kInvalidArgument, "unknown control verb", ""}, flags.json);
}

}  // namespace synaps::cli
