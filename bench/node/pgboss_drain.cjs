// pg-boss drains N no-op jobs: node pgboss_drain.cjs N CONCURRENCY (DATABASE_URL set).
// pg-boss 10's work() sleeps for its polling interval (at least 500 ms) after every fetch, so a
// drain through work() would measure that interval. This uses pg-boss's public fetch/complete
// API instead: 4 loops, each fetching up to CONCURRENCY jobs and completing them with one
// complete() call (as a Synaps worker claims and completes in batches).
// Prints {"jobs","seconds","rate","schema_lsn"}: first fetch that returned jobs to every job
// completed; schema_lsn is the WAL position once pg-boss's schema and queue exist.
const PgBoss = require("pg-boss");
const { Pool } = require("pg");

async function main() {
  const jobs = Number(process.argv[2]);
  const concurrency = Number(process.argv[3]);
  const loops = 4;
  const boss = new PgBoss({
    connectionString: process.env.DATABASE_URL,
    max: loops + 4,
    supervise: false,
    schedule: false,
  });
  boss.on("error", (e) => console.error(e));
  await boss.start();
  await boss.createQueue("noop");
  // Where the work starts in the write-ahead log, its schema installed (bench/cost.h).
  const lsnPool = new Pool({ connectionString: process.env.DATABASE_URL, max: 1 });
  const { rows: lsn } = await lsnPool.query("SELECT pg_current_wal_lsn()::text AS lsn");
  await lsnPool.end();
  for (let i = 0; i < jobs; i += 5000) {
    const n = Math.min(5000, jobs - i);
    await boss.insert(Array.from({ length: n }, (_, k) => ({ name: "noop", data: { n: i + k } })));
  }
  let first = 0n;
  let done = 0;
  async function loop() {
    for (;;) {
      const batch = await boss.fetch("noop", { batchSize: concurrency });
      if (!batch || batch.length === 0) {
        if (done >= jobs) return;
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      if (first === 0n) first = process.hrtime.bigint();
      await boss.complete("noop", batch.map((j) => j.id));
      done += batch.length;
    }
  }
  await Promise.all(Array.from({ length: loops }, loop));
  const seconds = Number(process.hrtime.bigint() - first) / 1e9;
  await boss.stop({ graceful: false, wait: true });
  console.log(JSON.stringify({ jobs, concurrency, loops, batch: concurrency, seconds, rate: jobs / seconds, schema_lsn: lsn[0].lsn }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
