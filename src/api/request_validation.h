// Parsing and validation of request bodies: pure functions over bytes, no I/O, so they are
// fuzzed directly (tests/fuzz). Errors are kInvalidArgument with `field` naming the JSON path.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "store/run_store.h"

namespace synaps::api {

// Deepest nesting of arrays/objects accepted in a body.
inline constexpr int kMaxJsonDepth = 32;

// True for application/json (any case, with or without parameters such as charset).
bool IsJsonContentType(const std::string& content_type);

// Parses `body` as a JSON object: malformed JSON, invalid UTF-8, nesting deeper than
// kMaxJsonDepth and non-objects are refused.
Result<nlohmann::json> ParseJsonObject(const std::string& body);

// Validates a submit body and turns it into a store request (tenant and actor left empty).
// Unknown fields, wrong types and out-of-range values are refused, naming the field.
Result<store::SubmitRequest> ParseSubmitRequest(const std::string& body);

// ParseSubmitRequest's checks over a body already parsed as a JSON object.
Result<store::SubmitRequest> ParseSubmitCommand(const nlohmann::json& body);

// An Idempotency-Key header's value (submit, retry): as sent, "" when absent; kInvalidArgument
// naming the header when longer than `max` characters (255, less what a route appends per
// item: a bulk retry's "/<run id>").
Result<std::string> IdempotencyKeyHeader(const std::string& value, size_t max = 255);

// The most commands one batch submit may hold.
inline constexpr size_t kMaxBatchCommands = 1000;

// True for a batch submit body: a JSON object with a "commands" member (docs/api.md, "Batch
// submit"). A single submit has no such field.
bool IsBatchSubmit(const nlohmann::json& body);

// One command of a batch: the store request (idempotency key set, tenant and actor left empty)
// when it is valid, else the reason it is not (its field relative to the item: "input.text").
struct BatchItem {
  std::optional<store::SubmitRequest> request;
  std::optional<Error> error;
};

// {"commands": [item, ...]} with 1..kMaxBatchCommands items; an item is a submit body plus an
// optional "idempotencyKey" (1..255 characters). An item without one gets
// "<request_key>/<index>" when `request_key` (the Idempotency-Key header) is not empty.
// kInvalidArgument for the batch itself (not an array, empty, too many, unknown fields, a
// request key over 248 characters); an item's own mistakes are only that item's error. An item
// whose JSON is longer than `max_item_bytes` (when not 0: the body limit of a single submit) is
// refused as that item's kResourceExhausted, so a batch cannot carry a command a single submit
// could not.
Result<std::vector<BatchItem>> ParseSubmitBatch(const nlohmann::json& body,
                                                const std::string& request_key,
                                                size_t max_item_bytes = 0);

// A schedule spec's `command` (docs/schedules.md) is a submit body: checked as ParseSubmitRequest
// checks one, with fields named from the spec ("spec.command.input"). Specs without an object
// command pass: the spec's own validator names that mistake.
Status ValidateScheduleCommand(const nlohmann::json& spec);

// POST /v1/queue/claim: {worker?, queues?, limit?, leaseSeconds?}.
struct ClaimRequest {
  std::string worker = "remote";                 // lease owner label
  std::vector<std::string> queues{"default"};
  int limit = 1;                                 // 1..100
  int lease_seconds = 30;                        // 1..3600
};
Result<ClaimRequest> ParseClaimRequest(const std::string& body);

// POST /v1/queue/items/{id}/renew: {leaseEpoch, leaseSeconds?}.
struct RenewRequest {
  int64_t lease_epoch = 0;
  int lease_seconds = 30;
};
Result<RenewRequest> ParseRenewRequest(const std::string& body);

// POST /v1/queue/items/{id}/complete: {leaseEpoch, output?, artifacts?: [{name, contentType?,
// content | contentBase64}]}. Artifact bytes are decoded here.
struct ArtifactUpload {
  std::string name;
  std::string content_type;
  std::string bytes;
};
struct CompleteRequest {
  int64_t lease_epoch = 0;
  nlohmann::json output = nlohmann::json::object();
  std::vector<ArtifactUpload> artifacts;
};
Result<CompleteRequest> ParseCompleteRequest(const std::string& body);

// POST /v1/queue/items/{id}/fail: {leaseEpoch, error: {code?, message}, retryable?}.
struct FailRequest {
  int64_t lease_epoch = 0;
  nlohmann::json error;
  bool retryable = true;
};
Result<FailRequest> ParseFailRequest(const std::string& body);

// POST /v1/api-keys: {role, tenantId?, name?}.
struct ApiKeyRequest {
  std::string role;
  std::optional<std::string> tenant_id;
  std::string name;
  bool installation = false;  // grant the installation scope (only an installation caller may)
};
Result<ApiKeyRequest> ParseApiKeyRequest(const std::string& body);

}  // namespace synaps::api
