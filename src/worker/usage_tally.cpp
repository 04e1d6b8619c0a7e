#include "worker/usage_tally.h"

namespace synaps::worker {

namespace {

uint64_t Count(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) return v.get<int64_t>() > 0 ? static_cast<uint64_t>(v.get<int64_t>()) : 0;
  return 0;
}

// A label value from what a provider reported: printable ASCII, at most 100 bytes.
std::string LabelValue(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (out.size() == 100) break;
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

}  // namespace

void UsageTally::Add(const std::string& tenant, const nlohmann::json& output) {
  if (!output.is_object()) return;
  std::string model = output.contains("model") && output["model"].is_string()
                          ? LabelValue(output["model"].get<std::string>())
                          : "";
  const nlohmann::json usage = output.value("usage", nlohmann::json::object());
  std::lock_guard lock(mu_);
  Key key{tenant, model};
  if (!totals_.contains(key) && totals_.size() >= kMaxSeries) key = {"other", "other"};
  UsageTotals& t = totals_[key];
  t.tasks += 1;
  if (usage.is_object()) {
    t.prompt_tokens += Count(usage.value("promptTokens", nlohmann::json()));
    t.completion_tokens += Count(usage.value("completionTokens", nlohmann::json()));
  }
  if (auto c = output.find("costUsd"); c != output.end() && c->is_number() && c->get<double>() > 0) {
    t.cost_usd += c->get<double>();
  }
}

std::map<UsageTally::Key, UsageTotals> UsageTally::Snapshot() const {
  std::lock_guard lock(mu_);
  return totals_;
}

}  // namespace synaps::worker
