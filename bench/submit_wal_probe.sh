#!/usr/bin/env bash
# bench/submit_wal_probe.sh: write-ahead log per command at submit, by relation, and where the
# submit's SQL time goes (pg_stat_statements, nested statements included). MODE=single runs
# synaps.submit_command once per command (N in one SQL statement), MODE=batch runs
# synaps.submit_commands with 1,000 commands per statement. Its own PostgreSQL (durable
# defaults) in D on PORT; EXTRA_SQL is applied after the migrations (to try a change). Not part
# of `make bench`; bench/wal_probe.sh measures submit + drain.
#   MODE=batch N=5000 BIN=build/src/synaps bench/submit_wal_probe.sh
set -eu
N=${N:-5000}; MODE=${MODE:-single}
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/src/synaps}
. "$(dirname "$0")/lib/private_pg.sh"
private_pg_start "${D:-/tmp/submit_wal_probe}" "${PORT:-55461}" \
  '-c wal_keep_size=2GB -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all'
private_pg_migrate "$BIN"
psql -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" 
CMD=$(prompt_command_sql hello)
psql -c "CHECKPOINT"
psql -c "SELECT pg_stat_statements_reset()" >/dev/null
L0=$(psql -c "SELECT pg_current_wal_lsn()"); F0=$(psql -c "SELECT pg_walfile_name(pg_current_wal_lsn())")
t0=$(date +%s.%N)
if [ $MODE = single ]; then
  psql -c "SELECT count(synaps.submit_command('bench', 'bench', NULL, md5(g::text), $CMD)) FROM generate_series(1,$N) g" >/dev/null
else
  for b in $(seq 0 $((N/1000-1))); do
    psql -c "SELECT count(*) FROM synaps.submit_commands('bench','bench',(SELECT jsonb_agg(jsonb_build_object('hash', md5(g::text), 'command', $CMD)) FROM generate_series($b*1000+1,$b*1000+1000) g))" >/dev/null
  done
fi
t1=$(date +%s.%N)
psql -c "CHECKPOINT"
L1=$(psql -c "SELECT pg_current_wal_lsn()"); F1=$(psql -c "SELECT pg_walfile_name(pg_current_wal_lsn())")
SUB=$(psql -c "SELECT (pg_wal_lsn_diff('$L1','$L0'))::bigint / $N")
echo "MODE=$MODE N=$N submit WAL/task=$SUB secs=$(echo "$t1-$t0" | bc)"
wal_by_relation "$L0" "$L1" $N "$F0 $F1" | head -30
psql -c "SELECT calls, round(total_exec_time::numeric,1) ms, rows, left(regexp_replace(query,'\s+',' ','g'),110) FROM pg_stat_statements WHERE query !~ 'pg_stat|CHECKPOINT|wal_lsn' ORDER BY total_exec_time DESC LIMIT 25"
