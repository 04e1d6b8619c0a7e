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
D=${D:-/tmp/walprobe}; rm -rf $D; mkdir -p $D; chown postgres $D
PG=/usr/lib/postgresql/15/bin
su postgres -c "$PG/initdb -D $D/pg -U postgres -A trust >/dev/null"
PORT=${PORT:-55432}
su postgres -c "$PG/pg_ctl -D $D/pg -l $D/pg.log -o '-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_wal_size=4GB -c shared_buffers=256MB' start >/dev/null"
trap 'su postgres -c "$PG/pg_ctl -D $D/pg stop -m fast >/dev/null"; kill $NATSPID 2>/dev/null || true' EXIT
nats-server -js -p ${NATS_PORT:-54222} -sd $D/nats >/dev/null 2>&1 & NATSPID=$!
U="postgresql://postgres@127.0.0.1:$PORT/postgres"
psql() { /usr/bin/psql -X -q -t -A "$U" "$@"; }
SYNAPS_DATABASE_URL=$U $BIN migrate >/dev/null 2>&1
psql -c "CHECKPOINT"
L0=$(psql -c "SELECT pg_current_wal_lsn()")
psql -c "SELECT count(synaps.submit_command('bench', 'bench', NULL, md5(g::text), jsonb_build_object('kind','prompt','payload',jsonb_build_object('kind','prompt','input',jsonb_build_object('text','hello ' || g)),'queue','default','priority',0,'maxAttempts',3,'tasks',jsonb_build_array(jsonb_build_object('name','main','kind','prompt','spec',jsonb_build_object('kind','prompt','input',jsonb_build_object('text','hello ' || g)),'dependsOn','[]'::jsonb))))) FROM generate_series(1,$N) g" >/dev/null
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
su postgres -c "$PG/pg_waldump -p $D/pg/pg_wal -s $L1 -e $L2" 2>/dev/null | awk -v n=$N '
  { tot=0; if (match($0, /len \(rec\/tot\): *[0-9]+\/ *[0-9]+/)) { s=substr($0,RSTART,RLENGTH); sub(/.*\/ */,"",s); tot=s+0 }
    rel="other"; if (match($0, /rel [0-9]+\/[0-9]+\/[0-9]+/)) { r=substr($0,RSTART+4,RLENGTH-4); split(r,a,"/"); rel=a[3] }
    by[rel]+=tot }
  END { for (r in by) printf "%s %d\n", r, by[r]/n }' | sort -k2 -n -r > $D/byrel.txt
psql -c "SELECT relfilenode, relname FROM pg_class WHERE relfilenode > 0" | tr '|' ' ' > $D/names.txt
awk 'NR==FNR { name[$1]=$2; next } { printf "%-45s %6d B/task\n", ($1 in name ? name[$1] : $1), $2 }' $D/names.txt $D/byrel.txt | head -25
