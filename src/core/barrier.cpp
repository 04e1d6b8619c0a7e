#include "core/barrier.h"

#include <spdlog/spdlog.h>

#include <string>

namespace synaps {

Error ThrownError(std::string_view context, std::string_view what) noexcept {
  try {
    spdlog::error("{} threw: {}; it fails with an internal error and its thread goes on", context,
                  what);
    return Error{ErrorCode::kInternal, std::string(context) + " failed: " + std::string(what), {}};
  } catch (...) {
    // Out of memory while reporting: the error without its text still fails the job alone.
    return Error{ErrorCode::kInternal, {}, {}};
  }
}

std::string_view CurrentExceptionText() noexcept {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

}  // namespace synaps
