#!/usr/bin/env bash
# bench/intake_wal_probe.sh: write-ahead log per single submit through `synaps api`, its outbox
# relay included (issue #13). Runs its own PostgreSQL (durable defaults) and nats-server in D
# (default /tmp/intakewal), starts BIN's `synaps api`, sends N single submits from P concurrent
# curl clients, waits until the relay has published every outbox row, then runs the relay's
# later cleanup of published rows at once (as it would after its retention) and prints WAL bytes
# per submit, the outbox rows left, and the messages JetStream stored. Not part of `make bench`.
#   N=2000 P=16 BIN=build/src/synaps bench/intake_wal_probe.sh
set -euo pipefail
N=${N:-2000}; P=${P:-16}
BIN=${BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/src/synaps}
. "$(dirname "$0")/lib/private_pg.sh"
private_pg_start "${D:-/tmp/intakewal}" "${PORT:-55433}"
PRIVATE_PG_ON_EXIT='kill $NATSPID $APIPID 2>/dev/null || true'
NATS_PORT=${NATS_PORT:-54223}; API_PORT=${API_PORT:-58081}
nats-server -js -p $NATS_PORT -m $((NATS_PORT + 1)) -sd $D/nats >/dev/null 2>&1 & NATSPID=$!
private_pg_migrate "$BIN"
TOKEN=probe-admin-token-0123456789abcdef
SYNAPS_DATABASE_URL=$U SYNAPS_NATS_URL=nats://127.0.0.1:$NATS_PORT SYNAPS_ADMIN_TOKEN=$TOKEN \
  SYNAPS_OBJECT_STORE=file://$D/objects SYNAPS_LISTEN=127.0.0.1:$API_PORT SYNAPS_RATE_LIMIT_RPS=0 \
  SYNAPS_API_ADDRESS_RPS=0 "$BIN" api > $D/api.log 2>&1 & APIPID=$!
until curl -sf http://127.0.0.1:$API_PORT/readyz >/dev/null; do sleep 0.2; done
psql -c "CHECKPOINT"
L0=$(psql -c "SELECT pg_current_wal_lsn()")
seq 1 $N | xargs -P $P -I{} curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"kind":"prompt","input":{"text":"bench {}"}}' \
  http://127.0.0.1:$API_PORT/v1/commands/submit
until [ "$(psql -c "SELECT count(*) FROM synaps.outbox WHERE published_at IS NULL")" = 0 ]; do sleep 0.2; done
kill $APIPID; wait $APIPID || true
# The relay's cleanup (DeleteMarkedPublished), as it runs once rows are past their retention.
LEFT=$(psql -c "SELECT count(*) FROM synaps.outbox")
psql -c "DELETE FROM synaps.outbox WHERE published_at IS NOT NULL"
psql -c "CHECKPOINT"
L1=$(psql -c "SELECT pg_current_wal_lsn()")
RUNS=$(psql -c "SELECT count(*) FROM synaps.runs")
MSGS=$(curl -s "http://127.0.0.1:$((NATS_PORT + 1))/jsz?streams=true" | python3 -c \
  "import json,sys; print(sum(s['state']['messages'] for a in json.load(sys.stdin).get('account_details',[]) for s in a.get('stream_detail',[])))")
echo "N=$N runs=$RUNS submit+relay WAL/submit=$(psql -c "SELECT (pg_wal_lsn_diff('$L1','$L0'))::bigint / $RUNS")" \
     "outbox rows after the relay=$LEFT JetStream messages=$MSGS"
psql -c "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables WHERE schemaname='synaps' AND relname IN ('outbox') ORDER BY 1"
