// graphile-worker drains N no-op jobs: node graphile_drain.cjs N CONCURRENCY (DATABASE_URL set).
// Prints {"jobs","seconds","rate","schema_lsn"}: first job started to job table empty (polled every
// 5 ms); schema_lsn is the WAL position once graphile-worker's schema is installed.
const { run, runMigrations, makeWorkerUtils, Logger } = require("graphile-worker");

// Warnings and errors only: graphile-worker logs every job at info, Synaps' worker does not.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(message);
});
const { Pool } = require("pg");

async function main() {
  const jobs = Number(process.argv[2]);
  const concurrency = Number(process.argv[3]);
  const connectionString = process.env.DATABASE_URL;
  await runMigrations({ connectionString, logger });
  const pool = new Pool({ connectionString, max: 2 });
  // Where the work starts in the write-ahead log, its schema installed (bench/cost.h).
  const { rows: lsn } = await pool.query("SELECT pg_current_wal_lsn()::text AS lsn");
  // One statement adds every job, as Synaps' queue is filled with one bulk statement.
  await pool.query(
    `SELECT graphile_worker.add_jobs(array(
       SELECT ROW('noop', json_build_object('n', g), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
         FROM generate_series(1, $1::int) g))`,
    [jobs]);
  let first = 0n;
  let started = 0;
  let allStarted;
  const allStartedP = new Promise((resolve) => (allStarted = resolve));
  const runner = await run({
    connectionString,
    concurrency,
    maxPoolSize: concurrency + 2,
    noHandleSignals: true,
    pollInterval: 1000,
    logger,
    taskList: {
      noop: async () => {
        if (started === 0) first = process.hrtime.bigint();
        if (++started === jobs) allStarted();
      },
    },
  });
  await allStartedP;
  for (;;) {
    const { rows } = await pool.query("SELECT count(*)::int AS n FROM graphile_worker._private_jobs");
    if (rows[0].n === 0) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const seconds = Number(process.hrtime.bigint() - first) / 1e9;
  await runner.stop();
  await pool.end();
  console.log(JSON.stringify({ jobs, concurrency, seconds, rate: jobs / seconds, schema_lsn: lsn[0].lsn }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
