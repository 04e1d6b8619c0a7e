// synaps runs list | watch | cancel, and synaps tasks approve | reject
#include <algorithm>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/http_stream.h"
#include "cli/output.h"
#include "core/utf8.h"

namespace synaps::cli {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using SysTime = std::chrono::system_clock::time_point;

namespace {

std::string Str(const json& v, const char* key, const std::string& fallback = "-") {
  if (!v.is_object() || !v.contains(key) || !v[key].is_string()) return fallback;
  return v[key].get<std::string>();
}

// One artifact version as the ledger names it ({artifactId, name, version, size}):
// "answer.md v1, 11 bytes, id 0192…".
std::string ArtifactText(const json& a) {
  return Str(a, "name") + " v" + a.value("version", json(0)).dump() + ", " +
         a.value("size", json(0)).dump() + " bytes, id " + Str(a, "artifactId");
}

// "2024-05-01T10:00:00.123456+00:00" → "2024-05-01 10:00:00" (as the server wrote it).
std::string ShortTime(const json& v, const char* key) {
  std::string s = Str(v, key);
  if (s.size() < 19) return s;
  s = s.substr(0, 19);
  s[10] = ' ';
  return s;
}

// Parses the RFC 3339 timestamps PostgreSQL writes into JSON ("2024-05-01T10:00:00.123+02:00",
// also "Z" and "+02"); nullopt for anything else.
std::optional<SysTime> ParseTimestamp(const std::string& s) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::time_t secs = timegm(&tm);
  size_t i = 19;
  double fraction = 0;
  if (i < s.size() && s[i] == '.') {
    double scale = 0.1;
    for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
      fraction += (s[i] - '0') * scale;
      scale /= 10;
    }
  }
  long offset = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int hours = 0, minutes = 0;
    if (std::sscanf(s.c_str() + i + 1, "%2d:%2d", &hours, &minutes) < 1) return std::nullopt;
    offset = (hours * 3600L + minutes * 60L) * (s[i] == '-' ? -1 : 1);
  } else if (i >= s.size() || s[i] != 'Z') {
    return std::nullopt;
  }
  auto t = std::chrono::system_clock::from_time_t(secs - offset);
  return t + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                 std::chrono::duration<double>(fraction));
}


// The time of day of a timestamp field, "HH:MM:SS".
std::string TimeOfDay(const json& v, const char* key) {
  std::string s = ShortTime(v, key);
  return s.size() == 19 ? s.substr(11) : "--:--:--";
}

std::string FormatDuration(double seconds) {
  std::ostringstream out;
  if (seconds < 0) seconds = 0;
  if (seconds < 60) {
    out << std::fixed << std::setprecision(1) << seconds << " s";
  } else {
    auto total = static_cast<long>(seconds);
    if (total >= 3600) out << total / 3600 << "h";
    out << std::setfill('0') << std::setw(total >= 3600 ? 2 : 1) << (total / 60) % 60 << "m"
        << std::setw(2) << total % 60 << "s";
  }
  return out.str();
}

// Following one run: the events seen, the tasks done, and the terminal's progress line.
class RunWatch {
 public:
  RunWatch(const RunsWatchFlags& flags, const json& run)
      : flags_(flags),
        tty_(!flags.json && flags.progress && isatty(STDOUT_FILENO) == 1),
        status_(Str(run, "status", "queued")),
        created_(ParseTimestamp(Str(run, "createdAt", ""))),
        started_watching_(Clock::now()) {
    for (const auto& t : run.value("tasks", json::array())) {
      task_names_[Str(t, "id", "")] = Str(t, "name", "?");
    }
  }

  int64_t last_seq() const { return last_seq_; }
  bool ended() const { return !final_status_.empty(); }
  const std::string& final_status() const { return final_status_; }

  // Handles one server event; false once the stream's `end` arrived.
  bool OnEvent(const ServerEvent& e) {
    if (e.type == "end") {
      json data = json::parse(e.data, nullptr, false);
      final_status_ = data.is_object() ? Str(data, "status", "unknown") : "unknown";
      status_ = final_status_;
      return false;
    }
    json event = json::parse(e.data, nullptr, false);
    if (!event.is_object() || !event.contains("seq") || !event["seq"].is_number_integer()) {
      return true;  // not a ledger event: nothing to show
    }
    int64_t seq = event["seq"].get<int64_t>();
    if (seq <= last_seq_) return true;  // already shown before a reconnect
    last_seq_ = seq;
    Track(event);
    if (flags_.json) {
      std::cout << event.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
    } else {
      ClearProgress();
      std::cout << FormatEvent(event) << "\n";
      DrawProgress();
    }
    return true;
  }

  void DrawProgress() {
    if (!tty_) return;
    std::cout << "\r\033[K" << ProgressText() << std::flush;
    progress_shown_ = true;
  }

  void ClearProgress() {
    if (!progress_shown_) return;
    std::cout << "\r\033[K" << std::flush;
    progress_shown_ = false;
  }

  std::string Summary(const std::string& run_id) const {
    std::ostringstream out;
    out << "run " << run_id << " " << final_status_ << " after " << FormatDuration(Elapsed())
        << " (" << done_.size() << "/" << task_names_.size() << " tasks done)";
    if (!run_error_.empty()) out << ": " << run_error_;
    return out.str();
  }

  std::string ProgressText() const {
    std::ostringstream out;
    out << "[" << status_ << "] " << done_.size() << "/" << task_names_.size() << " tasks done, "
        << FormatDuration(Elapsed()) << " elapsed";
    return out.str();
  }

 private:
  double Elapsed() const {
    auto end = finished_ ? *finished_ : std::chrono::system_clock::now();
    if (created_) return std::chrono::duration<double>(end - *created_).count();
    return std::chrono::duration<double>(Clock::now() - started_watching_).count();
  }

  void Track(const json& event) {
    std::string type = Str(event, "type", "");
    std::string task = Str(event, "taskId", "");
    const json& data = event.contains("data") ? event["data"] : json::object();
    if (type == "task.completed" || type == "task.failed") {
      done_.insert(task);
    } else if (type == "task.queued") {
      done_.erase(task);  // requeued after a dead letter
      if (!task.empty() && !task_names_.contains(task)) {
        task_names_[task] = data.is_object() ? Str(data, "name", "?") : "?";
      }
    } else if (type == "task.claimed") {
      if (status_ == "queued") status_ = "running";
    } else if (type.starts_with("run.") && type != "run.created") {
      status_ = type.substr(4);
      if (auto t = ParseTimestamp(Str(event, "at", ""))) finished_ = t;
      if (data.is_object() && data.contains("error") && data["error"].is_object()) {
        const json& err = data["error"];
        run_error_ = Str(err, "message", err.dump());
        if (err.contains("task")) run_error_ = "task " + Str(err, "task") + ": " + run_error_;
      }
    }
  }

  std::string FormatEvent(const json& event) const {
    std::string type = Str(event, "type", "?");
    std::string task_id = Str(event, "taskId", "");
    std::string task = task_id.empty() ? ""
                                       : (task_names_.contains(task_id) ? task_names_.at(task_id)
                                                                        : task_id.substr(0, 8));
    const json& data =
        event.contains("data") && event["data"].is_object() ? event["data"] : json::object();
    std::ostringstream detail;
    if (type == "run.created") {
      detail << "kind " << Str(data, "kind");
    } else if (type == "task.queued") {
      detail << "queue " << Str(data, "queue");
      if (data.contains("requeuedBy")) detail << ", requeued by " << Str(data, "requeuedBy");
    } else if (type == "task.claimed") {
      detail << "attempt " << event.value("attempt", json(0)).dump() << " by "
             << Str(data, "worker");
    } else if (type == "artifact.created") {
      // Runs written before 0039: one event per artifact, just before its task.completed.
      detail << ArtifactText(data);
    } else if (type == "task.progress") {
      // A chunk of the streamed answer: its size and a one-line glimpse of it.
      std::string text = Str(data, "text", "");
      std::string glimpse(Utf8Prefix(text, 48));
      std::replace_if(glimpse.begin(), glimpse.end(),
                      [](char ch) { return ch == '\n' || ch == '\r' || ch == '\t'; }, ' ');
      detail << "+" << text.size() << " bytes \"" << glimpse
             << (text.size() > glimpse.size() ? "...\"" : "\"");
    } else if (type == "task.completed") {
      detail << Str(data, "provider", "");
      if (data.contains("model")) detail << " " << Str(data, "model");
      if (data.contains("usage") && data["usage"].is_object()) {
        detail << ", " << data["usage"].value("promptTokens", json(0)).dump() << "+"
               << data["usage"].value("completionTokens", json(0)).dump() << " tokens";
      }
      // The artifacts the completion produced (since 0039 named here, not in events of their own).
      if (data.contains("artifacts") && data["artifacts"].is_array()) {
        for (const auto& a : data["artifacts"]) {
          if (a.is_object()) detail << "; artifact " << ArtifactText(a);
        }
      }
    } else if (type == "tool.called") {
      std::string args = data.value("arguments", json::object()).dump();
      if (args.size() > 80) args = std::string(Utf8Prefix(args, 77)) + "...";
      detail << Str(data, "tool") << " " << args;
    } else if (type == "tool.result") {
      detail << Str(data, "tool") << (data.value("ok", false) ? " ok" : " failed") << ", "
             << data.value("durationMs", json(0)).dump() << " ms";
      if (data.contains("error") && data["error"].is_object()) {
        detail << ": " << Str(data["error"], "message");
      }
    } else if (type == "arbiter.verdict") {
      detail << Str(data, "arbiter") << (data.value("passed", false) ? " passed" : " failed");
      for (const auto& c : data.value("checks", json::array())) {
        if (!c.value("passed", true)) detail << "; " << Str(c, "type") << ": " << Str(c, "reason");
      }
    } else if (type == "task.awaiting_approval") {
      detail << "decide with: synaps tasks approve|reject " << task_id;
    } else if (type == "task.approved" || type == "task.rejected") {
      detail << "by " << Str(data, "by");
      if (!Str(data, "reason", "").empty()) detail << ": " << Str(data, "reason");
    } else if (data.contains("error") && data["error"].is_object()) {
      detail << Str(data["error"], "message", data["error"].dump());
      if (data.contains("nextAttemptAt"))
        detail << "; next attempt " << ShortTime(data, "nextAttemptAt");
      if (data.value("deadLettered", false)) detail << " (dead-lettered)";
    }
    std::ostringstream line;
    line << std::setw(5) << event.value("seq", json(0)).dump() << "  " << TimeOfDay(event, "at")
         << "  " << std::left << std::setw(21) << type << std::setw(12) << task << detail.str();
    std::string out = line.str();
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
  }

  const RunsWatchFlags& flags_;
  const bool tty_;
  std::string status_;
  std::optional<SysTime> created_;
  std::optional<SysTime> finished_;
  Clock::time_point started_watching_;
  std::map<std::string, std::string> task_names_;  // task id → name
  std::set<std::string> done_;                     // task ids that completed or failed
  int64_t last_seq_ = 0;
  std::string final_status_;
  std::string run_error_;
  bool progress_shown_ = false;
};

}  // namespace

int RunRunsList(const RunsListFlags& flags) {
  ApiClient client = ApiClient::FromEnvironment();
  std::string query;
  auto add = [&](const char* name, const std::string& value) {
    query += (query.empty() ? "?" : "&") + std::string(name) + "=" + PercentEncode(value);
  };
  if (flags.thread_id) add("threadId", *flags.thread_id);
  if (flags.status) add("status", *flags.status);
  if (flags.schedule) add("schedule", *flags.schedule);
  if (flags.limit) add("limit", std::to_string(*flags.limit));
  if (flags.cursor) add("cursor", *flags.cursor);
  auto page = client.Call("GET", "/v1/runs" + query);
  if (!page) return ReportError(page.error(), flags.json);
  if (flags.json) {
    std::cout << page->dump() << "\n";
    return 0;
  }
  const json& items = (*page)["items"];
  if (items.empty()) {
    std::cout << (flags.cursor ? "no more runs\n" : "no runs\n");
    return 0;
  }
  std::cout << std::left << std::setw(38) << "RUN" << std::setw(19) << "STATUS" << std::setw(21)
            << "CREATED"
            << "FINISHED\n";
  for (const auto& r : items) {
    std::cout << std::left << std::setw(38) << Str(r, "id") << std::setw(19) << Str(r, "status")
              << std::setw(21) << ShortTime(r, "createdAt") << ShortTime(r, "finishedAt") << "\n";
  }
  if (page->contains("nextCursor")) {
    std::string more = "synaps runs list";
    if (flags.thread_id) more += " --thread " + *flags.thread_id;
    if (flags.status) more += " --status " + *flags.status;
    if (flags.schedule) more += " --schedule " + *flags.schedule;
    if (flags.limit) more += " --limit " + std::to_string(*flags.limit);
    std::cout << "more: " << more << " --cursor '" << (*page)["nextCursor"].get<std::string>()
              << "'\n";
  }
  return 0;
}

int RunRunsCancel(const std::string& run_id, bool as_json) {
  ApiClient client = ApiClient::FromEnvironment();
  auto run = client.Call("POST", "/v1/runs/" + PercentEncode(run_id) + "/cancel");
  if (!run) return ReportError(run.error(), as_json);
  if (as_json) {
    std::cout << run->dump() << "\n";
  } else {
    std::cout << "run " << run_id << " " << Str(*run, "status") << "\n";
  }
  return 0;
}

int RunTasksDecide(const std::string& task_id, bool approve, const std::string& reason,
                   bool as_json) {
  ApiClient client = ApiClient::FromEnvironment();
  json body = json::object();
  if (!reason.empty()) body["reason"] = reason;
  auto run = client.Call("POST",
                         "/v1/tasks/" + PercentEncode(task_id) + (approve ? "/approve" : "/reject"),
                         &body);
  if (!run) return ReportError(run.error(), as_json);
  if (as_json) {
    std::cout << run->dump() << "\n";
  } else {
    std::cout << "task " << task_id << (approve ? " approved" : " rejected") << "; run "
              << Str(*run, "id") << " " << Str(*run, "status") << "\n";
  }
  return 0;
}

int RunRunsWatch(const RunsWatchFlags& flags) {
  ApiClient client = ApiClient::FromEnvironment();
  auto run = client.Call("GET", "/v1/runs/" + PercentEncode(flags.run_id));
  if (!run) return ReportError(run.error(), flags.json, kWatchError);
  RunWatch watch(flags, *run);
  std::optional<Clock::time_point> deadline;
  if (flags.timeout_seconds > 0)
    deadline = Clock::now() + std::chrono::seconds(flags.timeout_seconds);
  auto timed_out = [&] { return deadline && Clock::now() >= *deadline; };
  if (!flags.json) {
    std::cout << "run " << flags.run_id << ": " << (*run)["tasks"].size() << " task(s), "
              << Str(*run, "status") << "\n";
  }

  auto backoff = std::chrono::milliseconds(250);
  while (true) {
    StreamRequest req;
    req.url = client.base_url() + "/v1/runs/" + PercentEncode(flags.run_id) + "/events";
    req.headers = client.AuthHeaders();
    req.headers.push_back("Accept: text/event-stream");
    if (watch.last_seq() > 0)
      req.headers.push_back("Last-Event-ID: " + std::to_string(watch.last_seq()));
    EventStreamParser parser;  // fresh per connection: a torn event is not carried over
    bool got_events = false;
    StreamCallbacks callbacks;
    callbacks.on_data = [&](std::string_view bytes) {
      return parser.Feed(bytes, [&](const ServerEvent& e) {
        got_events = true;
        return watch.OnEvent(e);
      });
    };
    callbacks.on_tick = [&] {
      watch.DrawProgress();
      return !timed_out();
    };
    auto end = StreamGet(req, callbacks);
    if (watch.ended()) break;

    Error problem{ErrorCode::kUnavailable, "the event stream ended before the run finished", {}};
    if (!end) {
      problem = end.error();
    } else if (end->status != 200) {
      problem = client.ErrorForStatus(end->status, end->error_body);
      bool transient = end->status == 429 || end->status >= 500;
      if (!transient) {
        watch.ClearProgress();
        return ReportError(problem, flags.json, kWatchError);
      }
    }
    if (timed_out()) {
      watch.ClearProgress();
      return ReportError(Error{ErrorCode::kDeadlineExceeded,
                               "run " + flags.run_id + " did not finish within " +
                                   std::to_string(flags.timeout_seconds) + " s",
                               {}},
                         flags.json, kWatchError);
    }
    if (got_events) backoff = std::chrono::milliseconds(250);
    watch.ClearProgress();
    std::cerr << "synaps: " << problem.message << "; reconnecting in "
              << FormatDuration(std::chrono::duration<double>(backoff).count()) << " from event "
              << watch.last_seq() << "\n";
    for (auto until = Clock::now() + backoff; Clock::now() < until && !timed_out();) {
      watch.DrawProgress();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }

  watch.ClearProgress();
  if (flags.json) {
    std::cout << json{{"type", "end"}, {"status", watch.final_status()}}.dump() << std::endl;
  } else {
    std::cout << watch.Summary(flags.run_id) << "\n";
  }
  return watch.final_status() == "succeeded" ? kWatchSucceeded : kWatchRunFailed;
}

}  // namespace synaps::cli
