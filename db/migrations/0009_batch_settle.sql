-- write_task_batch as in 0006, and a run that still has tasks after the batch goes through
-- settle_run, as it does after complete_queue_item: since 0008 that keeps the run's status in
-- step with its tasks (awaiting_approval once only held tasks remain). 0006 finished the runs
-- with nothing left set-based and left the others alone.
CREATE OR REPLACE FUNCTION synaps.write_task_batch(p_event_ids bigint[], p_event_epochs bigint[], p_event_types text[],
                                                   p_event_data jsonb[],
                                                   p_progress_ids bigint[], p_progress_epochs bigint[], p_progress_texts text[],
                                                   p_ids bigint[], p_epochs bigint[], p_holds boolean[],
                                                   p_outputs jsonb, p_artifacts jsonb)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  n          integer := coalesce(array_length(p_ids, 1), 0);
  v_state    text[];
  v_done     integer[];
  v_runs     uuid[];
  v_failed_runs   uuid[];
  v_failed_errors jsonb[];
  v_open_runs     uuid[];
  r          record;
  i          integer;
BEGIN
  IF coalesce(array_length(p_event_ids, 1), 0) > 0 THEN
    PERFORM synaps.append_task_events(p_event_ids, p_event_epochs, p_event_types, p_event_data);
  END IF;
  IF coalesce(array_length(p_progress_ids, 1), 0) > 0 THEN
    PERFORM synaps.append_progress(p_progress_ids, p_progress_epochs, p_progress_texts);
  END IF;
  IF n = 0 THEN RETURN; END IF;
  v_state := array_fill(NULL::text, ARRAY[n]);

  -- Holds for approval are rare: one at a time.
  FOR r IN SELECT u.id, u.epoch, u.ord::integer AS ord
             FROM unnest(p_ids, p_epochs, p_holds) WITH ORDINALITY AS u(id, epoch, hold, ord)
            WHERE u.hold LOOP
    v_state[r.ord] := synaps.hold_queue_item(r.id, r.epoch, p_outputs -> (r.ord - 1), p_artifacts -> (r.ord - 1));
  END LOOP;

  -- Completions whose lease is current: each gets artifact.created per artifact, then
  -- task.completed, numbered from one runs update per run.
  WITH req AS (
    SELECT u.id, u.epoch, u.ord::integer AS ord, p_outputs -> (u.ord::integer - 1) AS output,
           coalesce(p_artifacts -> (u.ord::integer - 1), '[]'::jsonb) AS arts
      FROM unnest(p_ids, p_epochs, p_holds) WITH ORDINALITY AS u(id, epoch, hold, ord)
     WHERE NOT coalesce(u.hold, false)
  ), del AS (
    DELETE FROM synaps.queue_items q USING req
     WHERE q.id = req.id AND q.lease_epoch = req.epoch AND q.status = 'leased'
    RETURNING q.run_id, q.task_id, q.attempts, q.queue, req.ord, req.output, req.arts,
              jsonb_array_length(req.arts) AS n_arts
  ), per_run AS (
    SELECT d.run_id, sum(d.n_arts + 1) AS n FROM del d GROUP BY d.run_id
  ), seqs AS (
    UPDATE synaps.runs u SET last_seq = u.last_seq + per_run.n
      FROM per_run
     WHERE u.id = per_run.run_id
    RETURNING u.id, u.tenant_id, u.thread_id, u.last_seq - per_run.n AS base
  ), items AS (
    SELECT d.*, s.tenant_id, s.thread_id,
           s.base + sum(d.n_arts + 1) OVER (PARTITION BY d.run_id ORDER BY d.ord) - d.n_arts AS first_seq
      FROM del d JOIN seqs s ON s.id = d.run_id
  ), arts AS (
    SELECT i.run_id, i.task_id, i.attempts, i.tenant_id, i.thread_id, i.ord, a.k,
           i.first_seq + a.k - 1 AS seq, a.value->>'name' AS name, a.value AS a
      FROM items i, jsonb_array_elements(i.arts) WITH ORDINALITY AS a(value, k)
  ), up AS (
    -- One upsert per (thread, name), raising latest_version by the versions this batch adds.
    INSERT INTO synaps.artifacts AS x (id, tenant_id, run_id, task_id, thread_id, name, content_type, latest_version)
    SELECT gen_random_uuid(), g.tenant_id, g.run_id, g.task_id, g.thread_id, g.name, g.content_type, g.n
      FROM (SELECT DISTINCT ON (a.thread_id, a.name) a.tenant_id, a.run_id, a.task_id, a.thread_id, a.name,
                   a.a->>'contentType' AS content_type,
                   count(*) OVER (PARTITION BY a.thread_id, a.name) AS n
              FROM arts a ORDER BY a.thread_id, a.name, a.ord, a.k) g
    ON CONFLICT ON CONSTRAINT artifacts_thread_name_uq DO UPDATE SET latest_version = x.latest_version + EXCLUDED.latest_version
    RETURNING x.id, x.thread_id, x.name, x.latest_version
  ), versioned AS (
    SELECT a.*, up.id AS artifact_id,
           up.latest_version - count(*) OVER (PARTITION BY a.thread_id, a.name)
             + row_number() OVER (PARTITION BY a.thread_id, a.name ORDER BY a.ord, a.k) AS version
      FROM arts a JOIN up ON up.thread_id = a.thread_id AND up.name = a.name
  ), av AS (
    INSERT INTO synaps.artifact_versions (artifact_id, version, run_id, task_id, object_key, size, sha256)
    SELECT v.artifact_id, v.version, v.run_id, v.task_id, v.a->>'objectKey', (v.a->>'size')::bigint, v.a->>'sha256'
      FROM versioned v
  ), ae AS (
    INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data)
    SELECT v.run_id, v.task_id, v.seq, 'artifact.created', v.attempts,
           jsonb_build_object('artifactId', v.artifact_id, 'name', v.name, 'version', v.version,
                              'size', (v.a->>'size')::bigint, 'sha256', v.a->>'sha256')
      FROM versioned v
  ), tu AS (
    UPDATE synaps.tasks t SET status = 'succeeded', output = i.output, error = NULL, finished_at = now()
      FROM items i
     WHERE t.id = i.task_id
  ), te AS (
    INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data)
    SELECT i.run_id, i.task_id, i.first_seq + i.n_arts, 'task.completed', i.attempts,
           coalesce(i.output, '{}'::jsonb) - 'text'
      FROM items i
  )
  SELECT (SELECT array_agg(i.ord) FROM items i),
         (SELECT array_agg(DISTINCT i.run_id) FROM items i)
    INTO v_done, v_runs;

  FOREACH i IN ARRAY coalesce(v_done, '{}'::integer[]) LOOP
    v_state[i] := 'completed';
  END LOOP;

  IF v_runs IS NOT NULL THEN
    -- Fan-out: waiting tasks whose dependencies have all succeeded become claimable.
    WITH released AS (
      UPDATE synaps.tasks d SET status = 'queued'
       WHERE d.run_id = ANY (v_runs) AND d.status = 'waiting'
         AND NOT EXISTS (SELECT 1 FROM unnest(d.depends_on) AS dep(name)
                           LEFT JOIN synaps.tasks u ON u.run_id = d.run_id AND u.name = dep.name
                          WHERE u.status IS DISTINCT FROM 'succeeded')
      RETURNING d.id
    ), ready AS (
      UPDATE synaps.queue_items qi SET status = 'ready', available_at = now()
        FROM released WHERE qi.task_id = released.id
      RETURNING qi.run_id, qi.queue
    )
    INSERT INTO synaps.outbox (subject, payload)
    SELECT 'synaps.wakeup.' || w.queue, jsonb_build_object('queue', w.queue, 'runId', w.run_id)
      FROM (SELECT DISTINCT ready.run_id, ready.queue FROM ready) w;

    -- Runs with no task left to run finish (settle_run): succeeded ones in one statement each
    -- for runs, ledger and outbox; a run with a failed task through finish_run, with the first
    -- failure's error.
    WITH settled AS (
      SELECT u.id,
             (SELECT jsonb_build_object('task', t.name) || coalesce(t.error, '{}'::jsonb)
                FROM synaps.tasks t WHERE t.run_id = u.id AND t.status = 'failed'
               ORDER BY t.finished_at, t.name LIMIT 1) AS error
        FROM unnest(v_runs) AS u(id)
       WHERE NOT EXISTS (SELECT 1 FROM synaps.tasks t
                          WHERE t.run_id = u.id AND t.status NOT IN ('succeeded', 'failed', 'cancelled'))
    ), finished AS (
      UPDATE synaps.runs ru SET status = 'succeeded', error = NULL, finished_at = now(), last_seq = ru.last_seq + 1
        FROM settled s
       WHERE ru.id = s.id AND s.error IS NULL AND ru.status NOT IN ('succeeded', 'failed', 'cancelled')
      RETURNING ru.id, ru.last_seq
    ), events AS (
      INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data)
      SELECT f.id, NULL, f.last_seq, 'run.succeeded', NULL, '{}'::jsonb FROM finished f
    ), outbox AS (
      INSERT INTO synaps.outbox (subject, payload)
      SELECT 'synaps.run.' || f.id, jsonb_build_object('type', 'run.succeeded', 'runId', f.id) FROM finished f
    )
    SELECT array_agg(s.id), array_agg(s.error) INTO v_failed_runs, v_failed_errors
      FROM settled s WHERE s.error IS NOT NULL;
    FOR i IN 1 .. coalesce(array_length(v_failed_runs, 1), 0) LOOP
      PERFORM synaps.finish_run(v_failed_runs[i], 'failed', v_failed_errors[i]);
    END LOOP;

    -- Runs with tasks left go through settle_run, which keeps their status in step with those
    -- tasks (0008: awaiting_approval when only held ones remain).
    SELECT array_agg(u.id) INTO v_open_runs
      FROM unnest(v_runs) AS u(id)
     WHERE EXISTS (SELECT 1 FROM synaps.tasks t
                    WHERE t.run_id = u.id AND t.status NOT IN ('succeeded', 'failed', 'cancelled'));
    FOR i IN 1 .. coalesce(array_length(v_open_runs, 1), 0) LOOP
      PERFORM synaps.settle_run(v_open_runs[i]);
    END LOOP;
  END IF;

  -- What was neither held nor completed: cancelled while leased, or a stale lease.
  FOR i IN 1 .. n LOOP
    IF v_state[i] IS NULL THEN
      v_state[i] := CASE WHEN synaps.take_cancelled_item(p_ids[i], p_epochs[i]) THEN 'cancelled'
                         ELSE 'lease_lost' END;
    END IF;
    RETURN NEXT v_state[i];
  END LOOP;
END $$;
