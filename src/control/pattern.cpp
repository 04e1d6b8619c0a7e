#include "control/pattern.h"

#include <re2/re2.h>

#include <memory>
#include <unordered_map>

namespace synaps::control {
namespace {

RE2::Options Options() {
  RE2::Options o;
  o.set_log_errors(false);
  o.set_max_mem(8 << 20);  // bounds the compiled program of an outsized pattern
  return o;
}

// Patterns come from the control snapshot, so a worker sees few distinct ones; the cache is
// cleared when it grows past a bound rather than tracking use.
const RE2& Compiled(std::string_view pattern) {
  thread_local std::unordered_map<std::string, std::unique_ptr<RE2>> cache;
  auto it = cache.find(std::string(pattern));
  if (it != cache.end()) return *it->second;
  if (cache.size() >= 512) cache.clear();
  auto re = std::make_unique<RE2>(re2::StringPiece(pattern.data(), pattern.size()), Options());
  return *cache.emplace(std::string(pattern), std::move(re)).first->second;
}

}  // namespace

Status CheckPattern(std::string_view pattern) {
  RE2 re(re2::StringPiece(pattern.data(), pattern.size()), Options());
  if (!re.ok()) return Fail(ErrorCode::kInvalidArgument, "does not compile: " + re.error());
  return Ok();
}

bool PatternFound(std::string_view pattern, std::string_view text) {
  const RE2& re = Compiled(pattern);
  if (!re.ok()) return false;
  return RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), re);
}

}  // namespace synaps::control
