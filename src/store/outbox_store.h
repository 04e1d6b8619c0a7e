// The transactional outbox: rows written by business transactions, published to NATS by the
// relay (api/outbox_relay.h), then marked and later deleted.
#pragma once

#include <vector>

#include "db/connection.h"
#include "store/run_store.h"

namespace synaps::store {

// Locks up to `limit` unpublished rows (FOR UPDATE SKIP LOCKED, so two relays never publish
// the same row at once and a late-committing lower id is found on a later sweep). Must run
// inside a transaction; the locks hold until it ends.
Result<std::vector<OutboxMessage>> LockUnpublished(db::Connection& conn, int limit);

// Marks rows published. Rows already marked are left alone.
Status MarkPublished(db::Connection& conn, const std::vector<int64_t>& ids);

// Deletes rows published longer than `retention_seconds` ago; returns how many.
Result<int64_t> DeletePublished(db::Connection& conn, int retention_seconds);

// Age in seconds of the oldest unpublished row (0 when none): the outbox lag.
Result<double> OutboxLagSeconds(db::Connection& conn);

}  // namespace synaps::store
