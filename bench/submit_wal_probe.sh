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
D=${D:-/tmp/submit_wal_probe}; rm -rf $D; mkdir -p $D; chown postgres $D
PG=/usr/lib/postgresql/15/bin
su postgres -c "$PG/initdb -D $D/pg -U postgres -A trust >/dev/null"
PORT=${PORT:-55461}
su postgres -c "$PG/pg_ctl -D $D/pg -l $D/pg.log -o '-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_wal_size=4GB -c shared_buffers=256MB -c wal_keep_size=2GB -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all' start >/dev/null"
trap 'su postgres -c "$PG/pg_ctl -D $D/pg stop -m fast >/dev/null"' EXIT
U="postgresql://postgres@127.0.0.1:$PORT/postgres"
psql() { /usr/bin/psql -X -q -t -A "$U" "$@"; }
SYNAPS_DATABASE_URL=$U $BIN migrate >/dev/null 2>&1
if [ -n "${EXTRA_SQL:-}" ]; then /usr/bin/psql -X -q -v ON_ERROR_STOP=1 "$U" -f $EXTRA_SQL; fi
psql -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" 
CMD="jsonb_build_object('kind','prompt','payload',jsonb_build_object('kind','prompt','input',jsonb_build_object('text','hello ' || g)),'queue','default','priority',0,'maxAttempts',3,'tasks',jsonb_build_array(jsonb_build_object('name','main','kind','prompt','spec',jsonb_build_object('kind','prompt','input',jsonb_build_object('text','hello ' || g)),'dependsOn','[]'::jsonb)))"
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
su postgres -c "$PG/pg_waldump -p $D/pg/pg_wal -s $L0 -e $L1 $F0 $F1" 2>$D/waldump.err | awk -v n=$N '
  { tot=0; if (match($0, /len \(rec\/tot\): *[0-9]+\/ *[0-9]+/)) { s=substr($0,RSTART,RLENGTH); sub(/.*\/ */,"",s); tot=s+0 }
    rel="other"; if (match($0, /rel [0-9]+\/[0-9]+\/[0-9]+/)) { r=substr($0,RSTART+4,RLENGTH-4); split(r,a,"/"); rel=a[3] }
    by[rel]+=tot }
  END { for (r in by) printf "%s %d\n", r, by[r]/n }' | sort -k2 -n -r > $D/byrel.txt
psql -c "SELECT relfilenode, relname FROM pg_class WHERE relfilenode > 0" | tr '|' ' ' > $D/names.txt
awk 'NR==FNR { name[$1]=$2; next } { printf "%-45s %6d B/task\n", ($1 in name ? name[$1] : $1), $2 }' $D/names.txt $D/byrel.txt | head -30
psql -c "SELECT calls, round(total_exec_time::numeric,1) ms, rows, left(regexp_replace(query,'\s+',' ','g'),110) FROM pg_stat_statements WHERE query !~ 'pg_stat|CHECKPOINT|wal_lsn' ORDER BY total_exec_time DESC LIMIT 25"
