-- Fast paths for the worker's hot statements (docs/benchmarks.md, Profiling). Same contracts as
-- 0002_queue_functions.sql, fewer statements: every function a task passes through bumped
-- runs.last_seq once per event and walked its batch one row at a time. Here the ledger's
-- sequence numbers are reserved once per run and statement (UPDATE runs SET last_seq =
-- last_seq + n), claims and progress are set-based, an artifact's next version comes from
-- artifacts.latest_version, and a batch of progress and completions is one call
-- (synaps.write_task_batch) and so one commit.

-- The newest version of each artifact; bumped by the upsert that records a new version, whose row
-- lock serializes versions of one (thread, name).
ALTER TABLE synaps.artifacts ADD COLUMN latest_version integer NOT NULL DEFAULT 0;
UPDATE synaps.artifacts a
   SET latest_version = v.latest
  FROM (SELECT artifact_id, max(version) AS latest FROM synaps.artifact_versions GROUP BY 1) v
 WHERE v.artifact_id = a.id;

-- Marks a run finished (once) and records the matching event and a run-subject outbox row. The
-- status change and the event's sequence number are one row update.
CREATE OR REPLACE FUNCTION synaps.finish_run(p_run_id uuid, p_status text, p_error jsonb)
RETURNS void LANGUAGE plpgsql AS $$
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
    INSERT INTO synaps.outbox (subject, payload)
    VALUES ('synaps.run.' || p_run_id, jsonb_build_object('type', 'run.' || p_status, 'runId', p_run_id));
  END IF;
END $$;

-- Claims as 0002 did (same arguments, rows and order: priority, then age), set-based: one
-- statement each for the queue items, their tasks, their runs (status and the task.claimed
-- sequence numbers together) and the ledger, instead of four per item.
CREATE OR REPLACE FUNCTION synaps.claim_queue_items(p_worker text, p_queues text[], p_limit integer, p_lease_seconds integer,
                                                    p_tenant text DEFAULT NULL)
RETURNS TABLE (item_id bigint, lease_epoch bigint, attempt integer, task_id uuid, run_id uuid,
               tenant_id text, thread_id uuid, task_name text, task_kind text, spec jsonb,
               lease_expires_at timestamptz, upstream jsonb, history jsonb,
               snapshot_version bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_ids      bigint[];
  v_expired  bigint[];
  v_item     bigint;
  v_version  bigint;
BEGIN
  WITH picked AS (
    SELECT q.id, q.priority, q.available_at FROM synaps.queue_items q
     WHERE q.queue = ANY (p_queues) AND q.status IN ('ready', 'leased') AND q.available_at <= now()
       AND (p_tenant IS NULL OR q.tenant_id = p_tenant)
     ORDER BY q.priority DESC, q.available_at, q.id
     LIMIT p_limit
     FOR UPDATE SKIP LOCKED
  ), claimed AS (
    UPDATE synaps.queue_items q
       SET status = 'leased', lease_owner = p_worker, lease_epoch = q.lease_epoch + 1,
           attempts = q.attempts + 1,
           lease_expires_at = now() + make_interval(secs => p_lease_seconds),
           available_at = now() + make_interval(secs => p_lease_seconds)
      FROM picked
     WHERE q.id = picked.id
    RETURNING q.id, q.attempts, q.max_attempts, picked.priority, picked.available_at AS was_available
  )
  SELECT array_agg(c.id ORDER BY c.priority DESC, c.was_available, c.id) FILTER (WHERE c.attempts <= c.max_attempts),
         array_agg(c.id) FILTER (WHERE c.attempts > c.max_attempts)
    INTO v_ids, v_expired
    FROM claimed c;

  -- The last attempt's worker vanished without completing or failing.
  FOREACH v_item IN ARRAY coalesce(v_expired, '{}'::bigint[]) LOOP
    PERFORM synaps.dead_letter(v_item, jsonb_build_object(
      'code', 'lease_expired', 'message', 'lease expired on the last allowed attempt'));
  END LOOP;
  IF v_ids IS NULL THEN RETURN; END IF;

  UPDATE synaps.tasks t SET status = 'running', attempt = q.attempts, started_at = coalesce(t.started_at, now())
    FROM synaps.queue_items q
   WHERE q.id = ANY (v_ids) AND t.id = q.task_id;

  WITH c AS (
    SELECT q.id, q.run_id, q.task_id, q.attempts, q.lease_epoch, q.lease_expires_at
      FROM synaps.queue_items q WHERE q.id = ANY (v_ids)
  ), per_run AS (
    SELECT c.run_id, count(*) AS n FROM c GROUP BY c.run_id
  ), seqs AS (
    UPDATE synaps.runs r
       SET last_seq = r.last_seq + per_run.n,
           status = CASE WHEN r.status = 'queued' THEN 'running' ELSE r.status END,
           started_at = CASE WHEN r.status = 'queued' THEN now() ELSE r.started_at END
      FROM per_run
     WHERE r.id = per_run.run_id
    RETURNING r.id, r.last_seq - per_run.n AS base
  )
  INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data)
  SELECT c.run_id, c.task_id, seqs.base + row_number() OVER (PARTITION BY c.run_id ORDER BY c.id),
         'task.claimed', c.attempts,
         jsonb_build_object('worker', p_worker, 'leaseEpoch', c.lease_epoch,
                            'leaseExpiresAt', c.lease_expires_at)
    FROM c JOIN seqs ON seqs.id = c.run_id;

  -- The latest control snapshot version, so a worker that missed a synaps.ctrl.* message
  -- reloads before running the task (one index lookup).
  SELECT coalesce(max(cc.id), 0) INTO v_version FROM synaps.control_change cc;

  RETURN QUERY
    SELECT q.id, q.lease_epoch, q.attempts, t.id, t.run_id, t.tenant_id, u.thread_id, t.name, t.kind,
           t.spec, q.lease_expires_at,
           -- Outputs of the tasks this one depends on, by name.
           (SELECT coalesce(jsonb_object_agg(d.name, d.output), '{}'::jsonb)
              FROM synaps.tasks d WHERE d.run_id = t.run_id AND d.name = ANY (t.depends_on)),
           -- Earlier turns of the thread (the last 50 succeeded tasks of earlier runs), oldest
           -- first, so a command on an existing thread continues the conversation.
           (SELECT coalesce(jsonb_agg(h.turn ORDER BY h.created_at, h.task_created), '[]'::jsonb)
              FROM (SELECT r2.created_at, t2.created_at AS task_created,
                           jsonb_build_object('input', t2.spec->'input'->>'text',
                                              'output', t2.output->>'text') AS turn
                      FROM synaps.runs r2 JOIN synaps.tasks t2 ON t2.run_id = r2.id
                     WHERE r2.thread_id = u.thread_id AND r2.created_at < u.created_at
                       AND t2.status = 'succeeded'
                     ORDER BY r2.created_at DESC, t2.created_at DESC LIMIT 50) h),
           v_version
      FROM unnest(v_ids) WITH ORDINALITY AS x(id, ord)
      JOIN synaps.queue_items q ON q.id = x.id
      JOIN synaps.tasks t ON t.id = q.task_id
      JOIN synaps.runs u ON u.id = t.run_id
     ORDER BY x.ord;
END $$;

-- Appends task.progress events for leases that are still current, as 0002 did, set-based: one
-- runs update per run for all of its chunks, one ledger insert. Returns how many were recorded.
CREATE OR REPLACE FUNCTION synaps.append_progress(p_item_ids bigint[], p_epochs bigint[], p_texts text[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  WITH req AS (
    SELECT q.run_id, q.task_id, q.attempts, u.text, u.ord
      FROM unnest(p_item_ids, p_epochs, p_texts) WITH ORDINALITY AS u(item_id, epoch, text, ord)
      JOIN synaps.queue_items q ON q.id = u.item_id AND q.lease_epoch = u.epoch AND q.status = 'leased'
  ), per_run AS (
    SELECT req.run_id, count(*) AS n FROM req GROUP BY req.run_id
  ), seqs AS (
    UPDATE synaps.runs r SET last_seq = r.last_seq + per_run.n
      FROM per_run
     WHERE r.id = per_run.run_id
    RETURNING r.id, r.last_seq - per_run.n AS base
  ), ins AS (
    INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data)
    SELECT req.run_id, req.task_id, seqs.base + row_number() OVER (PARTITION BY req.run_id ORDER BY req.ord),
           'task.progress', req.attempts, jsonb_build_object('text', req.text)
      FROM req JOIN seqs ON seqs.id = req.run_id
    RETURNING 1
  )
  SELECT count(*) INTO n FROM ins;
  RETURN n;
END $$;

-- Completes a leased item as 0002 did (same arguments and answers), with fewer statements: the
-- sequence numbers of its artifact.created and task.completed events are reserved by one runs
-- update that also reads the run's tenant and thread, and an artifact's version is one upsert.
CREATE OR REPLACE FUNCTION synaps.complete_queue_item(p_item_id bigint, p_epoch bigint, p_output jsonb, p_artifacts jsonb)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  q          synaps.queue_items;
  v_tenant   text;
  v_thread   uuid;
  v_seq      bigint;
  v_n        integer := coalesce(jsonb_array_length(p_artifacts), 0);
  a          jsonb;
  v_art_id   uuid;
  v_version  integer;
  v_released integer;
BEGIN
  DELETE FROM synaps.queue_items
   WHERE id = p_item_id AND lease_epoch = p_epoch AND status = 'leased'
  RETURNING * INTO q;
  IF NOT FOUND THEN
    IF synaps.take_cancelled_item(p_item_id, p_epoch) THEN RETURN 'cancelled'; END IF;
    RETURN 'lease_lost';
  END IF;
  -- v_seq - v_n .. v_seq: one artifact.created per artifact, then task.completed.
  UPDATE synaps.runs SET last_seq = last_seq + v_n + 1 WHERE id = q.run_id
  RETURNING tenant_id, thread_id, last_seq INTO v_tenant, v_thread, v_seq;
  v_seq := v_seq - v_n;

  FOR a IN SELECT * FROM jsonb_array_elements(coalesce(p_artifacts, '[]'::jsonb)) LOOP
    INSERT INTO synaps.artifacts AS x (id, tenant_id, run_id, task_id, thread_id, name, content_type, latest_version)
    VALUES (gen_random_uuid(), v_tenant, q.run_id, q.task_id, v_thread, a->>'name', a->>'contentType', 1)
    ON CONFLICT ON CONSTRAINT artifacts_thread_name_uq DO UPDATE SET latest_version = x.latest_version + 1
    RETURNING x.id, x.latest_version INTO v_art_id, v_version;
    INSERT INTO synaps.artifact_versions (artifact_id, version, run_id, task_id, object_key, size, sha256)
    VALUES (v_art_id, v_version, q.run_id, q.task_id, a->>'objectKey', (a->>'size')::bigint, a->>'sha256');
    INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data)
    VALUES (q.run_id, q.task_id, v_seq, 'artifact.created', q.attempts,
            jsonb_build_object('artifactId', v_art_id, 'name', a->>'name', 'version', v_version,
                               'size', (a->>'size')::bigint, 'sha256', a->>'sha256'));
    v_seq := v_seq + 1;
  END LOOP;

  UPDATE synaps.tasks SET status = 'succeeded', output = p_output, error = NULL, finished_at = now()
   WHERE id = q.task_id;
  INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data)
  VALUES (q.run_id, q.task_id, v_seq, 'task.completed', q.attempts, coalesce(p_output, '{}'::jsonb) - 'text');

  -- Fan-out: waiting tasks whose dependencies have all succeeded become claimable.
  WITH released AS (
    UPDATE synaps.tasks d SET status = 'queued'
     WHERE d.run_id = q.run_id AND d.status = 'waiting'
       AND NOT EXISTS (SELECT 1 FROM unnest(d.depends_on) AS dep(name)
                         LEFT JOIN synaps.tasks u ON u.run_id = d.run_id AND u.name = dep.name
                        WHERE u.status IS DISTINCT FROM 'succeeded')
    RETURNING d.id
  ), ready AS (
    UPDATE synaps.queue_items qi SET status = 'ready', available_at = now()
      FROM released WHERE qi.task_id = released.id
    RETURNING 1
  )
  SELECT count(*) INTO v_released FROM ready;
  IF v_released > 0 THEN
    INSERT INTO synaps.outbox (subject, payload)
    VALUES ('synaps.wakeup.' || q.queue, jsonb_build_object('queue', q.queue, 'runId', q.run_id));
  END IF;
  PERFORM synaps.settle_run(q.run_id);
  RETURN 'completed';
END $$;

-- Appends events of any type for leases that are still current, as 0004 did (events of a stale
-- or cancelled lease are dropped), set-based. Returns how many were recorded.
CREATE OR REPLACE FUNCTION synaps.append_task_events(p_item_ids bigint[], p_epochs bigint[], p_types text[],
                                                     p_data jsonb[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  WITH req AS (
    SELECT q.run_id, q.task_id, q.attempts, u.type, u.data, u.ord
      FROM unnest(p_item_ids, p_epochs, p_types, p_data) WITH ORDINALITY AS u(item_id, epoch, type, data, ord)
      JOIN synaps.queue_items q ON q.id = u.item_id AND q.lease_epoch = u.epoch AND q.status = 'leased'
  ), per_run AS (
    SELECT req.run_id, count(*) AS n FROM req GROUP BY req.run_id
  ), seqs AS (
    UPDATE synaps.runs r SET last_seq = r.last_seq + per_run.n
      FROM per_run
     WHERE r.id = per_run.run_id
    RETURNING r.id, r.last_seq - per_run.n AS base
  ), ins AS (
    INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data)
    SELECT req.run_id, req.task_id, seqs.base + row_number() OVER (PARTITION BY req.run_id ORDER BY req.ord),
           req.type, req.attempts, coalesce(req.data, '{}'::jsonb)
      FROM req JOIN seqs ON seqs.id = req.run_id
    RETURNING 1
  )
  SELECT count(*) INTO n FROM ins;
  RETURN n;
END $$;

-- One call, one transaction, one commit for what a worker has to write: first the buffered task
-- events (p_event_*; see append_task_events) and task.progress chunks (p_progress_*; see
-- append_progress), then the completions: p_ids[i] with p_epochs[i], p_outputs->i and
-- p_artifacts->i completes (complete_queue_item) or, when p_holds[i], holds for approval
-- (hold_queue_item). So a finished task's last events precede its task.completed in the ledger.
-- Returns one state per completion, in order.
CREATE FUNCTION synaps.write_task_batch(p_event_ids bigint[], p_event_epochs bigint[], p_event_types text[],
                                        p_event_data jsonb[],
                                        p_progress_ids bigint[], p_progress_epochs bigint[], p_progress_texts text[],
                                        p_ids bigint[], p_epochs bigint[], p_holds boolean[],
                                        p_outputs jsonb, p_artifacts jsonb)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  IF coalesce(array_length(p_event_ids, 1), 0) > 0 THEN
    PERFORM synaps.append_task_events(p_event_ids, p_event_epochs, p_event_types, p_event_data);
  END IF;
  IF coalesce(array_length(p_progress_ids, 1), 0) > 0 THEN
    PERFORM synaps.append_progress(p_progress_ids, p_progress_epochs, p_progress_texts);
  END IF;
  FOR r IN SELECT u.id, u.epoch, u.hold, u.ord
             FROM unnest(p_ids, p_epochs, p_holds) WITH ORDINALITY AS u(id, epoch, hold, ord)
            ORDER BY u.ord LOOP
    IF r.hold THEN
      RETURN NEXT synaps.hold_queue_item(r.id, r.epoch, p_outputs -> (r.ord::int - 1),
                                         p_artifacts -> (r.ord::int - 1));
    ELSE
      RETURN NEXT synaps.complete_queue_item(r.id, r.epoch, p_outputs -> (r.ord::int - 1),
                                             p_artifacts -> (r.ord::int - 1));
    END IF;
  END LOOP;
END $$;
