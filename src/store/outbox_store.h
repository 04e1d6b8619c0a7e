// The transactional outbox: rows written by business transactions, published to NATS by the
// relay (api/outbox_relay.h), then deleted: a row exists only until JetStream has
// acknowledged it (re-publishes are dropped by its Nats-Msg-Id de-duplication).
#pragma once

#include <vector>

#include "db/connection.h"
#include "store/run_store.h"

namespace synaps::store {

// Locks up to `limit` unpublished rows (FOR UPDATE SKIP LOCKED, so two relays never publish
// the same row at once and a late-committing lower id is found on a later sweep). Must run
// inside a transaction; the locks hold until it ends.
Result<std::vector<OutboxMessage>> LockUnpublished(db::Connection& conn, int limit);

// Deletes rows that were published. Ids already gone are ignored (another relay's sweep and the
// handing API may both publish a row; JetStream stores it once).
Status DeletePublished(db::Connection& conn, const std::vector<int64_t>& ids);

// Deletes rows marked published (`published_at` set) more than `retention_seconds` ago; returns
// how many. Earlier releases marked rows published and kept them for a retention period; this
// clears what they left, during and after an upgrade.
Result<int64_t> DeleteMarkedPublished(db::Connection& conn, int retention_seconds);

// Age in seconds of the oldest unpublished row (0 when none): the outbox lag.
Result<double> OutboxLagSeconds(db::Connection& conn);

}  // namespace synaps::store
