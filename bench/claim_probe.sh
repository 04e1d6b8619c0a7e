#!/usr/bin/env bash
# bench/claim_probe.sh: the time of one single-item claim (synaps.claim_queue_items), timed by
# pgbench (commit included) and by the server (pg_stat_statements, the statement alone), on an
# otherwise empty database with PARTITIONS extra daily ledger partitions (empty ones, made with
# synaps.ensure_ledger_partition for the days before today). EXTRA_SQL is applied after the
# migrations (a trial migration). Four batches of 400 claims from a queue of 500 each. Not part
# of `make bench`; the history benchmark measures claims with a real history.
#   PARTITIONS=180 BIN=build/src/synaps bench/claim_probe.sh
set -eu
PARTITIONS=${PARTITIONS:-0}
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/src/synaps}
. "$(dirname "$0")/lib/private_pg.sh"
private_pg_start "${D:-/tmp/claim_probe}" "${PORT:-55472}" \
  '-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all'
private_pg_migrate "$BIN"
psql -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
if [ "$PARTITIONS" -gt 0 ]; then
  psql -c "SELECT count(synaps.ensure_ledger_partition(d::date)) FROM generate_series(now() -
           interval '$PARTITIONS days', now() - interval '1 day', interval '1 day') d" >/dev/null
fi
echo "ledger partitions: $(psql -c "SELECT count(*) FROM pg_inherits
                                     WHERE inhparent = 'synaps.ledger_events'::regclass")"
CMD=$(prompt_command_sql hello)
echo "SELECT item_id FROM synaps.claim_queue_items('probe', ARRAY['default'], 1, 300);" > "$D/claim.sql"
for batch in 1 2 3 4; do
  psql -c "SELECT count(synaps.submit_command('bench', 'bench', NULL, md5(random()::text), $CMD))
             FROM generate_series(1, 500) g" >/dev/null
  psql -c "VACUUM ANALYZE synaps.queue_items" >/dev/null
  psql -c "CHECKPOINT"
  psql -c "SELECT pg_stat_statements_reset()" >/dev/null
  client=$(/usr/lib/postgresql/15/bin/pgbench -n -M prepared -t 400 -c 1 -f "$D/claim.sql" "$U" 2>&1 |
    sed -n 's/latency average = //p')
  server=$(psql -c "SELECT round((total_exec_time / calls)::numeric, 3) FROM pg_stat_statements
                     WHERE query ~ '^SELECT item_id FROM synaps.claim_queue_items'")
  echo "batch $batch: client $client, statement $server ms"
  psql -c "DELETE FROM synaps.queue_items" >/dev/null
done
