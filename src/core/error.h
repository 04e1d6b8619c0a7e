// Expected failures as values: Result<T>, a std::expected<T, Error> that must not be ignored.
// Exceptions are reserved for startup/configuration errors (ConfigError) and bugs.
#pragma once

#include <expected>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace synaps {

enum class ErrorCode {
  kInvalidArgument,     // the caller sent something malformed
  kNotFound,            // no such thing (or not visible to this tenant)
  kAlreadyExists,       // unique constraint
  kConflict,            // state does not allow it (finished run, idempotency key reuse)
  kLeaseLost,           // fencing: the presented lease epoch is not current
  kUnauthenticated,     // no or bad credentials
  kPermissionDenied,    // authenticated, but the role does not allow it
  kResourceExhausted,   // limits: body size, rate
  kUnavailable,         // a dependency is down or the connection broke; retryable
  kDeadlineExceeded,    // a timeout
  kCancelled,           // the work was cancelled
  kInternal,            // a bug or an unexpected reply
};

// Stable lower-case name, used in JSON errors and logs ("invalid_argument", ...).
std::string_view ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message;
  // For kInvalidArgument: the JSON path or setting at fault, when known.
  std::string field;

  // True when trying again later may succeed (kUnavailable, kDeadlineExceeded).
  bool retryable() const {
    return code == ErrorCode::kUnavailable || code == ErrorCode::kDeadlineExceeded;
  }
};

// A value or an Error. [[nodiscard]]: a result that is dropped is a failure nobody hears of;
// to ignore one on purpose, cast it to (void) with a comment saying why. Behaves as
// std::expected<T, Error> (it is one), and converts from one.
template <class T>
class [[nodiscard]] Result : public std::expected<T, Error> {
 public:
  using Base = std::expected<T, Error>;
  using Base::Base;
  using Base::operator=;
  Result() = default;
  Result(const Base& other) : Base(other) {}
  Result(Base&& other) : Base(std::move(other)) {}
};
using Status = Result<void>;

inline std::unexpected<Error> Fail(ErrorCode code, std::string message, std::string field = {}) {
  return std::unexpected(Error{code, std::move(message), std::move(field)});
}
inline Status Ok() { return {}; }

// Thrown only while starting up, for configuration that cannot work. The message names the
// setting and the fix.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace synaps

#define SYNAPS_CONCAT_INNER(a, b) a##b
#define SYNAPS_CONCAT(a, b) SYNAPS_CONCAT_INNER(a, b)

// Returns the error of `expr` (a Result or Status) from the enclosing function.
#define RETURN_IF_ERROR(expr)                                          \
  do {                                                                 \
    auto&& synaps_status_ = (expr);                                    \
    if (!synaps_status_) return std::unexpected(synaps_status_.error()); \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, Compute());` binds the value or returns the error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(SYNAPS_CONCAT(synaps_result_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)              \
  auto tmp = (expr);                                       \
  if (!tmp) return std::unexpected(std::move(tmp.error())); \
  lhs = std::move(*tmp)
