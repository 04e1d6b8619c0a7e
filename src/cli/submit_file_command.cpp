// synaps submit --file commands.jsonl: one submit body per line, sent as batch submits
// (docs/api.md, "Batch submit") of up to --batch-size commands each.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <istream>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace synaps::cli {

using nlohmann::json;

namespace {

// What came back for the lines sent so far.
struct FileTally {
  int64_t created = 0;
  int64_t existing = 0;
  int64_t failed = 0;
  json results = json::array();  // {"line", ...the server's result or a local error}
};

struct PendingBatch {
  json commands = json::array();
  std::vector<int64_t> lines;  // the file line of each command
};

void FailLine(FileTally& tally, int64_t line, const std::string& code, const std::string& message) {
  ++tally.failed;
  tally.results.push_back({{"line", line}, {"error", {{"code", code}, {"message", message}}}});
}

// Sends one batch; the server's per-item answers are filed under their lines.
Status SendBatch(const ApiClient& client, PendingBatch& batch, FileTally& tally) {
  json body = {{"commands", std::move(batch.commands)}};
  ASSIGN_OR_RETURN(json answer, client.Call("POST", "/v1/commands/submit", &body));
  if (!answer.contains("results") || !answer["results"].is_array() ||
      answer["results"].size() != batch.lines.size()) {
    return Fail(ErrorCode::kInternal, "the API answered a batch without a result per command");
  }
  for (auto& r : answer["results"]) {
    size_t index = r.value("index", size_t{0});
    if (index >= batch.lines.size()) {
      return Fail(ErrorCode::kInternal, "the API answered an unknown batch index");
    }
    r.erase("index");
    r["line"] = batch.lines[index];
    if (r.contains("error")) {
      ++tally.failed;
    } else if (r.value("status", "") == "existing") {
      ++tally.existing;
    } else {
      ++tally.created;
    }
    tally.results.push_back(std::move(r));
  }
  batch = PendingBatch{};
  return Ok();
}

void PrintSummary(const std::string& source, const FileTally& tally) {
  std::cout << "submitted " << (tally.created + tally.existing + tally.failed) << " commands from "
            << source << ": " << tally.created << " created, " << tally.existing << " existing, "
            << tally.failed << " failed\n";
  constexpr int kShown = 100;
  int shown = 0;
  for (const auto& r : tally.results) {
    if (!r.contains("error")) continue;
    if (shown++ == kShown) {
      std::cout << "  ... and " << (tally.failed - kShown) << " more (all with --json)\n";
      break;
    }
    const json& e = r["error"];
    std::cout << "  line " << r["line"].get<int64_t>() << ": " << e.value("code", "error") << ": "
              << e.value("message", "") << "\n";
  }
}

}  // namespace

int RunSubmitFile(const SubmitFlags& flags) {
  std::ifstream file;
  if (flags.file != "-") {
    file.open(flags.file);
    if (!file) {
      return ReportError({ErrorCode::kInvalidArgument, "cannot read " + flags.file}, flags.json);
    }
  }
  std::istream& in = flags.file == "-" ? std::cin : file;
  const std::string source = flags.file == "-" ? "stdin" : flags.file;
  ApiClient client = ApiClient::FromEnvironment();
  FileTally tally;
  PendingBatch batch;
  int64_t line_no = 0, sent = 0, batches = 0;
  std::string line;
  auto flush = [&]() -> Status {
    if (batch.lines.empty()) return Ok();
    const int64_t first = batch.lines.front(), last = batch.lines.back();
    const int64_t count = static_cast<int64_t>(batch.lines.size());
    if (auto done = SendBatch(client, batch, tally); !done) {
      return Fail(done.error().code, done.error().message + " (lines " + std::to_string(first) +
                                         "-" + std::to_string(last) +
                                         " not submitted; earlier lines were)");
    }
    sent += count;
    // Progress for long files, on stderr so that stdout stays the summary (or the JSON).
    if (++batches > 1 || !in.eof()) {
      std::cerr << "submit: " << sent << " commands sent through line " << last << " ("
                << tally.created << " created, " << tally.existing << " existing, " << tally.failed
                << " failed)\n";
    }
    return Ok();
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json item = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (item.is_discarded()) {
      FailLine(tally, line_no, "invalid_argument", "malformed JSON");
      continue;
    }
    // --idempotency-key makes a rerun of the same file safe: line N gets "<key>/<N>".
    if (flags.idempotency_key && item.is_object() && !item.contains("idempotencyKey")) {
      item["idempotencyKey"] = *flags.idempotency_key + "/" + std::to_string(line_no);
    }
    batch.commands.push_back(std::move(item));
    batch.lines.push_back(line_no);
    if (static_cast<int>(batch.lines.size()) >= flags.batch_size) {
      if (auto done = flush(); !done) return ReportError(done.error(), flags.json);
    }
  }
  if (auto done = flush(); !done) return ReportError(done.error(), flags.json);
  std::sort(tally.results.begin(), tally.results.end(),
            [](const json& a, const json& b) { return a["line"] < b["line"]; });
  if (flags.json) {
    std::cout << json{{"created", tally.created},
                      {"existing", tally.existing},
                      {"failed", tally.failed},
                      {"results", tally.results}}
                     .dump(-1, ' ', false, json::error_handler_t::replace)
              << "\n";
  } else {
    PrintSummary(source, tally);
  }
  return tally.failed == 0 ? 0 : 1;
}

}  // namespace synaps::cli
