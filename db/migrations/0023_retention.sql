-- Retention (docs/history.md): a period per tenant and a default, after which finished runs leave
-- PostgreSQL with their tasks, ledger events, queue items, artifact rows and command. Runs that
-- are not finished (held for approval included) and runs an operator marked to keep stay.

-- The floor of UUIDv7 ids made at p_at: the 48-bit Unix milliseconds, every other bit zero.
CREATE FUNCTION synaps.uuid_v7_floor(p_at timestamptz) RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$
  SELECT (lpad(to_hex(floor(extract(epoch FROM p_at) * 1000)::bigint), 12, '0')
          || '00000000000000000000')::uuid
$$;

-- The creation time a UUIDv7 id carries (meaningless for other versions).
CREATE FUNCTION synaps.uuid_v7_time(p_id uuid) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
  SELECT to_timestamp(('x' || lpad(substr(replace(p_id::text, '-', ''), 1, 12), 16, '0'))::bit(64)::bigint
                      / 1000.0)
$$;

-- One row per tenant that set its own retention; the row '*' (not a tenant id) is the default
-- for the others. No row at all: nothing expires.
CREATE TABLE synaps.tenant_settings (
  tenant_id       text PRIMARY KEY,
  -- NULL: never expire. Otherwise finished runs go this many days after they finished.
  retention_days  integer CHECK (retention_days BETWEEN 1 AND 36500),
  -- Archive expiring runs to the object store before deleting them (issue #18, `archive`).
  archive         boolean NOT NULL DEFAULT false,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  updated_by      text NOT NULL
);

-- An operator's "keep": expiry never takes this run (POST /v1/runs/{id}/keep).
ALTER TABLE synaps.runs ADD COLUMN keep boolean NOT NULL DEFAULT false;

-- References to a task are not enforced by a foreign key on the history tables: their writers
-- take task_id from the task row they have just updated, and each enforced reference costs a
-- lookup per inserted row and, without an index on task_id, a scan of the whole table per task
-- deleted by expiry. Nor is the ledger's reference to its run: every writer takes run_id from the
-- runs row it updates in the same statement (last_seq), and a time partition of the ledger is
-- dropped after its runs' rows are gone (docs/history.md). The other references to the run stay
-- enforced (run_id is indexed everywhere).
ALTER TABLE synaps.ledger_events DROP CONSTRAINT ledger_events_task_id_fkey;
ALTER TABLE synaps.ledger_events DROP CONSTRAINT ledger_events_run_id_fkey;
ALTER TABLE synaps.artifacts DROP CONSTRAINT artifacts_task_id_fkey;
ALTER TABLE synaps.artifact_versions DROP CONSTRAINT artifact_versions_task_id_fkey;

-- The ledger stays append-only for everyone but expiry: synaps.expire_runs() sets the
-- transaction-local flag synaps.expiring while it deletes a batch of expired runs' events.
-- UPDATE and TRUNCATE are always refused. (A guard against mistakes in code, not access control:
-- the table's owner can drop the trigger.)
CREATE OR REPLACE FUNCTION synaps.refuse_ledger_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('synaps.expiring', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'synaps.ledger_events is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;

-- Sets (p_days, p_archive) for a tenant or the default '*'; p_clear removes the tenant's row so it
-- follows the default again. Writes an audit row with the values before and after.
CREATE FUNCTION synaps.set_retention(p_tenant text, p_days integer, p_archive boolean,
                                     p_clear boolean, p_actor text, p_reason text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_old  synaps.tenant_settings;
  v_new  synaps.tenant_settings;
BEGIN
  SELECT * INTO v_old FROM synaps.tenant_settings WHERE tenant_id = p_tenant FOR UPDATE;
  IF p_clear THEN
    DELETE FROM synaps.tenant_settings WHERE tenant_id = p_tenant;
  ELSE
    INSERT INTO synaps.tenant_settings (tenant_id, retention_days, archive, updated_by)
    VALUES (p_tenant, p_days, p_archive, p_actor)
    ON CONFLICT (tenant_id) DO UPDATE
      SET retention_days = EXCLUDED.retention_days, archive = EXCLUDED.archive,
          updated_at = now(), updated_by = EXCLUDED.updated_by
    RETURNING * INTO v_new;
  END IF;
  INSERT INTO synaps.audit_log (tenant_id, actor, action, target, data)
  VALUES (p_tenant, p_actor, CASE WHEN p_clear THEN 'retention.clear' ELSE 'retention.set' END,
          p_tenant,
          jsonb_build_object(
            'before', CASE WHEN v_old.tenant_id IS NULL THEN NULL ELSE
                        jsonb_build_object('retentionDays', v_old.retention_days,
                                           'archive', v_old.archive) END,
            'after', CASE WHEN v_new.tenant_id IS NULL THEN NULL ELSE
                       jsonb_build_object('retentionDays', v_new.retention_days,
                                          'archive', v_new.archive) END,
            'reason', p_reason));
  RETURN synaps.effective_retention(p_tenant);
END $$;

-- What applies to p_tenant: {tenant, retentionDays (null: never), archive, source: tenant |
-- default | none}.
CREATE FUNCTION synaps.effective_retention(p_tenant text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
           'tenant', p_tenant,
           'retentionDays', coalesce(t.retention_days, CASE WHEN t.tenant_id IS NULL THEN d.retention_days END),
           'archive', coalesce(t.archive, d.archive, false),
           'source', CASE WHEN t.tenant_id IS NOT NULL THEN 'tenant'
                          WHEN d.tenant_id IS NOT NULL THEN 'default' ELSE 'none' END,
           'updatedAt', coalesce(t.updated_at, d.updated_at),
           'updatedBy', coalesce(t.updated_by, d.updated_by))
    FROM (SELECT 1) one
    LEFT JOIN synaps.tenant_settings t ON t.tenant_id = p_tenant AND p_tenant <> '*'
    LEFT JOIN synaps.tenant_settings d ON d.tenant_id = '*'
$$;

-- Every tenant that has runs, with the retention that applies to it (skip scan over
-- runs_tenant_created_idx: one index probe per tenant). Tenants that keep runs for ever are left
-- out.
CREATE FUNCTION synaps.retention_plan()
RETURNS TABLE (tenant_id text, retention_days integer, archive boolean)
LANGUAGE sql STABLE AS $$
  WITH RECURSIVE tenants AS (
    SELECT min(r.tenant_id) AS id FROM synaps.runs r
    UNION ALL
    SELECT (SELECT min(r.tenant_id) FROM synaps.runs r WHERE r.tenant_id > tenants.id)
      FROM tenants WHERE tenants.id IS NOT NULL
  )
  SELECT x.id, x.days, x.archive
    FROM (SELECT tenants.id,
                 CASE WHEN t.tenant_id IS NOT NULL THEN t.retention_days ELSE d.retention_days END AS days,
                 coalesce(t.archive, d.archive, false) AS archive
            FROM tenants
            LEFT JOIN synaps.tenant_settings t ON t.tenant_id = tenants.id
            LEFT JOIN synaps.tenant_settings d ON d.tenant_id = '*'
           WHERE tenants.id IS NOT NULL) x
   WHERE x.days IS NOT NULL
$$;

-- Up to p_limit runs of p_tenant that have expired: finished more than p_days days ago, not
-- kept, and with every ledger event folded into usage_daily (so expiry never loses usage), oldest
-- first, with the UTC day they finished on (archives are per tenant and day). A run finishes
-- after it is created, so the created_at index bounds the scan.
CREATE FUNCTION synaps.expired_runs(p_tenant text, p_days integer, p_limit integer)
RETURNS TABLE (run_id uuid, day date)
LANGUAGE sql STABLE AS $$
  SELECT r.id, (r.finished_at AT TIME ZONE 'UTC')::date
    FROM synaps.runs r
   WHERE r.tenant_id = p_tenant
     AND r.created_at < now() - make_interval(days => p_days)
     AND r.finished_at < now() - make_interval(days => p_days)
     AND r.status IN ('succeeded', 'failed', 'cancelled') AND NOT r.keep
     AND NOT EXISTS (SELECT 1 FROM synaps.ledger_events e
                      WHERE e.run_id = r.id
                        AND e.id > (SELECT last_event_id FROM synaps.usage_rollup))
   ORDER BY r.created_at, r.id
   LIMIT p_limit
$$;

-- Deletes the runs among p_run_ids that are still expired (checked again under the run's row
-- lock; a run locked by someone else is left for the next pass) with everything that belongs to
-- them. The ledger events of runs created on a UTC day in p_partition_days stay: that day's
-- ledger partition is dropped whole once its runs are gone (docs/history.md). Returns {runs,
-- tasks, events, artifacts, versions, commands} deleted, or {busy: true} when another expiry
-- holds the expiry lock (one expiry at a time, any process).
CREATE FUNCTION synaps.expire_runs(p_tenant text, p_run_ids uuid[], p_days integer,
                                   p_partition_days date[] DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_runs      uuid[];
  v_commands  uuid[];
  n_tasks     bigint;
  n_events    bigint;
  n_versions  bigint;
  n_artifacts bigint;
  n_commands  bigint;
BEGIN
  -- An arbitrary constant naming "Synaps expiry" among advisory locks.
  IF NOT pg_try_advisory_xact_lock(7340032019) THEN
    RETURN jsonb_build_object('busy', true);
  END IF;
  SELECT coalesce(array_agg(x.id), '{}'), coalesce(array_agg(DISTINCT x.command_id), '{}')
    INTO v_runs, v_commands
    FROM (SELECT r.id, r.command_id FROM synaps.runs r
           WHERE r.id = ANY (p_run_ids) AND r.tenant_id = p_tenant
             AND r.finished_at < now() - make_interval(days => p_days)
             AND r.status IN ('succeeded', 'failed', 'cancelled') AND NOT r.keep
             AND NOT EXISTS (SELECT 1 FROM synaps.ledger_events e
                              WHERE e.run_id = r.id
                                AND e.id > (SELECT last_event_id FROM synaps.usage_rollup))
             FOR UPDATE SKIP LOCKED) x;
  IF cardinality(v_runs) = 0 THEN
    RETURN jsonb_build_object('runs', 0, 'tasks', 0, 'events', 0, 'artifacts', 0,
                              'versions', 0, 'commands', 0);
  END IF;

  PERFORM set_config('synaps.expiring', 'on', true);
  DELETE FROM synaps.ledger_events
   WHERE run_id = ANY (v_runs)
     AND NOT (synaps.uuid_v7_time(run_id) AT TIME ZONE 'UTC')::date = ANY (p_partition_days);
  GET DIAGNOSTICS n_events = ROW_COUNT;
  PERFORM set_config('synaps.expiring', 'off', true);

  DELETE FROM synaps.queue_items WHERE run_id = ANY (v_runs);
  DELETE FROM synaps.artifact_versions WHERE run_id = ANY (v_runs);
  GET DIAGNOSTICS n_versions = ROW_COUNT;
  -- An artifact is named per thread: a later run of the thread may have added versions to one
  -- an expired run created. It stays, owned by the run of its oldest remaining version.
  UPDATE synaps.artifacts a SET run_id = v.run_id, task_id = v.task_id
    FROM (SELECT DISTINCT ON (av.artifact_id) av.artifact_id, av.run_id, av.task_id
            FROM synaps.artifact_versions av
           WHERE av.artifact_id IN (SELECT id FROM synaps.artifacts WHERE run_id = ANY (v_runs))
           ORDER BY av.artifact_id, av.version) v
   WHERE a.id = v.artifact_id;
  DELETE FROM synaps.artifacts WHERE run_id = ANY (v_runs);
  GET DIAGNOSTICS n_artifacts = ROW_COUNT;
  -- A schedule's fire history stays; it no longer names the run.
  UPDATE synaps.schedule_fires f SET run_id = NULL, open = false,
         result = coalesce(f.result, (SELECT r.status FROM synaps.runs r WHERE r.id = f.run_id))
   WHERE f.run_id = ANY (v_runs);
  DELETE FROM synaps.tasks WHERE run_id = ANY (v_runs);
  GET DIAGNOSTICS n_tasks = ROW_COUNT;
  DELETE FROM synaps.runs WHERE id = ANY (v_runs);
  -- A command goes with its last run (its idempotency key is then free again).
  DELETE FROM synaps.commands c
   WHERE c.id = ANY (v_commands)
     AND NOT EXISTS (SELECT 1 FROM synaps.runs r WHERE r.command_id = c.id);
  GET DIAGNOSTICS n_commands = ROW_COUNT;
  RETURN jsonb_build_object('runs', cardinality(v_runs), 'tasks', n_tasks, 'events', n_events,
                            'artifacts', n_artifacts, 'versions', n_versions,
                            'commands', n_commands);
END $$;

-- Marks a run to keep (or not), with an audit row and a run.keep ledger event. Returns
-- 'not_found' for a run of another tenant (p_tenant NULL: the installation scope, any tenant).
CREATE FUNCTION synaps.set_run_keep(p_tenant text, p_run_id uuid, p_keep boolean, p_actor text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_tenant text;
BEGIN
  UPDATE synaps.runs SET keep = p_keep
   WHERE id = p_run_id AND (p_tenant IS NULL OR tenant_id = p_tenant)
  RETURNING tenant_id INTO v_tenant;
  IF NOT FOUND THEN RETURN 'not_found'; END IF;
  INSERT INTO synaps.audit_log (tenant_id, actor, action, target, data)
  VALUES (v_tenant, p_actor, 'run.keep', p_run_id::text, jsonb_build_object('keep', p_keep));
  PERFORM synaps.append_event(p_run_id, NULL, 'run.keep',
                              NULL, jsonb_build_object('keep', p_keep, 'by', p_actor));
  RETURN CASE WHEN p_keep THEN 'kept' ELSE 'released' END;
END $$;
