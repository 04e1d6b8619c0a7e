// graphile-worker add → start latency: node graphile_wakeup.cjs COUNT (DATABASE_URL set).
// COUNT sequential addJob calls, each waiting until its job completed. A trigger records each
// job's created_at and locked_at (PostgreSQL's clock, microseconds) in bench_job_locks; the
// driver reads the latencies from there, as it reads Synaps' from the ledger.
const { run, runMigrations, makeWorkerUtils, Logger } = require("graphile-worker");

// Warnings and errors only: graphile-worker logs every job at info, Synaps' worker does not.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(message);
});

async function main() {
  const count = Number(process.argv[2]);
  const connectionString = process.env.DATABASE_URL;
  await runMigrations({ connectionString, logger });
  const utils = await makeWorkerUtils({ connectionString, logger });
  await utils.withPgClient((c) =>
    c.query(`
      CREATE TABLE bench_job_locks (id bigint, created_at timestamptz, locked_at timestamptz);
      CREATE FUNCTION bench_record_lock() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO bench_job_locks VALUES (NEW.id, NEW.created_at, NEW.locked_at);
        RETURN NEW;
      END $$;
      CREATE TRIGGER bench_record_lock AFTER UPDATE OF locked_at ON graphile_worker._private_jobs
        FOR EACH ROW WHEN (NEW.locked_at IS NOT NULL AND OLD.locked_at IS NULL)
        EXECUTE FUNCTION bench_record_lock();`));
  let resolveDone = null;
  const runner = await run({
    connectionString,
    concurrency: 16,
    maxPoolSize: 18,
    noHandleSignals: true,
    logger,
    taskList: { noop: async () => {} },
  });
  runner.events.on("job:complete", () => {
    if (resolveDone) resolveDone();
  });
  for (let i = 0; i < count; i++) {
    const done = new Promise((r) => (resolveDone = r));
    await utils.addJob("noop", { i });
    await done;
  }
  await runner.stop();
  await utils.release();
  console.log(JSON.stringify({ count }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
