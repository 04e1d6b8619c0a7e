# bench/lib/private_pg.sh: a private, durable PostgreSQL for the probes in bench/*.sh (sourced,
# not run). Each probe owns one server in its own directory, on its own port, stopped when the
# probe exits. Requires root (the server runs as `postgres`) and Debian's PostgreSQL 15.
#
#   . "$(dirname "$0")/lib/private_pg.sh"
#   private_pg_start /tmp/probe 55432 '-c shared_preload_libraries=pg_stat_statements'
#   private_pg_migrate "$BIN"      # migrations (+ $EXTRA_SQL when set)
#   psql -c "SELECT 1"             # -X -q -t -A against the server
#   wal_by_relation "$L0" "$L1" 5000 > byrel.txt

PG=/usr/lib/postgresql/15/bin

# Starts a fresh server in DIR/pg (DIR is emptied first) on 127.0.0.1:PORT with durable
# defaults (fsync on), max_wal_size=4GB and shared_buffers=256MB; EXTRA is appended to the
# server's options. Sets U (the connection URL) and D (= DIR). An EXIT trap stops the server and
# then runs whatever the probe put in PRIVATE_PG_ON_EXIT (e.g. killing its nats-server).
private_pg_start() {
  D=$1; local port=$2 extra=${3:-}
  rm -rf "$D"; mkdir -p "$D"; chown postgres "$D"
  su postgres -c "$PG/initdb -D $D/pg -U postgres -A trust >/dev/null"
  su postgres -c "$PG/pg_ctl -D $D/pg -l $D/pg.log -o '-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_wal_size=4GB -c shared_buffers=256MB $extra' start >/dev/null"
  trap 'su postgres -c "$PG/pg_ctl -D $D/pg stop -m fast >/dev/null"; eval "${PRIVATE_PG_ON_EXIT:-}"' EXIT
  U="postgresql://postgres@127.0.0.1:$port/postgres"
}

psql() { /usr/bin/psql -X -q -t -A "$U" "$@"; }

# Applies the migrations: `BIN migrate` when BIN is an executable, else this checkout's
# db/migrations/*.sql, each in its own transaction as `migrate` does. Then EXTRA_SQL, when set
# (a migration file under trial).
private_pg_migrate() {
  local bin=$1
  if [ -x "$bin" ]; then SYNAPS_DATABASE_URL=$U "$bin" migrate >/dev/null 2>&1
  else
    local m
    for m in "$(dirname "${BASH_SOURCE[0]}")"/../../db/migrations/*.sql; do
      /usr/bin/psql -X -q -1 -v ON_ERROR_STOP=1 "$U" -f "$m" >/dev/null
    done
  fi
  if [ -n "${EXTRA_SQL:-}" ]; then /usr/bin/psql -X -q -v ON_ERROR_STOP=1 "$U" -f "$EXTRA_SQL"; fi
}

# The command a prompt submit carries (one task named main), as a SQL expression whose input
# text is 'PREFIX ' || g, for a query over generate_series(...) g. With a second argument
# (any), the task's spec also carries maxAttempts, as the API writes it.
prompt_command_sql() {
  local text="'$1 ' || g"
  echo "jsonb_build_object('kind','prompt','payload',jsonb_build_object('kind','prompt','input',jsonb_build_object('text',$text)),'queue','default','priority',0,'maxAttempts',3,'tasks',jsonb_build_array(jsonb_build_object('name','main','kind','prompt','spec',jsonb_build_object('kind','prompt','input',jsonb_build_object('text',$text)${2:+,'maxAttempts',3}),'dependsOn','[]'::jsonb)))"
}

# WAL bytes per unit between two LSNs, by relation (record + full-page images), largest first,
# as "name bytes" lines (relations named through pg_class; "other": records without one).
# FILES (optional): the first and last WAL segment names, when the range starts in a segment
# pg_waldump would not find by itself.
wal_by_relation() {
  local l0=$1 l1=$2 n=$3 files=${4:-}
  su postgres -c "$PG/pg_waldump -p $D/pg/pg_wal -s $l0 -e $l1 $files" 2>"$D/waldump.err" | awk -v n="$n" '
    { tot=0; if (match($0, /len \(rec\/tot\): *[0-9]+\/ *[0-9]+/)) { s=substr($0,RSTART,RLENGTH); sub(/.*\/ */,"",s); tot=s+0 }
      rel="other"; if (match($0, /rel [0-9]+\/[0-9]+\/[0-9]+/)) { r=substr($0,RSTART+4,RLENGTH-4); split(r,a,"/"); rel=a[3] }
      by[rel]+=tot }
    END { for (r in by) printf "%s %d\n", r, by[r]/n }' | sort -k2 -n -r > "$D/byrel.txt"
  psql -c "SELECT relfilenode, relname FROM pg_class WHERE relfilenode > 0" | tr '|' ' ' > "$D/names.txt"
  awk 'NR==FNR { name[$1]=$2; next } { printf "%-45s %6d B/task\n", ($1 in name ? name[$1] : $1), $2 }' \
    "$D/names.txt" "$D/byrel.txt"
}
