-- One completion path (issue #13, "Leave the schema readable"). Until now a task succeeded in two
-- places: write_task_batch's set-based completion (0006, 0009) for the worker, and
-- complete_queue_item (0002, 0005) for an approval (decide_task), which had to be patched to
-- agree with the first. Both now go through synaps.settle_tasks, and complete_queue_item is gone.
-- The current definition of every function is in db/schema.sql.
--
-- synaps.settle_tasks(p_ids, p_epochs, p_outputs, p_artifacts) RETURNS text[]
--   The only way a task succeeds. p_ids and p_epochs are parallel arrays of queue item ids and
--   the lease epochs the caller holds; p_outputs and p_artifacts are JSON arrays with one element
--   per item: the task's output (null or missing: none), and its artifacts as [{name,
--   contentType, objectKey, size, sha256}] (null or missing: none). Returns one state per item,
--   in input order:
--     'completed'  the item was leased under that epoch: it is deleted and its task succeeded;
--     'cancelled'  the item was cancelled while leased: it is removed, nothing else is written;
--     'lease_lost' no item with that lease (expired and reclaimed, or settled already): nothing.
--   For the completed items, set-based (one statement per table for the whole call):
--     - each run's ledger stays dense: per item, in input order, one artifact.created per artifact
--       then task.completed (data: the output without its text), numbered from one update of
--       runs.last_seq per run; the events carry the item's attempt;
--     - artifacts: one upsert per (thread, name) raising latest_version, one artifact_versions
--       row per artifact;
--     - the task: status succeeded, output set, error cleared, finished_at now();
--     - fan-out: waiting tasks of those runs whose dependencies all succeeded become queued, their
--       items ready, with one synaps.wakeup.<queue> outbox row per (run, queue) released;
--     - each run settles: with no task left to run it finishes (run.succeeded, or run.failed with
--       the first failed task's error, through finish_run's event and outbox row); with tasks
--       left its status follows them (settle_run: awaiting_approval once only held ones remain).
--   Locks taken: the queue items, then the runs (last_seq), tasks and artifacts rows it writes.
--   A caller that locks a run first (decide_task, like cancel_run) keeps that order.
--   Callers: write_task_batch (a worker's batch, after its holds) and decide_task (an approved
--   held item, handed over under a fresh epoch nobody else holds).
CREATE FUNCTION synaps.settle_tasks(p_ids bigint[], p_epochs bigint[], p_outputs jsonb, p_artifacts jsonb)
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
  n          integer := coalesce(array_length(p_ids, 1), 0);
  v_state    text[];
  v_done     integer[];
  v_runs     uuid[];
  v_failed_runs   uuid[];
  v_failed_errors jsonb[];
  v_open_runs     uuid[];
  i          integer;
BEGIN
  IF n = 0 THEN RETURN '{}'::text[]; END IF;
  v_state := array_fill(NULL::text, ARRAY[n]);

  WITH req AS (
    SELECT u.id, u.epoch, u.ord::integer AS ord, nullif(p_outputs -> (u.ord::integer - 1), 'null'::jsonb) AS output,
           coalesce(nullif(p_artifacts -> (u.ord::integer - 1), 'null'::jsonb), '[]'::jsonb) AS arts
      FROM unnest(p_ids, p_epochs) WITH ORDINALITY AS u(id, epoch, ord)
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
    -- One upsert per (thread, name), raising latest_version by the versions this call adds.
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

    -- Runs with no task left to run finish: succeeded ones in one statement each for runs,
    -- ledger and outbox (as finish_run writes them); a run with a failed task through
    -- finish_run, with the first failure's error.
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

    -- Runs with tasks left: their status follows those tasks.
    SELECT array_agg(u.id) INTO v_open_runs
      FROM unnest(v_runs) AS u(id)
     WHERE EXISTS (SELECT 1 FROM synaps.tasks t
                    WHERE t.run_id = u.id AND t.status NOT IN ('succeeded', 'failed', 'cancelled'));
    FOR i IN 1 .. coalesce(array_length(v_open_runs, 1), 0) LOOP
      PERFORM synaps.settle_run(v_open_runs[i]);
    END LOOP;
  END IF;

  -- What did not complete: cancelled while leased, or a stale lease.
  FOR i IN 1 .. n LOOP
    IF v_state[i] IS NULL THEN
      v_state[i] := CASE WHEN synaps.take_cancelled_item(p_ids[i], p_epochs[i]) THEN 'cancelled'
                         ELSE 'lease_lost' END;
    END IF;
  END LOOP;
  RETURN v_state;
END $$;

-- A worker's write batch, in one transaction: its buffered task events and progress (those of
-- stale or cancelled leases are dropped), then its holds (hold_queue_item, one at a time: they
-- are rare), then every other item through settle_tasks. Returns one state per item of p_ids,
-- in order: 'held', 'completed', 'cancelled' or 'lease_lost'. Arguments and answers as in 0009.
CREATE OR REPLACE FUNCTION synaps.write_task_batch(p_event_ids bigint[], p_event_epochs bigint[], p_event_types text[],
                                                   p_event_data jsonb[],
                                                   p_progress_ids bigint[], p_progress_epochs bigint[], p_progress_texts text[],
                                                   p_ids bigint[], p_epochs bigint[], p_holds boolean[],
                                                   p_outputs jsonb, p_artifacts jsonb)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  n           integer := coalesce(array_length(p_ids, 1), 0);
  v_state     text[];
  v_ords      integer[];
  v_ids       bigint[];
  v_epochs    bigint[];
  v_outputs   jsonb;
  v_artifacts jsonb;
  v_settled   text[];
  r           record;
  i           integer;
BEGIN
  IF coalesce(array_length(p_event_ids, 1), 0) > 0 THEN
    PERFORM synaps.append_task_events(p_event_ids, p_event_epochs, p_event_types, p_event_data);
  END IF;
  IF coalesce(array_length(p_progress_ids, 1), 0) > 0 THEN
    PERFORM synaps.append_progress(p_progress_ids, p_progress_epochs, p_progress_texts);
  END IF;
  IF n = 0 THEN RETURN; END IF;
  v_state := array_fill(NULL::text, ARRAY[n]);

  FOR r IN SELECT u.id, u.epoch, u.ord::integer AS ord
             FROM unnest(p_ids, p_epochs, p_holds) WITH ORDINALITY AS u(id, epoch, hold, ord)
            WHERE u.hold LOOP
    v_state[r.ord] := synaps.hold_queue_item(r.id, r.epoch, p_outputs -> (r.ord - 1), p_artifacts -> (r.ord - 1));
  END LOOP;

  SELECT array_agg(u.ord::integer ORDER BY u.ord), array_agg(u.id ORDER BY u.ord),
         array_agg(u.epoch ORDER BY u.ord),
         jsonb_agg(p_outputs -> (u.ord::integer - 1) ORDER BY u.ord),
         jsonb_agg(p_artifacts -> (u.ord::integer - 1) ORDER BY u.ord)
    INTO v_ords, v_ids, v_epochs, v_outputs, v_artifacts
    FROM unnest(p_ids, p_epochs, p_holds) WITH ORDINALITY AS u(id, epoch, hold, ord)
   WHERE NOT coalesce(u.hold, false);
  IF v_ords IS NOT NULL THEN
    v_settled := synaps.settle_tasks(v_ids, v_epochs, v_outputs, v_artifacts);
    FOR i IN 1 .. array_length(v_ords, 1) LOOP
      v_state[v_ords[i]] := v_settled[i];
    END LOOP;
  END IF;

  FOR i IN 1 .. n LOOP
    RETURN NEXT v_state[i];
  END LOOP;
END $$;

-- Decides a held task (docs/api.md, "Approvals"), as in 0008: locks the run first (as cancel_run
-- does, so a decision racing a cancel waits instead of deadlocking), records task.approved or
-- task.rejected with the actor and reason. Approve: the held item is handed to settle_tasks under
-- a fresh epoch nobody else holds, with the held output and artifacts, so it succeeds exactly as
-- a worker's completion would. Reject: the held output is cleared and the item dead-lettered
-- (code 'rejected'). Returns 'approved', 'rejected', 'not_found' (no such task in the tenant) or
-- 'not_held' (the task is not awaiting approval).
CREATE OR REPLACE FUNCTION synaps.decide_task(p_tenant text, p_task_id uuid, p_approve boolean, p_actor text,
                                              p_reason text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  q synaps.queue_items;
  v_task synaps.tasks;
BEGIN
  SELECT * INTO v_task FROM synaps.tasks WHERE id = p_task_id AND tenant_id = p_tenant;
  IF NOT FOUND THEN RETURN 'not_found'; END IF;
  PERFORM 1 FROM synaps.runs WHERE id = v_task.run_id FOR UPDATE;
  SELECT * INTO q FROM synaps.queue_items WHERE task_id = p_task_id FOR UPDATE;
  IF NOT FOUND OR q.status <> 'held' THEN RETURN 'not_held'; END IF;
  PERFORM synaps.append_event(q.run_id, q.task_id, CASE WHEN p_approve THEN 'task.approved' ELSE 'task.rejected' END,
                              q.attempts, jsonb_strip_nulls(jsonb_build_object('by', p_actor,
                                                                               'reason', nullif(p_reason, ''))));
  IF p_approve THEN
    UPDATE synaps.queue_items SET status = 'leased', lease_epoch = lease_epoch + 1, lease_owner = p_actor
     WHERE id = q.id RETURNING * INTO q;
    PERFORM synaps.settle_tasks(ARRAY[q.id], ARRAY[q.lease_epoch], jsonb_build_array(q.held->'output'),
                                jsonb_build_array(q.held->'artifacts'));
    RETURN 'approved';
  END IF;
  UPDATE synaps.queue_items SET held = NULL WHERE id = q.id;
  UPDATE synaps.tasks SET output = NULL WHERE id = q.task_id;
  PERFORM synaps.dead_letter(q.id, jsonb_build_object(
    'code', 'rejected', 'message', 'rejected by ' || p_actor ||
    CASE WHEN coalesce(p_reason, '') = '' THEN '' ELSE ': ' || p_reason END));
  RETURN 'rejected';
END $$;

DROP FUNCTION synaps.complete_queue_item(bigint, bigint, jsonb, jsonb);
