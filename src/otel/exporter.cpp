#include "otel/exporter.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdlib>

#include "core/barrier.h"
#include "core/config.h"
#include "core/http_grammar.h"
#include "core/utf8.h"
#include "http/client.h"

namespace synaps::otel {

using nlohmann::json;

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string Trim(std::string s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// "%20" and friends in OTEL_* list values (W3C Baggage octets).
std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// "k1=v1,k2=v2" → pairs; kInvalidArgument naming `variable` for an entry without '='.
Result<std::vector<std::pair<std::string, std::string>>> KeyValues(const std::string& text,
                                                                   const char* variable) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& item : config::SplitList(text)) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || Trim(item.substr(0, eq)).empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  std::string(variable) + ": expected key=value pairs separated by commas");
    }
    out.emplace_back(PercentDecode(Trim(item.substr(0, eq))),
                     PercentDecode(Trim(item.substr(eq + 1))));
  }
  return out;
}

// The request body is written straight into one string: building a JSON tree per span cost
// more CPU than the work the span describes (make bench, "Span export").

// `text` as a JSON string: quotes, backslashes and control characters escaped; invalid UTF-8
// replaced (core/utf8.h).
void AppendString(std::string& out, std::string_view text) {
  std::string repaired;
  for (unsigned char c : text) {
    if (c >= 0x80) {
      repaired = ValidUtf8(text);
      text = repaired;
      break;
    }
  }
  out.push_back('"');
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

// An OTLP AnyValue: strings, booleans, integers (as decimal strings, as OTLP/JSON wants
// int64) and doubles; any other JSON is sent as its text.
void AppendAnyValue(std::string& out, const json& v) {
  if (v.is_string()) {
    out += "{\"stringValue\":";
    AppendString(out, v.get_ref<const std::string&>());
  } else if (v.is_boolean()) {
    out += v.get<bool>() ? "{\"boolValue\":true" : "{\"boolValue\":false";
  } else if (v.is_number_integer()) {
    out += "{\"intValue\":\"" + std::to_string(v.get<int64_t>()) + "\"";
  } else if (v.is_number_unsigned()) {
    out += "{\"intValue\":\"" + std::to_string(v.get<uint64_t>()) + "\"";
  } else if (v.is_number_float()) {
    double d = v.get<double>();
    out += "{\"doubleValue\":";
    out += std::isfinite(d) ? json(d).dump() : "0";
  } else {
    out += "{\"stringValue\":";
    AppendString(out, v.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  out.push_back('}');
}

void AppendAttributes(std::string& out,
                      const std::vector<std::pair<std::string, json>>& attributes) {
  out.push_back('[');
  for (size_t i = 0; i < attributes.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += "{\"key\":";
    AppendString(out, attributes[i].first);
    out += ",\"value\":";
    AppendAnyValue(out, attributes[i].second);
    out.push_back('}');
  }
  out.push_back(']');
}

void AppendSpan(std::string& out, const Span& s) {
  out += "{\"traceId\":";
  AppendString(out, s.trace_id);
  out += ",\"spanId\":";
  AppendString(out, s.span_id);
  if (!s.parent_span_id.empty()) {
    out += ",\"parentSpanId\":";
    AppendString(out, s.parent_span_id);
  }
  out += ",\"name\":";
  AppendString(out, s.name);
  out += ",\"kind\":" + std::to_string(static_cast<int>(s.kind));
  out += ",\"startTimeUnixNano\":\"" + std::to_string(s.start_unix_nano) + "\"";
  out += ",\"endTimeUnixNano\":\"" + std::to_string(s.end_unix_nano) + "\"";
  out += ",\"attributes\":";
  AppendAttributes(out, s.attributes);
  if (s.error) {
    out += ",\"status\":{\"code\":2,\"message\":";
    AppendString(out, s.status_message);
    out += "}}";
  } else {
    out += ",\"status\":{\"code\":1}}";
  }
}

}  // namespace

int64_t NowUnixNano() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Span StartSpan(const TraceContext& ctx, std::string parent_span_id, std::string name,
               SpanKind kind) {
  Span s;
  s.trace_id = ctx.trace_id;
  s.span_id = ctx.span_id;
  s.parent_span_id = std::move(parent_span_id);
  s.name = std::move(name);
  s.kind = kind;
  s.start_unix_nano = NowUnixNano();
  return s;
}

Result<SamplerConfig> SamplerConfig::Parse(const std::string& name, const std::string& arg) {
  SamplerConfig c;
  std::string n = name.empty() ? "parentbased_always_on" : name;
  c.parent_based = n.rfind("parentbased_", 0) == 0;
  std::string root = c.parent_based ? n.substr(12) : n;
  if (root == "always_on") {
    c.root = Root::kOn;
  } else if (root == "always_off") {
    c.root = Root::kOff;
  } else if (root == "traceidratio") {
    c.root = Root::kRatio;
    char* end = nullptr;
    c.ratio = arg.empty() ? 1.0 : std::strtod(arg.c_str(), &end);
    if ((!arg.empty() && (end == nullptr || *end != '\0')) || !(c.ratio >= 0 && c.ratio <= 1)) {
      return Fail(ErrorCode::kInvalidArgument,
                  "OTEL_TRACES_SAMPLER_ARG: a ratio between 0 and 1, got '" + arg + "'");
    }
  } else {
    return Fail(ErrorCode::kInvalidArgument,
                "OTEL_TRACES_SAMPLER: one of always_on, always_off, traceidratio, "
                "parentbased_always_on, parentbased_always_off, parentbased_traceidratio; got '" +
                    name + "'");
  }
  return c;
}

bool SamplerConfig::SampleRoot(const std::string& trace_id) const {
  switch (root) {
    case Root::kOn:
      return true;
    case Root::kOff:
      return false;
    case Root::kRatio: {
      if (trace_id.size() != 32) return false;
      uint64_t low = std::stoull(trace_id.substr(16), nullptr, 16);
      return static_cast<double>(low) < ratio * 18446744073709551616.0;
    }
  }
  return false;
}

Exporter::Exporter(ExporterOptions options) : options_(std::move(options)) {
  // The thread's barrier: a batch that throws is logged and lost; the loop goes on.
  thread_ = std::thread([this] {
    while (!Guarded("otel exporter", [this] { Loop(); })) {
    }
  });
}

Exporter::~Exporter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<std::unique_ptr<Exporter>> Exporter::FromEnvironment(const std::string& service_name) {
  std::string exporter = Env("OTEL_TRACES_EXPORTER");
  if (exporter == "none") return std::unique_ptr<Exporter>();
  if (!exporter.empty() && exporter != "otlp") {
    return Fail(ErrorCode::kInvalidArgument,
                "OTEL_TRACES_EXPORTER: otlp or none, got '" + exporter + "'");
  }
  std::string protocol = Env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
  if (protocol.empty()) protocol = Env("OTEL_EXPORTER_OTLP_PROTOCOL");
  if (!protocol.empty() && protocol != "http/json") {
    return Fail(ErrorCode::kInvalidArgument,
                "OTEL_EXPORTER_OTLP_PROTOCOL: Synaps sends http/json only, got '" + protocol +
                    "'");
  }
  ExporterOptions o;
  o.url = Env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  if (o.url.empty()) {
    std::string base = Env("OTEL_EXPORTER_OTLP_ENDPOINT");
    if (base.empty()) return std::unique_ptr<Exporter>();
    while (!base.empty() && base.back() == '/') base.pop_back();
    o.url = base + "/v1/traces";
  }
  if (o.url.rfind("http://", 0) != 0 && o.url.rfind("https://", 0) != 0) {
    return Fail(ErrorCode::kInvalidArgument,
                "OTEL_EXPORTER_OTLP_ENDPOINT: an http:// or https:// URL, got '" + o.url + "'");
  }
  for (const char* var : {"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"}) {
    ASSIGN_OR_RETURN(auto headers, KeyValues(Env(var), var));
    for (const auto& [k, v] : headers) {
      // The values reach an HTTP request: refuse what would split it.
      if (!IsHttpToken(k) || !IsSafeHeaderValue(v)) {
        return Fail(ErrorCode::kInvalidArgument,
                    std::string(var) + ": '" + k + "' is not a valid header");
      }
      o.headers.push_back(k + ": " + v);
    }
  }
  if (std::string t = Env("OTEL_EXPORTER_OTLP_TIMEOUT"); !t.empty()) {
    char* end = nullptr;
    long ms = std::strtol(t.c_str(), &end, 10);
    if (end == nullptr || *end != '\0' || ms <= 0 || ms > 600000) {
      return Fail(ErrorCode::kInvalidArgument,
                  "OTEL_EXPORTER_OTLP_TIMEOUT: milliseconds in 1..600000, got '" + t + "'");
    }
    o.timeout = std::chrono::milliseconds(ms);
  }
  ASSIGN_OR_RETURN(auto attributes,
                   KeyValues(Env("OTEL_RESOURCE_ATTRIBUTES"), "OTEL_RESOURCE_ATTRIBUTES"));
  for (const auto& [k, v] : attributes) o.resource[k] = v;
  std::string name = Env("OTEL_SERVICE_NAME");
  o.resource["service.name"] = !name.empty()                      ? name
                               : o.resource.contains("service.name") ? o.resource["service.name"]
                                                                     : service_name;
  ASSIGN_OR_RETURN(SamplerConfig sampler, SamplerConfig::Parse(Env("OTEL_TRACES_SAMPLER"),
                                                               Env("OTEL_TRACES_SAMPLER_ARG")));
  auto out = std::make_unique<Exporter>(std::move(o));
  out->set_sampler(sampler);
  return out;
}

void Exporter::Export(Span span) {
  {
    std::lock_guard lock(mu_);
    if (stop_ || queue_.size() >= options_.max_queue) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(std::move(span));
    if (queue_.size() < options_.max_batch) return;
  }
  cv_.notify_one();
}

void Exporter::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait_for(lock, options_.interval,
                 [&] { return stop_ || queue_.size() >= options_.max_batch; });
    while (!queue_.empty()) {
      std::vector<Span> batch;
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      lock.unlock();
      bool sent = Send(std::move(batch));
      lock.lock();
      if (stop_ && !sent) {
        // Stopping with the collector failing: one timeout is enough to wait at exit.
        dropped_.fetch_add(queue_.size(), std::memory_order_relaxed);
        queue_.clear();
      }
      if (!stop_ && queue_.size() < options_.max_batch) break;
    }
    if (stop_ && queue_.empty()) return;
  }
}

bool Exporter::Send(std::vector<Span> batch) {
  http::RequestOptions req{.method = "POST",
                           .url = options_.url,
                           .headers = options_.headers,
                           .body = EncodeText(batch, options_.resource),
                           .timeout = options_.timeout};
  req.headers.push_back("Content-Type: application/json");
  auto r = http::Send(req);
  if (r && r->status / 100 == 2) {
    exported_.fetch_add(batch.size(), std::memory_order_relaxed);
    return true;
  }
  dropped_.fetch_add(batch.size(), std::memory_order_relaxed);
  // Once per failing run of batches is enough for a person; the counter has the rest.
  if (failed_batches_.fetch_add(1, std::memory_order_relaxed) % 100 == 0) {
    spdlog::warn("otel: {} spans not exported to {}: {}", batch.size(), options_.url,
                 r ? "HTTP " + std::to_string(r->status) : r.error().message);
  }
  return false;
}

std::string Exporter::EncodeText(const std::vector<Span>& spans,
                                 const std::map<std::string, std::string>& resource) {
  std::string out;
  out.reserve(256 + spans.size() * 512);
  out += "{\"resourceSpans\":[{\"resource\":{\"attributes\":[";
  bool first = true;
  for (const auto& [k, v] : resource) {
    if (!first) out.push_back(',');
    first = false;
    out += "{\"key\":";
    AppendString(out, k);
    out += ",\"value\":{\"stringValue\":";
    AppendString(out, v);
    out += "}}";
  }
  out += "]},\"scopeSpans\":[{\"scope\":{\"name\":\"synaps\"},\"spans\":[";
  for (size_t i = 0; i < spans.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendSpan(out, spans[i]);
  }
  out += "]}]}]}";
  return out;
}

json Exporter::Encode(const std::vector<Span>& spans,
                      const std::map<std::string, std::string>& resource) {
  return json::parse(EncodeText(spans, resource));
}

}  // namespace synaps::otel
