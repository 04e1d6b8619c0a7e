-- Expiry deletes a run only at the ledger position its archive holds (issue #18, review).
--
-- A tenant that archives has its expiring runs written to the object store first, then deleted
-- (src/history/expiry.cpp). The delete did not look at what the archive held: a run that got a
-- ledger event between archive and delete (a late event, a keep set and released, an operator's
-- action) went with history its archive lacks. expire_runs now takes each run's last_seq as
-- archived (p_last_seqs, parallel to p_run_ids; NULL for tenants that do not archive) and leaves
-- a run whose runs.last_seq differs: the next batch or pass archives its new state first.
-- The row lock (FOR UPDATE) makes the comparison hold until the delete commits: append_event
-- updates runs.last_seq, so an event appended meanwhile either waits for the delete or is seen.

DROP FUNCTION synaps.expire_runs(text, uuid[], integer, date[]);

CREATE FUNCTION synaps.expire_runs(p_tenant text, p_run_ids uuid[], p_days integer,
                                   p_partition_days date[] DEFAULT '{}'::date[],
                                   p_last_seqs bigint[] DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_runs      uuid[];
  v_commands  uuid[];
  n_tasks     bigint;
  n_events    bigint;
  n_versions  bigint;
  n_artifacts bigint;
  n_commands  bigint;
BEGIN
  IF p_last_seqs IS NOT NULL AND cardinality(p_last_seqs) <> cardinality(p_run_ids) THEN
    RAISE EXCEPTION 'expire_runs: % run ids but % last seqs', cardinality(p_run_ids),
                    cardinality(p_last_seqs) USING ERRCODE = '22023';
  END IF;
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
             -- Archived at exactly this ledger position: a run that got an event since its
             -- archive (FOR UPDATE rechecks this on the row's newest version) stays.
             AND (p_last_seqs IS NULL
                  OR r.last_seq = (SELECT s.seq FROM unnest(p_run_ids, p_last_seqs) s(id, seq)
                                    WHERE s.id = r.id LIMIT 1))
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
