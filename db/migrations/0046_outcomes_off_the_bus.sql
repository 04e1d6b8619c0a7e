-- A run's outcome is read from the ledger, not from the bus (issue #13: cost per task).
--
-- Every finished run wrote an outbox row (`run.succeeded` or `run.failed` on synaps.run.<id>),
-- and every task held for approval one more (`run.awaiting_approval`): 373 bytes of WAL per
-- task with the row's two indexes, then the relay's update and delete of it, in the hot path of
-- every completion. Nothing in Synaps reads those messages (the worker acts on `run.cancelled`
-- alone; `synaps runs watch`, the console and GET /v1/events read the ledger, which has the
-- same events durably, in order and resumable), and the architecture has the bus carry wakeups
-- and control alone. Now synaps.run.<id> carries `run.cancelled` only (docs/queue.md, "What the
-- bus carries"): finish_run writes the outbox row for a cancellation alone, settle_tasks and
-- hold_queue_item write none. The ledger events are unchanged.

CREATE OR REPLACE FUNCTION synaps.finish_run(p_run_id uuid, p_status text, p_error jsonb) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_seq bigint;
BEGIN
  UPDATE synaps.runs SET status = p_status, error = p_error, finished_at = now(), last_seq = last_seq + 1
   WHERE id = p_run_id AND status NOT IN ('succeeded', 'failed', 'cancelled')
  RETURNING last_seq INTO v_seq;
  IF FOUND THEN
    INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data)
    VALUES (p_run_id, NULL, v_seq, 'run.' || p_status, NULL,
            CASE WHEN p_error IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('error', p_error) END);
    -- Only a cancellation goes on the bus: the workers holding the run's leases stop at once.
    IF p_status = 'cancelled' THEN
      INSERT INTO synaps.outbox (subject, payload)
      VALUES ('synaps.run.' || p_run_id, jsonb_build_object('type', 'run.cancelled', 'runId', p_run_id));
    END IF;
  END IF;
END $$;

CREATE OR REPLACE FUNCTION synaps.hold_queue_item(p_item_id bigint, p_epoch bigint, p_output jsonb, p_artifacts jsonb) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
  q synaps.queue_items;
BEGIN
  UPDATE synaps.queue_items
     SET status = 'held', lease_owner = NULL, lease_expires_at = NULL,
         held = jsonb_build_object('output', p_output, 'artifacts', coalesce(p_artifacts, '[]'::jsonb))
   WHERE id = p_item_id AND lease_epoch = p_epoch AND status = 'leased'
  RETURNING * INTO q;
  IF NOT FOUND THEN
    IF synaps.take_cancelled_item(p_item_id, p_epoch) THEN RETURN 'cancelled'; END IF;
    RETURN 'lease_lost';
  END IF;
  UPDATE synaps.tasks SET status = 'awaiting_approval', output = p_output WHERE id = q.task_id;
  PERFORM synaps.refresh_run_status(q.run_id);
  -- The approver reads the answer here: it is in no artifact until approved.
  PERFORM synaps.append_event(q.run_id, q.task_id, 'task.awaiting_approval', q.attempts,
                              jsonb_build_object('verdicts', coalesce(p_output->'arbiters', '[]'::jsonb),
                                                 'text', p_output->'text'));
  RETURN 'held';
END $$;

CREATE OR REPLACE FUNCTION synaps.settle_tasks(p_ids bigint[], p_epochs bigint[], p_outputs jsonb, p_artifacts jsonb) RETURNS text[]
    LANGUAGE plpgsql
    AS $$
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
    RETURNING q.run_id, q.task_id, q.attempts, q.queue, req.ord, req.output, req.arts
  ), per_run0 AS (
    -- One event per completed task (its task.completed, which names its artifacts).
    SELECT d.run_id, count(*) AS n, array_agg(d.task_id) AS done FROM del d GROUP BY d.run_id
  ), per_run AS (
    -- ends: the run is open and every other task of it has succeeded (or was cancelled), so
    -- these completions finish it (this statement still sees them running; waiting and held
    -- tasks, including those this call releases, keep it open; a failed one fails it further
    -- down). A concurrent cancel_run cannot slip in: it would have to lock these queue items.
    SELECT p.run_id, p.n,
           r.status NOT IN ('succeeded', 'failed', 'cancelled')
           AND NOT EXISTS (SELECT 1 FROM synaps.tasks t
                            WHERE t.run_id = p.run_id AND t.status NOT IN ('succeeded', 'cancelled')
                              AND t.id <> ALL (p.done)) AS ends
      FROM per_run0 p JOIN synaps.runs r ON r.id = p.run_id
  ), seqs AS (
    -- One update per run: the sequence numbers of its events, and its end when it ends here.
    UPDATE synaps.runs u
       SET last_seq = u.last_seq + per_run.n + CASE WHEN per_run.ends THEN 1 ELSE 0 END,
           status = CASE WHEN per_run.ends THEN 'succeeded' ELSE u.status END,
           error = CASE WHEN per_run.ends THEN NULL ELSE u.error END,
           finished_at = CASE WHEN per_run.ends THEN now() ELSE u.finished_at END
      FROM per_run
     WHERE u.id = per_run.run_id
    RETURNING u.id, u.tenant_id, u.thread_id,
              u.last_seq - per_run.n - CASE WHEN per_run.ends THEN 1 ELSE 0 END AS base,
              per_run.ends, u.last_seq
  ), items AS (
    SELECT d.*, s.tenant_id, s.thread_id,
           s.base + row_number() OVER (PARTITION BY d.run_id ORDER BY d.ord) AS seq
      FROM del d JOIN seqs s ON s.id = d.run_id
  ), arts AS (
    SELECT i.run_id, i.task_id, i.attempts, i.tenant_id, i.thread_id, i.ord, a.k,
           a.value->>'name' AS name, a.value AS a
      FROM items i, jsonb_array_elements(i.arts) WITH ORDINALITY AS a(value, k)
  ), up AS (
    -- One upsert per (thread, name), raising latest_version by the versions this call adds.
    INSERT INTO synaps.artifacts AS x (id, tenant_id, run_id, task_id, thread_id, name, content_type, latest_version)
    SELECT synaps.uuid_v7(), g.tenant_id, g.run_id, g.task_id, g.thread_id, g.name, g.content_type, g.n
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
  ), tu AS (
    UPDATE synaps.tasks t SET status = 'succeeded', output = i.output, error = NULL, finished_at = now()
      FROM items i
     WHERE t.id = i.task_id
  ), made AS (
    -- What each completion produced, as its task.completed event names it.
    SELECT v.ord,
           jsonb_agg(jsonb_build_object('artifactId', v.artifact_id, 'name', v.name, 'version', v.version,
                                        'size', (v.a->>'size')::bigint, 'sha256', v.a->>'sha256')
                     ORDER BY v.k) AS list
      FROM versioned v GROUP BY v.ord
  ), ev AS (
    -- One insert for every event of the call, in seq order per run, so the ledger's ids follow
    -- its seqs (the tenant-wide feed reads by id): per item its task.completed (data: the
    -- output without its text, and `artifacts`, the versions it produced, when there are any;
    -- an output's own `artifacts` field is kept as `outputArtifacts`, so `artifacts` is only
    -- ever this list), then run.succeeded of each run that ends. Before 0039 each artifact was
    -- an artifact.created event of its own, just before the task.completed: readers show both.
    INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data)
    SELECT e.run_id, e.task_id, e.seq, e.type, e.attempt, e.data
      FROM (SELECT i.run_id, i.task_id, i.seq, 'task.completed' AS type, i.attempts AS attempt,
                   (coalesce(i.output, '{}'::jsonb) - 'text' - 'artifacts')
                   || CASE WHEN m.list IS NULL THEN '{}'::jsonb
                           ELSE jsonb_build_object('artifacts', m.list) END
                   || CASE WHEN i.output ? 'artifacts'
                           THEN jsonb_build_object('outputArtifacts', i.output -> 'artifacts')
                           ELSE '{}'::jsonb END AS data
              FROM items i LEFT JOIN made m ON m.ord = i.ord
            UNION ALL
            SELECT s.id, NULL, s.last_seq, 'run.succeeded', NULL, '{}'::jsonb FROM seqs s WHERE s.ends) e
     ORDER BY e.run_id, e.seq
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

    -- Runs with no task left to run finish: succeeded ones in one statement each for runs and
    -- ledger (as finish_run writes them); a run with a failed task through
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
