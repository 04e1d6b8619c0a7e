#include "k8s/summary.h"

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <vector>

#include "core/utf8.h"

namespace synaps::k8s {

using nlohmann::json;
using std::chrono::system_clock;

namespace {

// The member at `path`, or null when any step is missing or not an object.
const json* Find(const json& root, std::initializer_list<const char*> path) {
  const json* at = &root;
  for (const char* key : path) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

std::string String(const json& root, std::initializer_list<const char*> path) {
  const json* v = Find(root, path);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

int64_t Integer(const json& root, std::initializer_list<const char*> path, int64_t fallback = 0) {
  const json* v = Find(root, path);
  return v != nullptr && v->is_number_integer() ? v->get<int64_t>() : fallback;
}

bool Bool(const json& root, std::initializer_list<const char*> path) {
  const json* v = Find(root, path);
  return v != nullptr && v->is_boolean() && v->get<bool>();
}

const json& Array(const json& root, std::initializer_list<const char*> path) {
  static const json kEmpty = json::array();
  const json* v = Find(root, path);
  return v != nullptr && v->is_array() ? *v : kEmpty;
}

// Cuts `text` to at most `max` bytes without splitting a UTF-8 sequence.
std::string Cut(std::string text, size_t max) {
  if (text.size() <= max) return text;
  return std::string(Utf8Prefix(text, max)) + "...";
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::optional<std::string> AgeSince(const std::string& timestamp, system_clock::time_point now) {
  auto t = ParseTimestamp(timestamp);
  if (!t) return std::nullopt;
  auto age = std::chrono::duration_cast<std::chrono::seconds>(now - *t);
  return FormatAge(std::max(age, std::chrono::seconds(0)));
}

// "running", "waiting: CrashLoopBackOff (back-off 5m0s ...)", "terminated: Error (exit code 1)".
std::string DescribeState(const json& state, size_t max_text) {
  if (Find(state, {"running"}) != nullptr) return "running";
  if (const json* w = Find(state, {"waiting"})) {
    std::string s = "waiting";
    std::string reason = String(*w, {"reason"});
    std::string message = String(*w, {"message"});
    if (!reason.empty()) s += ": " + reason;
    if (!message.empty()) s += " (" + Cut(message, max_text) + ")";
    return s;
  }
  if (const json* t = Find(state, {"terminated"})) {
    std::string reason = String(*t, {"reason"});
    std::string s = "terminated: " + (reason.empty() ? std::string("exited") : reason);
    s += " (exit code " + std::to_string(Integer(*t, {"exitCode"})) + ")";
    int64_t signal = Integer(*t, {"signal"});
    if (signal != 0) s += " (signal " + std::to_string(signal) + ")";
    std::string message = String(*t, {"message"});
    if (!message.empty()) s += ": " + Cut(message, max_text);
    return s;
  }
  return "unknown";
}

// The containers of `spec_key` joined with their statuses from `status_key`, by name.
json DescribeContainers(const json& pod, const char* spec_key, const char* status_key,
                        const SummaryLimits& limits) {
  const json& specs = Array(pod, {"spec", spec_key});
  const json& statuses = Array(pod, {"status", status_key});
  auto status_of = [&](const std::string& name) -> const json* {
    for (const auto& s : statuses) {
      if (String(s, {"name"}) == name) return &s;
    }
    return nullptr;
  };
  json out = json::array();
  const json& listed = specs.empty() ? statuses : specs;
  for (const auto& c : listed) {
    if (out.size() == limits.max_containers) break;
    std::string name = String(c, {"name"});
    const json* status = status_of(name);
    json item = {{"name", name}};
    std::string image = String(c, {"image"});
    if (image.empty() && status != nullptr) image = String(*status, {"image"});
    item["image"] = image;
    if (status == nullptr) {
      item["state"] = "not started";
    } else {
      item["ready"] = Bool(*status, {"ready"});
      item["restarts"] = Integer(*status, {"restartCount"});
      item["state"] = DescribeState(Find(*status, {"state"}) ? *Find(*status, {"state"}) : json(),
                                    limits.max_text_chars);
      if (const json* last = Find(*status, {"lastState"});
          last != nullptr && last->is_object() && !last->empty()) {
        item["lastState"] = DescribeState(*last, limits.max_text_chars);
      }
    }
    out.push_back(std::move(item));
  }
  return out;
}

// The STATUS column of `kubectl get pods` (kubectl's printPod, without the rarely seen cases).
std::string KubectlStatus(const json& pod) {
  std::string reason = String(pod, {"status", "reason"});
  if (reason.empty()) reason = String(pod, {"status", "phase"});
  if (reason.empty()) reason = "Unknown";

  bool initializing = false;
  const json& inits = Array(pod, {"status", "initContainerStatuses"});
  size_t init_total = Array(pod, {"spec", "initContainers"}).size();
  for (size_t i = 0; i < inits.size(); ++i) {
    const json& c = inits[i];
    if (const json* t = Find(c, {"state", "terminated"})) {
      if (Integer(*t, {"exitCode"}) == 0) continue;
      std::string why = String(*t, {"reason"});
      if (why.empty()) {
        int64_t signal = Integer(*t, {"signal"});
        why = signal != 0 ? "Signal:" + std::to_string(signal)
                          : "ExitCode:" + std::to_string(Integer(*t, {"exitCode"}));
      }
      reason = "Init:" + why;
    } else if (std::string why = String(c, {"state", "waiting", "reason"});
               !why.empty() && why != "PodInitializing") {
      reason = "Init:" + why;
    } else {
      reason =
          "Init:" + std::to_string(i) + "/" + std::to_string(std::max(init_total, inits.size()));
    }
    initializing = true;
    break;
  }

  if (!initializing) {
    bool running = false;
    const json& containers = Array(pod, {"status", "containerStatuses"});
    for (auto it = containers.rbegin(); it != containers.rend(); ++it) {
      const json& c = *it;
      std::string waiting = String(c, {"state", "waiting", "reason"});
      const json* terminated = Find(c, {"state", "terminated"});
      if (!waiting.empty()) {
        reason = waiting;
      } else if (terminated != nullptr) {
        std::string why = String(*terminated, {"reason"});
        if (why.empty()) {
          int64_t signal = Integer(*terminated, {"signal"});
          why = signal != 0 ? "Signal:" + std::to_string(signal)
                            : "ExitCode:" + std::to_string(Integer(*terminated, {"exitCode"}));
        }
        reason = why;
      } else if (Find(c, {"state", "running"}) != nullptr && Bool(c, {"ready"})) {
        running = true;
      }
    }
    if (reason == "Completed" && running) reason = "Running";
  }

  if (!String(pod, {"metadata", "deletionTimestamp"}).empty()) {
    reason = reason == "NodeLost" ? "Unknown" : "Terminating";
  }
  return reason;
}

json SummarizePod(const json& pod, system_clock::time_point now, const SummaryLimits& limits) {
  json out = json::object();
  out["name"] = String(pod, {"metadata", "name"});
  out["status"] = KubectlStatus(pod);
  out["phase"] = String(pod, {"status", "phase"});
  const json& statuses = Array(pod, {"status", "containerStatuses"});
  size_t total = std::max(Array(pod, {"spec", "containers"}).size(), statuses.size());
  int64_t ready = 0;
  int64_t restarts = 0;
  for (const auto& s : statuses) {
    if (Bool(s, {"ready"})) ++ready;
    restarts += Integer(s, {"restartCount"});
  }
  out["ready"] = std::to_string(ready) + "/" + std::to_string(total);
  out["restarts"] = restarts;
  std::string node = String(pod, {"spec", "nodeName"});
  out["node"] = node.empty() ? "(not scheduled)" : node;
  if (auto age = AgeSince(String(pod, {"metadata", "creationTimestamp"}), now)) out["age"] = *age;

  // Why a pod is not fine, in the cluster's words: the pod's own message (evictions), or the
  // first failing condition (e.g. "0/3 nodes are available: 3 Insufficient cpu").
  std::string message = String(pod, {"status", "message"});
  if (message.empty()) {
    for (const auto& c : Array(pod, {"status", "conditions"})) {
      if (String(c, {"status"}) == "False" && !String(c, {"message"}).empty()) {
        message = String(c, {"type"}) + ": " + String(c, {"message"});
        break;
      }
    }
  }
  if (!message.empty()) out["message"] = Cut(message, limits.max_text_chars);

  bool init_done = true;
  for (const auto& s : Array(pod, {"status", "initContainerStatuses"})) {
    const json* t = Find(s, {"state", "terminated"});
    if (t == nullptr || Integer(*t, {"exitCode"}) != 0) init_done = false;
  }
  if (!init_done) {
    out["initContainers"] =
        DescribeContainers(pod, "initContainers", "initContainerStatuses", limits);
  }
  out["containers"] = DescribeContainers(pod, "containers", "containerStatuses", limits);
  return out;
}

// The last time an event happened, as the API server wrote it. Core v1 events carry it in
// lastTimestamp; events written through events.k8s.io/v1 only in series or eventTime.
std::string EventTime(const json& event) {
  for (auto path : {std::initializer_list<const char*>{"lastTimestamp"},
                    std::initializer_list<const char*>{"series", "lastObservedTime"},
                    std::initializer_list<const char*>{"eventTime"},
                    std::initializer_list<const char*>{"firstTimestamp"},
                    std::initializer_list<const char*>{"metadata", "creationTimestamp"}}) {
    std::string t = String(event, path);
    if (!t.empty()) return t;
  }
  return "";
}

json SummarizeEvent(const json& event, system_clock::time_point now, const SummaryLimits& limits) {
  json out = json::object();
  out["type"] = String(event, {"type"});
  out["reason"] = String(event, {"reason"});
  std::string kind = String(event, {"involvedObject", "kind"});
  std::string name = String(event, {"involvedObject", "name"});
  out["object"] = kind.empty() ? name : kind + "/" + name;
  out["message"] = Cut(String(event, {"message"}), limits.max_text_chars);
  int64_t count = Integer(event, {"count"});
  if (count <= 0) count = Integer(event, {"series", "count"});
  out["count"] = std::max<int64_t>(count, 1);
  std::string last = EventTime(event);
  if (!last.empty()) {
    out["last"] = last;
    if (auto age = AgeSince(last, now)) out["age"] = *age;
  }
  return out;
}

// Puts `items` under `key` in `envelope`, dropping items from the end until the whole fits in
// limits.max_bytes. `more` is set when the server had more, or items were dropped.
json Envelope(json envelope, const char* key, std::vector<json> items, bool server_has_more,
              const SummaryLimits& limits) {
  json probe = envelope;
  probe["count"] = items.size();
  probe[key] = json::array();
  probe["more"] = true;
  probe["omitted"] = items.size();
  size_t used = Dump(probe).size();
  size_t keep = 0;
  for (const auto& item : items) {
    size_t size = Dump(item).size() + 1;  // and a comma
    if (used + size > limits.max_bytes) break;
    used += size;
    ++keep;
  }
  size_t omitted = items.size() - keep;
  items.resize(keep);
  envelope["count"] = keep;
  envelope[key] = std::move(items);
  if (server_has_more || omitted > 0) envelope["more"] = true;
  if (omitted > 0) envelope["omitted"] = omitted;
  return envelope;
}

}  // namespace

std::string FormatAge(std::chrono::seconds age) {
  // kubectl's duration.HumanDuration.
  auto with = [](int64_t major, const char* major_unit, int64_t minor, const char* minor_unit) {
    std::string s = std::to_string(major) + major_unit;
    if (minor != 0) s += std::to_string(minor) + minor_unit;
    return s;
  };
  int64_t s = std::max<int64_t>(age.count(), 0);
  int64_t m = s / 60;
  int64_t h = m / 60;
  int64_t d = h / 24;
  if (s < 120) return std::to_string(s) + "s";
  if (m < 10) return with(m, "m", s % 60, "s");
  if (m < 180) return std::to_string(m) + "m";
  if (h < 8) return with(h, "h", m % 60, "m");
  if (h < 48) return std::to_string(h) + "h";
  if (d < 8) return with(d, "d", h % 24, "h");
  if (d < 730) return std::to_string(d) + "d";
  if (d < 8 * 365) return with(d / 365, "y", d % 365, "d");
  return std::to_string(d / 365) + "y";
}

std::optional<system_clock::time_point> ParseTimestamp(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  auto number = [&](size_t at, size_t len, int& out) {
    if (at + len > text.size()) return false;
    auto [end, ec] = std::from_chars(text.data() + at, text.data() + at + len, out);
    return ec == std::errc() && end == text.data() + at + len;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':' ||
      !number(0, 4, year) || !number(5, 2, month) || !number(8, 2, day) || !number(11, 2, hour) ||
      !number(14, 2, minute) || !number(17, 2, second)) {
    return std::nullopt;
  }
  size_t at = 19;
  std::chrono::nanoseconds fraction{0};
  if (text[at] == '.') {
    ++at;
    int64_t scale = 100'000'000;
    size_t digits = 0;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      if (scale > 0) fraction += std::chrono::nanoseconds((text[at] - '0') * scale);
      scale /= 10;
      ++at;
      ++digits;
    }
    if (digits == 0) return std::nullopt;
  }
  std::chrono::minutes offset{0};
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z') && at + 1 == text.size()) {
    // UTC
  } else if (at + 6 == text.size() && (text[at] == '+' || text[at] == '-') && text[at + 3] == ':') {
    int oh = 0, om = 0;
    if (!number(at + 1, 2, oh) || !number(at + 4, 2, om)) return std::nullopt;
    offset = std::chrono::minutes(oh * 60 + om);
    if (text[at] == '-') offset = -offset;
  } else {
    return std::nullopt;
  }
  std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(month),
                                   std::chrono::day(day)};
  if (!date.ok() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  auto t = std::chrono::sys_days(date) + std::chrono::hours(hour) + std::chrono::minutes(minute) +
           std::chrono::seconds(second) - offset;
  return std::chrono::time_point_cast<system_clock::duration>(t + fraction);
}

json SummarizePods(const json& pod_list, const std::string& namespace_name,
                   system_clock::time_point now, const SummaryLimits& limits) {
  std::vector<json> pods;
  for (const auto& pod : Array(pod_list, {"items"})) {
    pods.push_back(SummarizePod(pod, now, limits));
  }
  bool more = !String(pod_list, {"metadata", "continue"}).empty();
  return Envelope({{"namespace", namespace_name}}, "pods", std::move(pods), more, limits);
}

json SummarizeEvents(const json& event_list, const std::string& namespace_name, size_t limit,
                     system_clock::time_point now, const SummaryLimits& limits) {
  struct Dated {
    system_clock::time_point at;
    bool known;
    const json* event;
  };
  std::vector<Dated> dated;
  for (const auto& e : Array(event_list, {"items"})) {
    auto at = ParseTimestamp(EventTime(e));
    dated.push_back({at.value_or(system_clock::time_point{}), at.has_value(), &e});
  }
  std::stable_sort(dated.begin(), dated.end(), [](const Dated& a, const Dated& b) {
    if (a.known != b.known) return a.known;
    return a.at > b.at;
  });
  bool more = !String(event_list, {"metadata", "continue"}).empty() || dated.size() > limit;
  if (dated.size() > limit) dated.resize(limit);
  std::vector<json> events;
  for (const auto& d : dated) events.push_back(SummarizeEvent(*d.event, now, limits));
  return Envelope({{"namespace", namespace_name}}, "events", std::move(events), more, limits);
}

}  // namespace synaps::k8s
