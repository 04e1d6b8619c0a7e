// The messages Synaps publishes on NATS, and typed parsers for them. Anything on the bus may
// come from another release or from any client with bus access, so a parser never throws and
// never trusts a type: a payload that is not what it should be is a kInvalidArgument error
// naming the field, which the subscriber hands back to the bus (the bus then counts and drops
// the message; bus/bus.h).
//
//   synaps.wakeup.<queue>  {"queue": string, "runId": string}         new work in <queue>
//   synaps.run.<run_id>    {"type": "run.cancelled", "runId": string} the run was cancelled
//   synaps.ctrl.<kind>     {"kind"?, "name"?: string, "version"?: int, "snapshotVersion": int}
//
// A run's other outcomes (succeeded, failed, awaiting approval) are not published (migration
// 0046): they are ledger events, read through GET /v1/events or a run's event stream
// (docs/queue.md, "What the bus carries"). A release before 0046 also sent those on
// synaps.run.<run_id>; subscribers ignore types they do not act on.
//
// Fields not listed are ignored (a newer release may add some).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"

namespace synaps::bus {

// Payloads larger than this are dropped unread (Synaps's own are a few hundred bytes).
constexpr size_t kMaxPayloadBytes = 64 * 1024;

struct WakeupMessage {
  std::string queue;
  std::string run_id;
};

struct RunMessage {
  std::string type;  // "run.cancelled" (older releases sent other types too)
  std::string run_id;
};

struct ControlMessage {
  int64_t snapshot_version = 0;  // the control registry's version after the change (>= 1)
  std::string kind;              // "" when absent
  std::string name;              // "" when absent
};

Result<WakeupMessage> ParseWakeupMessage(std::string_view payload);
Result<RunMessage> ParseRunMessage(std::string_view payload);
Result<ControlMessage> ParseControlMessage(std::string_view payload);

// The label a subject is counted under: its first two tokens and a wildcard
// ("synaps.ctrl.prompts" -> "synaps.ctrl.*"), or the subject itself when it has two tokens or
// fewer. Subscriptions name a handful of families, so the label's cardinality stays bounded.
std::string SubjectFamily(std::string_view subject);

}  // namespace synaps::bus
