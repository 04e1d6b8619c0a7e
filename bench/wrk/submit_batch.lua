-- wrk script: POST /v1/commands/submit with a batch of SYNAPS_BENCH_BATCH (default 1000)
-- commands, the admin token (SYNAPS_BENCH_TOKEN), keep-alive. Every request makes new commands
-- (no idempotency keys).
local n = tonumber(os.getenv("SYNAPS_BENCH_BATCH") or "1000")
local items = {}
for i = 1, n do
  items[i] = '{"kind":"prompt","input":{"text":"bulk ' .. i .. '"}}'
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("SYNAPS_BENCH_TOKEN")
wrk.body = '{"commands":[' .. table.concat(items, ",") .. ']}'
