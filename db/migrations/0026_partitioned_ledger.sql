-- Partitioning the ledger by time, step 3 of 3 (see 0024; docs/history.md): the swap.
--
-- synaps.ledger_events becomes a table partitioned by RANGE (run_id) with
--   ledger_events_legacy   the old table, run ids below the legacy bound (existing databases),
--   ledger_events_dYYYYMMDD one per UTC day of run creation, created ahead by
--                           synaps.ensure_ledger_partitions() (expiry calls it on every pass),
--   ledger_events_default  any run id no other partition covers (runs with version-4 ids from
--                           before 0010, a day whose partition was not made in time, a restored
--                           run whose day was dropped).
-- What stays the same: the name, the columns, ids from one sequence in commit-independent order,
-- UNIQUE (run_id, seq), one task.completed per (task, attempt) (a unique index per partition:
-- all of a task's events live in its run's partition), append-only (the triggers are on every
-- partition), and the readers (by run: one partition; by id: each partition's id index).
-- The swap takes an ACCESS EXCLUSIVE lock for milliseconds: the legacy table is attached without
-- a scan (its bound is implied by the constraint validated in 0025) and keeps its indexes.

CREATE SEQUENCE synaps.ledger_event_ids;

DO $$
DECLARE
  v_bound  uuid := (SELECT legacy_bound FROM synaps.ledger_partitioning);
  v_last   bigint;
BEGIN
  IF v_bound IS NULL THEN
    DROP TABLE synaps.ledger_events;
  ELSE
    ALTER TABLE synaps.ledger_events RENAME TO ledger_events_legacy;
    SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END INTO v_last
      FROM synaps.ledger_events_id_seq;
    PERFORM setval('synaps.ledger_event_ids', greatest(v_last, 1), v_last >= 1);
    ALTER TABLE synaps.ledger_events_legacy ALTER COLUMN id DROP IDENTITY;
    ALTER TABLE synaps.ledger_events_legacy RENAME CONSTRAINT ledger_events_pkey TO ledger_events_legacy_pkey;
    ALTER TABLE synaps.ledger_events_legacy RENAME CONSTRAINT ledger_events_run_seq_uq TO ledger_events_legacy_run_seq_uq;
    ALTER INDEX synaps.ledger_events_task_completed_uq RENAME TO ledger_events_legacy_task_completed_uq;
    DROP TRIGGER ledger_events_append_only ON synaps.ledger_events_legacy;
    ALTER TRIGGER ledger_events_no_truncate ON synaps.ledger_events_legacy RENAME TO ledger_events_legacy_no_truncate;
  END IF;
END $$;

CREATE TABLE synaps.ledger_events (
  id          bigint NOT NULL DEFAULT nextval('synaps.ledger_event_ids'),
  run_id      uuid NOT NULL,
  task_id     uuid,
  seq         bigint NOT NULL,
  type        text NOT NULL,
  attempt     integer,
  data        jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT ledger_events_run_seq_uq UNIQUE (run_id, seq)
) PARTITION BY RANGE (run_id);
ALTER SEQUENCE synaps.ledger_event_ids OWNED BY synaps.ledger_events.id;

CREATE TRIGGER ledger_events_append_only BEFORE DELETE OR UPDATE ON synaps.ledger_events
  FOR EACH ROW EXECUTE FUNCTION synaps.refuse_ledger_change();
CREATE TRIGGER ledger_events_no_truncate BEFORE TRUNCATE ON synaps.ledger_events
  FOR EACH STATEMENT EXECUTE FUNCTION synaps.refuse_ledger_change();

-- What every partition has besides what the parent gives it: a unique index on id (the usage
-- rollup and the tenant feed read by id), one task.completed per (task, attempt), and the
-- TRUNCATE refusal (statement triggers are not inherited).
CREATE FUNCTION synaps.prepare_ledger_partition(p_table text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('CREATE UNIQUE INDEX %I ON synaps.%I (id)', p_table || '_id_uq', p_table);
  EXECUTE format('CREATE UNIQUE INDEX %I ON synaps.%I (task_id, attempt)'
                 ' WHERE type = ''task.completed''', p_table || '_task_completed_uq', p_table);
  EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON synaps.%I'
                 ' FOR EACH STATEMENT EXECUTE FUNCTION synaps.refuse_ledger_change()',
                 p_table || '_no_truncate', p_table);
END $$;

DO $$
DECLARE
  v_bound uuid := (SELECT legacy_bound FROM synaps.ledger_partitioning);
BEGIN
  IF v_bound IS NOT NULL THEN
    EXECUTE format('ALTER TABLE synaps.ledger_events ATTACH PARTITION synaps.ledger_events_legacy'
                   ' FOR VALUES FROM (MINVALUE) TO (%L)', v_bound);
    ALTER TABLE synaps.ledger_events_legacy DROP CONSTRAINT ledger_events_legacy_bound;
  ELSE
    CREATE TABLE synaps.ledger_events_default (
      id bigint NOT NULL, run_id uuid NOT NULL, task_id uuid, seq bigint NOT NULL,
      type text NOT NULL, attempt integer, data jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at timestamptz NOT NULL DEFAULT now());
  END IF;
END $$;
SELECT synaps.prepare_ledger_partition('ledger_events_default');
ALTER TABLE synaps.ledger_events ATTACH PARTITION synaps.ledger_events_default DEFAULT;

-- The partition of the UTC day p_day: ledger_events_dYYYYMMDD, run ids from the UUIDv7 floor of
-- that midnight to the next. Creates it unless it exists or the legacy partition covers the day;
-- events of that day that went to the default partition meanwhile move into it. Returns
-- 'exists', 'legacy' or 'created'. Attaching locks the default partition (ACCESS EXCLUSIVE, a
-- scan of it, normally empty) and the parent with SHARE UPDATE EXCLUSIVE, which appends do not
-- wait for.
CREATE FUNCTION synaps.ensure_ledger_partition(p_day date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_name  text := 'ledger_events_d' || to_char(p_day, 'YYYYMMDD');
  v_lo    uuid := synaps.uuid_v7_floor(p_day::timestamp AT TIME ZONE 'UTC');
  v_hi    uuid := synaps.uuid_v7_floor((p_day + 1)::timestamp AT TIME ZONE 'UTC');
  v_legacy uuid := (SELECT legacy_bound FROM synaps.ledger_partitioning);
BEGIN
  IF to_regclass('synaps.' || v_name) IS NOT NULL THEN RETURN 'exists'; END IF;
  IF v_legacy IS NOT NULL AND v_lo < v_legacy THEN RETURN 'legacy'; END IF;
  EXECUTE format('CREATE TABLE synaps.%I (LIKE synaps.ledger_events INCLUDING DEFAULTS)', v_name);
  PERFORM synaps.prepare_ledger_partition(v_name);
  LOCK TABLE synaps.ledger_events_default IN ACCESS EXCLUSIVE MODE;
  IF EXISTS (SELECT 1 FROM synaps.ledger_events_default WHERE run_id >= v_lo AND run_id < v_hi) THEN
    EXECUTE format('INSERT INTO synaps.%I SELECT * FROM synaps.ledger_events_default'
                   ' WHERE run_id >= %L AND run_id < %L', v_name, v_lo, v_hi);
    PERFORM set_config('synaps.expiring', 'on', true);
    DELETE FROM synaps.ledger_events_default WHERE run_id >= v_lo AND run_id < v_hi;
    PERFORM set_config('synaps.expiring', 'off', true);
  END IF;
  EXECUTE format('ALTER TABLE synaps.ledger_events ATTACH PARTITION synaps.%I'
                 ' FOR VALUES FROM (%L) TO (%L)', v_name, v_lo, v_hi);
  RETURN 'created';
END $$;

-- Partitions for yesterday through p_days_ahead days from today (UTC); returns how many it
-- created.
CREATE FUNCTION synaps.ensure_ledger_partitions(p_days_ahead integer DEFAULT 7) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_day     date;
  v_created integer := 0;
BEGIN
  -- Two processes ensuring at once would race to create the same table: one waits instead.
  -- (An arbitrary constant naming "Synaps ledger partitions" among advisory locks.)
  PERFORM pg_advisory_xact_lock(7340032020);
  FOR v_day IN SELECT generate_series((now() AT TIME ZONE 'UTC')::date - 1,
                                      (now() AT TIME ZONE 'UTC')::date + p_days_ahead,
                                      interval '1 day')::date LOOP
    IF synaps.ensure_ledger_partition(v_day) = 'created' THEN v_created := v_created + 1; END IF;
  END LOOP;
  RETURN v_created;
END $$;

-- The days whose partition can go whole: every run created that day (the partition's run-id
-- range) has expired under its tenant's retention, or is gone already. Oldest first; yesterday
-- and today never. Expiry deletes those runs' other rows and leaves their events to the drop.
CREATE FUNCTION synaps.droppable_ledger_days() RETURNS SETOF date
LANGUAGE sql STABLE AS $$
  SELECT p.day
    FROM (SELECT to_date(substr(c.relname, 16), 'YYYYMMDD') AS day
            FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'synaps.ledger_events'::regclass
             AND c.relname ~ '^ledger_events_d[0-9]{8}$') p
   WHERE p.day < (now() AT TIME ZONE 'UTC')::date - 1
     AND NOT EXISTS (
       SELECT 1
         FROM synaps.runs r
         LEFT JOIN synaps.tenant_settings t ON t.tenant_id = r.tenant_id
         LEFT JOIN synaps.tenant_settings d ON d.tenant_id = '*'
         CROSS JOIN LATERAL (SELECT CASE WHEN t.tenant_id IS NOT NULL THEN t.retention_days
                                         ELSE d.retention_days END AS days) k
        WHERE r.id >= synaps.uuid_v7_floor(p.day::timestamp AT TIME ZONE 'UTC')
          AND r.id < synaps.uuid_v7_floor((p.day + 1)::timestamp AT TIME ZONE 'UTC')
          AND (r.status NOT IN ('succeeded', 'failed', 'cancelled') OR r.keep OR k.days IS NULL
               OR r.finished_at >= now() - make_interval(days => k.days)))
   ORDER BY p.day
$$;

-- Drops the partition of p_day once no run of that day is left and usage has folded all its
-- events: 'dropped', or why not ('absent', 'runs_remain', 'usage_pending', 'busy'). Detaching
-- takes the parent's ACCESS EXCLUSIVE lock for an instant; it waits at most 2 s for it (then
-- 'busy': the next pass tries again) so that appends queued behind it never wait long.
CREATE FUNCTION synaps.drop_ledger_partition(p_day date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_name  text := 'ledger_events_d' || to_char(p_day, 'YYYYMMDD');
  v_lo    uuid := synaps.uuid_v7_floor(p_day::timestamp AT TIME ZONE 'UTC');
  v_hi    uuid := synaps.uuid_v7_floor((p_day + 1)::timestamp AT TIME ZONE 'UTC');
  v_max   bigint;
BEGIN
  IF to_regclass('synaps.' || v_name) IS NULL THEN RETURN 'absent'; END IF;
  IF EXISTS (SELECT 1 FROM synaps.runs WHERE id >= v_lo AND id < v_hi) THEN
    RETURN 'runs_remain';
  END IF;
  EXECUTE format('SELECT max(id) FROM synaps.%I', v_name) INTO v_max;
  IF v_max > (SELECT last_event_id FROM synaps.usage_rollup) THEN RETURN 'usage_pending'; END IF;
  PERFORM set_config('lock_timeout', '2s', true);
  BEGIN
    EXECUTE format('ALTER TABLE synaps.ledger_events DETACH PARTITION synaps.%I', v_name);
  EXCEPTION WHEN lock_not_available THEN
    RETURN 'busy';
  END;
  EXECUTE format('DROP TABLE synaps.%I', v_name);
  RETURN 'dropped';
END $$;

SELECT synaps.ensure_ledger_partitions(7);
