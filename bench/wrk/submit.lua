-- wrk script: POST /v1/commands/submit with the admin token (SYNAPS_BENCH_TOKEN) on keep-alive
-- connections. Every request is a new command (no Idempotency-Key).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("SYNAPS_BENCH_TOKEN")
wrk.body = '{"kind":"prompt","input":{"text":"bench"}}'
