#!/usr/bin/env bash
# bench/wal_probe.sh: write-ahead log per task, by phase and by relation (issue #13's profile).
# Submits N tasks with synaps.submit_command in bulk SQL, drains them with one `synaps worker`
# (local provider, zero latency), and prints WAL bytes per task for each phase plus the drain's
# WAL by relation (pg_waldump; autovacuum's share included). Runs its own PostgreSQL (durable
# defaults) and nats-server in D (default /tmp/walprobe) on PORT/NATS_PORT. Not part of `make bench`.
#   N=5000 BIN=build/src/synaps bench/wal_probe.sh
set -euo pipefail
N=${N:-5000}
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/src/synaps}
. "$(dirname "$0")/lib/private_pg.sh"
private_pg_start "${D:-/tmp/walprobe}" "${PORT:-55432}"
PRIVATE_PG_ON_EXIT='kill $NATSPID 2>/dev/null || true'
nats-server -js -p ${NATS_PORT:-54222} -sd $D/nats >/dev/null 2>&1 & NATSPID=$!
private_pg_migrate "$BIN"
psql -c "CHECKPOINT"
L0=$(psql -c "SELECT pg_current_wal_lsn()")
CMD=$(prompt_command_sql hello)
psql -c "SELECT count(synaps.submit_command('bench', 'bench', NULL, md5(g::text), $CMD)) FROM generate_series(1,$N) g" >/dev/null
psql -c "CHECKPOINT"
L1=$(psql -c "SELECT pg_current_wal_lsn()")
mkdir -p $D/objects
SYNAPS_DATABASE_URL=$U SYNAPS_NATS_URL=nats://127.0.0.1:${NATS_PORT:-54222} SYNAPS_OBJECT_STORE=file://$D/objects $BIN worker > $D/worker.log 2>&1 & W=$!
t0=$(date +%s.%N)
while [ "$(psql -c "SELECT count(*) FROM synaps.runs WHERE status='succeeded'")" -lt "$N" ]; do sleep 0.2; done
t1=$(date +%s.%N)
kill $W; wait $W || true
L2=$(psql -c "SELECT pg_current_wal_lsn()")
SUB=$(psql -c "SELECT (pg_wal_lsn_diff('$L1','$L0'))::bigint / $N")
DRN=$(psql -c "SELECT (pg_wal_lsn_diff('$L2','$L1'))::bigint / $N")
echo "N=$N submit WAL/task=$SUB drain WAL/task=$DRN total=$((SUB+DRN)) drain_s=$(echo "$t1-$t0" | bc)"
psql -c "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables WHERE schemaname='synaps' AND (n_tup_ins+n_tup_upd+n_tup_del)>0 ORDER BY 1"


# Per relation: WAL bytes (record + full-page images) per task during the drain.
wal_by_relation "$L1" "$L2" $N | head -25
