// Exception barriers for thread entries (docs/reliability.md, "Bus and thread barriers").
//
// Expected failures are values (core/error.h); an exception that reaches the entry of a thread
// (a pool job, a NATS callback, an Asio handler) is a bug or an unexpected value from outside.
// It must fail the one job it belongs to, never the thread or the process: `Guarded` runs a job
// and turns what it throws into a kInternal error, logged at error level with the job's
// context; `RunGuarded` keeps an event loop serving when one of its handlers throws.
//
//   Status put = Guarded("upload of task " + id, [&] { return store.Put(key, bytes); });
//   RunGuarded("worker event loop", io);
#pragma once

#include <exception>
#include <expected>
#include <string_view>
#include <type_traits>
#include <utility>

#include "core/error.h"

namespace synaps {

// Logs an exception caught at a barrier (error level, naming `context`) and returns the error
// the barrier hands on: kInternal, "<context> failed: <what>". Never throws.
Error ThrownError(std::string_view context, std::string_view what) noexcept;

// What the exception in flight says (std::exception::what(), or a fixed text for others). Call
// only inside a catch block.
std::string_view CurrentExceptionText() noexcept;

namespace detail {
template <class T>
struct IsResult : std::false_type {};
template <class T>
struct IsResult<Result<T>> : std::true_type {};
template <class T>
struct IsResult<std::expected<T, Error>> : std::true_type {};

// Result<T> and Status stay as they are; void becomes Status; any other T becomes Result<T>.
template <class R>
using GuardedResult = std::conditional_t<IsResult<R>::value, R,
                                         std::conditional_t<std::is_void_v<R>, Status, Result<R>>>;
}  // namespace detail

// Runs `fn()` and returns its result; if it throws, the exception is logged with `context` and
// returned as a kInternal error instead. Thread-safe as far as `fn` is.
template <class Fn>
detail::GuardedResult<std::invoke_result_t<Fn&>> Guarded(std::string_view context, Fn&& fn) {
  using R = std::invoke_result_t<Fn&>;
  using Out = detail::GuardedResult<R>;
  try {
    if constexpr (std::is_void_v<R>) {
      fn();
      return Out();
    } else {
      return Out(fn());
    }
  } catch (...) {
    return Out(std::unexpected(ThrownError(context, CurrentExceptionText())));
  }
}

// Runs `loop.run()` (an Asio io_context, or anything with run()) until it returns normally. A
// handler that throws is logged with `context` and the loop runs on with its next handler (Asio
// allows run() to be called again after an exception without restart()).
template <class Loop>
void RunGuarded(std::string_view context, Loop& loop) {
  while (true) {
    try {
      loop.run();
      return;
    } catch (...) {
      (void)ThrownError(context, CurrentExceptionText());  // logged; the loop goes on
    }
  }
}

}  // namespace synaps
