-- Partitioning the ledger by time, step 1 of 3 (docs/history.md, "The partitioned ledger").
--
-- synaps.ledger_events becomes partitioned by RANGE (run_id): run ids are UUIDv7 (0010), so a
-- range of run ids is a range of run creation times, a daily partition holds every event of the
-- runs created that UTC day, and (run_id, seq) stays unique. The existing table becomes one
-- partition, "legacy", for every run id below a bound B (midnight UTC two days from now, as a
-- UUIDv7 floor); daily partitions begin at B.
--
-- Attaching the old table must not scan it under an exclusive lock: PostgreSQL skips the scan
-- when a valid CHECK constraint implies the partition bound. So this step adds
-- CHECK (run_id < B) NOT VALID (instant; new rows are checked, and new runs are below B for
-- another day at least), step 2 validates it under a lock that lets reads and writes go on, and
-- step 3 swaps the tables in milliseconds.
--
-- Runs with random (version 4) ids from before 0010 may sort above B: their events move now to
-- synaps.ledger_events_default, the partition that takes any run id no other partition covers.
-- This copy runs under this step's lock and costs in proportion to those old runs' events.

-- Where partitioning stands: the legacy partition's upper bound (NULL for a database created
-- partitioned).
CREATE TABLE synaps.ledger_partitioning (
  singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  legacy_bound  uuid
);

DO $$
DECLARE
  v_bound uuid;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM synaps.ledger_events) AND NOT EXISTS (SELECT 1 FROM synaps.runs) THEN
    -- A new database: step 3 creates the ledger partitioned, without a legacy partition.
    INSERT INTO synaps.ledger_partitioning (legacy_bound) VALUES (NULL);
    RETURN;
  END IF;
  v_bound := synaps.uuid_v7_floor(date_trunc('day', now(), 'UTC') + interval '2 days');
  INSERT INTO synaps.ledger_partitioning (legacy_bound) VALUES (v_bound);

  CREATE TABLE synaps.ledger_events_default (
    id bigint NOT NULL, run_id uuid NOT NULL, task_id uuid, seq bigint NOT NULL,
    type text NOT NULL, attempt integer, data jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now());
  IF EXISTS (SELECT 1 FROM synaps.runs WHERE id >= v_bound) THEN
    INSERT INTO synaps.ledger_events_default
    SELECT id, run_id, task_id, seq, type, attempt, data, created_at
      FROM synaps.ledger_events WHERE run_id >= v_bound;
    PERFORM set_config('synaps.expiring', 'on', true);
    DELETE FROM synaps.ledger_events WHERE run_id >= v_bound;
    PERFORM set_config('synaps.expiring', 'off', true);
  END IF;
  EXECUTE format('ALTER TABLE synaps.ledger_events ADD CONSTRAINT ledger_events_legacy_bound'
                 ' CHECK (run_id < %L::uuid) NOT VALID', v_bound);
END $$;
