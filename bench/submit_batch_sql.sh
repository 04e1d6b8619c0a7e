#!/usr/bin/env bash
# bench/submit_batch_sql.sh: PostgreSQL's time per batch submit of 1,000 commands and its WAL per
# command. The statement is the one store::SubmitCommands runs (synaps.submit_commands with the
# items the API builds for bench/wrk/submit_batch.lua's body: a hash, no key, one prompt task),
# run BATCHES times in one psql session (after 2 untimed ones) against its own PostgreSQL
# (durable defaults, as bench/submit_wal_probe.sh) in D on PORT. EXTRA_SQL is applied after the
# migrations (to try a change: a migration file). Prints the median, min and max of
# the batches' times (psql \timing), commands/s at the median, the backend's CPU time per batch
# (steadier than wall time when other work shares the cores) and WAL bytes per command between
# two CHECKPOINTs around the session (full-page images included). THREADS=k names one of k
# threads in every command (a conversation imported in bulk: all but the first run of a thread
# wait for it). Not part of `make bench`.
#   BIN=build/src/synaps BATCHES=20 bench/submit_batch_sql.sh
#   EXTRA_SQL=db/migrations/00NN_x.sql bench/submit_batch_sql.sh   # the same with a change
set -eu
BATCHES=${BATCHES:-20}; BATCH=${BATCH:-1000}
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/src/synaps}
. "$(dirname "$0")/lib/private_pg.sh"
private_pg_start "${D:-/tmp/submit_batch_sql}" "${PORT:-55462}" "${PG_OPTS:-}"
private_pg_migrate "$BIN"
CMD=$(prompt_command_sql bulk api)
THREADS=${THREADS:-0}
if [ $THREADS -gt 0 ]; then
  psql -c "CREATE TABLE bench_threads AS SELECT k, synaps.uuid_v7() AS id FROM generate_series(0, $THREADS - 1) k"
  psql -c "INSERT INTO synaps.threads (id, tenant_id) SELECT id, 'bench' FROM bench_threads"
  CMD="$CMD || jsonb_build_object('threadId', (SELECT id FROM bench_threads WHERE k = g % $THREADS))"
fi
ITEMS=$(psql -c "SELECT jsonb_agg(jsonb_build_object('hash', repeat('0', 64), 'command', $CMD) ORDER BY g) FROM generate_series(1, $BATCH) g")
printf "SELECT count(*) FROM synaps.submit_commands('bench', 'admin', '%s'::jsonb);\n" "$ITEMS" > $D/batch.sql
# One session: the backend's CPU time around the timed batches (utime + stime of /proc/self/stat,
# read by the backend itself; fields 14 and 15 are 12 and 13 after the name) and each batch's
# time (psql \timing).
CPU="SELECT 'cpu_ms ' || (f[12]::bigint + f[13]::bigint) * 10 FROM (SELECT string_to_array(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ') AS f) s"
{ echo "$CPU;"; cat $D/batch.sql; cat $D/batch.sql; echo "$CPU;"; echo "\\timing on"
  for b in $(seq 1 $BATCHES); do cat $D/batch.sql; done; echo "\\timing off"; echo "$CPU;"; } > $D/session.sql
psql -c "CHECKPOINT"
L0=$(psql -c "SELECT pg_current_wal_lsn()")
psql -f $D/session.sql > $D/session.out
psql -c "CHECKPOINT"
L1=$(psql -c "SELECT pg_current_wal_lsn()")
WAL=$(psql -c "SELECT (pg_wal_lsn_diff('$L1','$L0'))::bigint / ($BATCHES + 2) / $BATCH")
CPU_MS=$(sed -n 's/^cpu_ms //p' $D/session.out | tail -2 | tr '\n' ' ' | awk -v n=$BATCHES '{ printf "%.0f", ($2 - $1) / n }')
sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' $D/session.out | sort -n | awk -v b=$BATCH -v wal=$WAL -v cpu=$CPU_MS -v th=$THREADS '
  { v[NR] = $1 }
  END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "threads=%d batches=%d batch_ms median=%.1f min=%.1f max=%.1f commands/s=%.0f backend_cpu_ms/batch=%d wal_B/command=%d\n",
               th, NR, m, v[1], v[NR], b * 1000 / m, cpu, wal }'
