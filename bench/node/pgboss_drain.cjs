// pg-boss drains N no-op jobs: node pgboss_drain.cjs N CONCURRENCY (DATABASE_URL set).
// pg-boss 10's work() sleeps for its polling interval (at least 500 ms) after every fetch, so a
// drain through work() would measure that interval. This uses pg-boss's public fetch/complete
// API instead: 4 loops, each fetching up to CONCURRENCY jobs and completing them with one
// complete() call (as a Synaps worker claims and completes in batches).
// Prints {"jobs","seconds","rate"}: first fetch that returned jobs to every job completed.
const PgBoss = require("pg-boss");

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
  console.log(JSON.stringify({ jobs, concurrency, loops, batch: concurrency, seconds, rate: jobs / seconds }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
