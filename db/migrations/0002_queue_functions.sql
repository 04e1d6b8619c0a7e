-- Queue engine: submit, claim, renew, complete, fail. All time comes from the database's now();
-- lease_epoch is the fencing token: it grows on every claim, and renew/complete/fail change
-- nothing unless the caller presents the current one.

ALTER TABLE synaps.outbox ALTER COLUMN msg_id SET DEFAULT gen_random_uuid()::text;

-- Appends one ledger event with the run's next sequence number. Serializes per run on the
-- runs row, which every caller already touches.
CREATE FUNCTION synaps.append_event(p_run_id uuid, p_task_id uuid, p_type text, p_attempt integer, p_data jsonb)
RETURNS bigint LANGUAGE sql AS $$
  WITH s AS (
    UPDATE synaps.runs SET last_seq = last_seq + 1 WHERE id = p_run_id RETURNING last_seq
  )
  INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data)
  SELECT p_run_id, p_task_id, s.last_seq, p_type, p_attempt, coalesce(p_data, '{}'::jsonb) FROM s
  RETURNING seq
$$;

-- Creates command, thread (unless p_command->>'threadId' names one), run, tasks, queue items,
-- ledger events and one wakeup outbox row per queue, in the caller's transaction.
--
-- p_command: {kind, payload, threadId?, queue, priority, notBefore?, maxAttempts,
--             tasks: [{name, kind, spec, dependsOn: [names]}]}
-- Returns {commandId, runId, threadId, status, outbox: [{id, subject, payload, msgId}]} for a new
-- command, the stored response plus {"replayed": true} for a repeated idempotency key with the
-- same request hash, {"error": "idempotency_conflict"} for the same key with another hash, or
-- {"error": "thread_not_found"}.
CREATE FUNCTION synaps.submit_command(p_tenant text, p_actor text, p_idempotency_key text,
                                      p_request_hash text, p_command jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_command_id uuid := gen_random_uuid();
  v_run_id     uuid := gen_random_uuid();
  v_thread_id  uuid;
  v_existing   synaps.commands;
  v_queue      text := coalesce(p_command->>'queue', 'default');
  v_priority   integer := coalesce((p_command->>'priority')::integer, 0);
  v_available  timestamptz := greatest(now(), coalesce((p_command->>'notBefore')::timestamptz, now()));
  v_max        integer := coalesce((p_command->>'maxAttempts')::integer, 3);
  v_task       jsonb;
  v_task_id    uuid;
  v_waiting    boolean;
  v_outbox     jsonb;
  v_response   jsonb;
BEGIN
  IF p_command->>'threadId' IS NOT NULL THEN
    SELECT id INTO v_thread_id FROM synaps.threads
     WHERE id = (p_command->>'threadId')::uuid AND tenant_id = p_tenant;
    IF NOT FOUND THEN
      RETURN jsonb_build_object('error', 'thread_not_found');
    END IF;
  ELSE
    v_thread_id := gen_random_uuid();
    INSERT INTO synaps.threads (id, tenant_id) VALUES (v_thread_id, p_tenant);
  END IF;

  INSERT INTO synaps.commands (id, tenant_id, thread_id, kind, payload, idempotency_key, request_hash, submitted_by)
  VALUES (v_command_id, p_tenant, v_thread_id, p_command->>'kind', p_command->'payload',
          p_idempotency_key, p_request_hash, p_actor)
  ON CONFLICT ON CONSTRAINT commands_idempotency_key_uq DO NOTHING;
  IF NOT FOUND THEN
    -- A command with this key exists (a concurrent insert waited for it to commit). The
    -- thread made above for it is not needed.
    IF p_command->>'threadId' IS NULL THEN
      DELETE FROM synaps.threads WHERE id = v_thread_id;
    END IF;
    SELECT * INTO v_existing FROM synaps.commands
     WHERE tenant_id = p_tenant AND idempotency_key = p_idempotency_key;
    IF v_existing.request_hash <> p_request_hash THEN
      RETURN jsonb_build_object('error', 'idempotency_conflict', 'commandId', v_existing.id);
    END IF;
    RETURN v_existing.response || jsonb_build_object('replayed', true);
  END IF;

  INSERT INTO synaps.runs (id, command_id, thread_id, tenant_id) VALUES (v_run_id, v_command_id, v_thread_id, p_tenant);
  PERFORM synaps.append_event(v_run_id, NULL, 'run.created',
                              NULL, jsonb_build_object('commandId', v_command_id, 'kind', p_command->>'kind'));

  FOR v_task IN SELECT * FROM jsonb_array_elements(p_command->'tasks') LOOP
    v_task_id := gen_random_uuid();
    v_waiting := jsonb_array_length(coalesce(v_task->'dependsOn', '[]'::jsonb)) > 0;
    INSERT INTO synaps.tasks (id, run_id, tenant_id, name, kind, spec, status, max_attempts, depends_on)
    VALUES (v_task_id, v_run_id, p_tenant, v_task->>'name', v_task->>'kind', v_task->'spec',
            CASE WHEN v_waiting THEN 'waiting' ELSE 'queued' END, v_max,
            ARRAY(SELECT jsonb_array_elements_text(coalesce(v_task->'dependsOn', '[]'::jsonb))));
    INSERT INTO synaps.queue_items (task_id, run_id, tenant_id, queue, priority, available_at, status, max_attempts)
    VALUES (v_task_id, v_run_id, p_tenant, v_queue, v_priority, v_available,
            CASE WHEN v_waiting THEN 'waiting' ELSE 'ready' END, v_max);
    PERFORM synaps.append_event(v_run_id, v_task_id, 'task.queued', NULL,
                                jsonb_build_object('name', v_task->>'name', 'queue', v_queue,
                                                   'priority', v_priority, 'availableAt', v_available));
  END LOOP;

  WITH o AS (
    INSERT INTO synaps.outbox (subject, payload)
    VALUES ('synaps.wakeup.' || v_queue, jsonb_build_object('queue', v_queue, 'runId', v_run_id))
    RETURNING id, subject, payload, msg_id
  )
  SELECT jsonb_agg(jsonb_build_object('id', o.id, 'subject', o.subject, 'payload', o.payload, 'msgId', o.msg_id))
    INTO v_outbox FROM o;

  v_response := jsonb_build_object('commandId', v_command_id, 'runId', v_run_id,
                                   'threadId', v_thread_id, 'status', 'queued');
  UPDATE synaps.commands SET response = v_response WHERE id = v_command_id;
  RETURN v_response || jsonb_build_object('outbox', v_outbox);
END $$;

-- Marks a run finished (once) and records the matching event and a run-subject outbox row.
CREATE FUNCTION synaps.finish_run(p_run_id uuid, p_status text, p_error jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE synaps.runs SET status = p_status, error = p_error, finished_at = now()
   WHERE id = p_run_id AND status NOT IN ('succeeded', 'failed', 'cancelled');
  IF FOUND THEN
    PERFORM synaps.append_event(p_run_id, NULL, 'run.' || p_status, NULL,
                                CASE WHEN p_error IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('error', p_error) END);
    INSERT INTO synaps.outbox (subject, payload)
    VALUES ('synaps.run.' || p_run_id, jsonb_build_object('type', 'run.' || p_status, 'runId', p_run_id));
  END IF;
END $$;

-- Claims up to p_limit items of the given queues: ready items whose time has come and leased
-- items whose lease expired, highest priority first, then oldest. Each claim bumps lease_epoch
-- (the fencing token) and attempts. An expired item that has used all its attempts is
-- dead-lettered instead of handed out again. p_tenant limits the claim to one tenant's items
-- (remote workers holding a tenant's key); NULL serves every tenant (built-in workers).
CREATE FUNCTION synaps.claim_queue_items(p_worker text, p_queues text[], p_limit integer, p_lease_seconds integer,
                                         p_tenant text DEFAULT NULL)
RETURNS TABLE (item_id bigint, lease_epoch bigint, attempt integer, task_id uuid, run_id uuid,
               tenant_id text, thread_id uuid, task_name text, task_kind text, spec jsonb,
               lease_expires_at timestamptz, upstream jsonb, history jsonb,
               snapshot_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN
    WITH picked AS (
      SELECT q.id FROM synaps.queue_items q
       WHERE q.queue = ANY (p_queues) AND q.status IN ('ready', 'leased') AND q.available_at <= now()
         AND (p_tenant IS NULL OR q.tenant_id = p_tenant)
       ORDER BY q.priority DESC, q.available_at, q.id
       LIMIT p_limit
       FOR UPDATE SKIP LOCKED
    )
    UPDATE synaps.queue_items q
       SET status = 'leased', lease_owner = p_worker, lease_epoch = q.lease_epoch + 1,
           attempts = q.attempts + 1,
           lease_expires_at = now() + make_interval(secs => p_lease_seconds),
           available_at = now() + make_interval(secs => p_lease_seconds)
      FROM picked
     WHERE q.id = picked.id
    RETURNING q.id, q.lease_epoch, q.attempts, q.max_attempts, q.task_id, q.run_id, q.lease_expires_at
  LOOP
    IF r.attempts > r.max_attempts THEN
      -- The last attempt's worker vanished without completing or failing.
      PERFORM synaps.dead_letter(r.id, jsonb_build_object(
        'code', 'lease_expired', 'message', 'lease expired on the last allowed attempt'));
      CONTINUE;
    END IF;
    UPDATE synaps.tasks t SET status = 'running', attempt = r.attempts, started_at = coalesce(t.started_at, now())
     WHERE t.id = r.task_id;
    UPDATE synaps.runs u SET status = 'running', started_at = now()
     WHERE u.id = r.run_id AND u.status = 'queued';
    PERFORM synaps.append_event(r.run_id, r.task_id, 'task.claimed', r.attempts,
                                jsonb_build_object('worker', p_worker, 'leaseEpoch', r.lease_epoch,
                                                   'leaseExpiresAt', r.lease_expires_at));
    RETURN QUERY
      SELECT r.id, r.lease_epoch, r.attempts, t.id, t.run_id, t.tenant_id, u.thread_id, t.name, t.kind,
             t.spec, r.lease_expires_at,
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
             -- The latest control snapshot version, so a worker that missed a synaps.ctrl.*
             -- message reloads before running the task (one index lookup).
             (SELECT coalesce(max(c.id), 0) FROM synaps.control_change c)
        FROM synaps.tasks t JOIN synaps.runs u ON u.id = t.run_id
       WHERE t.id = r.task_id;
  END LOOP;
END $$;

-- Extends the leases of the given (item, epoch) pairs. Returns one row per pair with
-- state 'ok', 'lost' (another claim took it, or it finished) or 'cancelled' (its run was
-- cancelled; the item is removed now); only 'ok' leases were extended.
CREATE FUNCTION synaps.renew_queue_items(p_item_ids bigint[], p_epochs bigint[], p_lease_seconds integer)
RETURNS TABLE (item_id bigint, state text, lease_expires_at timestamptz)
LANGUAGE sql AS $$
  WITH req AS (
    SELECT * FROM unnest(p_item_ids, p_epochs) WITH ORDINALITY AS u(item_id, epoch, ord)
  ), renewed AS (
    UPDATE synaps.queue_items q
       SET lease_expires_at = now() + make_interval(secs => p_lease_seconds),
           available_at = now() + make_interval(secs => p_lease_seconds)
      FROM req
     WHERE q.id = req.item_id AND q.lease_epoch = req.epoch AND q.status = 'leased'
    RETURNING q.id, q.lease_epoch, q.lease_expires_at
  ), cancelled AS (
    DELETE FROM synaps.queue_items q USING req
     WHERE q.id = req.item_id AND q.lease_epoch = req.epoch AND q.status = 'cancelled'
    RETURNING q.id, q.lease_epoch
  )
  SELECT req.item_id,
         CASE WHEN renewed.id IS NOT NULL THEN 'ok'
              WHEN cancelled.id IS NOT NULL THEN 'cancelled'
              ELSE 'lost' END,
         renewed.lease_expires_at
    FROM req
    LEFT JOIN renewed ON renewed.id = req.item_id AND renewed.lease_epoch = req.epoch
    LEFT JOIN cancelled ON cancelled.id = req.item_id AND cancelled.lease_epoch = req.epoch
   ORDER BY req.ord
$$;

-- If (p_item_id, p_epoch) names an item whose run was cancelled while it was leased, removes it
-- and returns true. Used by complete and fail so a cancelled task's result is discarded.
CREATE FUNCTION synaps.take_cancelled_item(p_item_id bigint, p_epoch bigint)
RETURNS boolean LANGUAGE sql AS $$
  WITH d AS (
    DELETE FROM synaps.queue_items
     WHERE id = p_item_id AND lease_epoch = p_epoch AND status = 'cancelled' RETURNING 1
  )
  SELECT EXISTS (SELECT 1 FROM d)
$$;

-- Finishes the run once no task is left to run: succeeded when every task did, failed
-- otherwise (with the first failure's error).
CREATE FUNCTION synaps.settle_run(p_run_id uuid)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_error jsonb;
BEGIN
  IF EXISTS (SELECT 1 FROM synaps.tasks
              WHERE run_id = p_run_id AND status NOT IN ('succeeded', 'failed', 'cancelled')) THEN
    RETURN;
  END IF;
  SELECT jsonb_build_object('task', name) || coalesce(error, '{}'::jsonb) INTO v_error
    FROM synaps.tasks WHERE run_id = p_run_id AND status = 'failed'
   ORDER BY finished_at, name LIMIT 1;
  PERFORM synaps.finish_run(p_run_id, CASE WHEN v_error IS NULL THEN 'succeeded' ELSE 'failed' END, v_error);
END $$;

-- Dead-letters an item: its task fails with p_error, tasks that depend on it (transitively)
-- fail with dependency_failed, and the run settles once nothing else is running. The items stay
-- with status 'dead' so an operator can requeue them (synaps.requeue_dead_item).
CREATE FUNCTION synaps.dead_letter(p_item_id bigint, p_error jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  q       synaps.queue_items;
  v_task  synaps.tasks;
  v_dep   record;
  v_err   jsonb;
BEGIN
  UPDATE synaps.queue_items SET status = 'dead', lease_owner = NULL, lease_expires_at = NULL, last_error = p_error
   WHERE id = p_item_id RETURNING * INTO q;
  UPDATE synaps.tasks SET status = 'failed', error = p_error, finished_at = now()
   WHERE id = q.task_id RETURNING * INTO v_task;
  PERFORM synaps.append_event(q.run_id, q.task_id, 'task.failed', q.attempts,
                              jsonb_build_object('error', p_error, 'attempts', q.attempts, 'deadLettered', true));
  FOR v_dep IN
    WITH RECURSIVE downstream AS (
      SELECT d.id, d.name FROM synaps.tasks d
       WHERE d.run_id = q.run_id AND v_task.name = ANY (d.depends_on) AND d.status = 'waiting'
      UNION
      SELECT d.id, d.name FROM synaps.tasks d JOIN downstream ON downstream.name = ANY (d.depends_on)
       WHERE d.run_id = q.run_id AND d.status = 'waiting'
    )
    SELECT * FROM downstream
  LOOP
    v_err := jsonb_build_object('code', 'dependency_failed',
                                'message', 'dependency ' || v_task.name || ' failed');
    UPDATE synaps.tasks SET status = 'failed', error = v_err, finished_at = now() WHERE id = v_dep.id;
    UPDATE synaps.queue_items SET status = 'dead', last_error = v_err WHERE task_id = v_dep.id;
    PERFORM synaps.append_event(q.run_id, v_dep.id, 'task.failed', NULL, jsonb_build_object('error', v_err));
  END LOOP;
  PERFORM synaps.settle_run(q.run_id);
END $$;

-- Puts a dead-lettered item back in its queue with fresh attempts, together with the dependents
-- that failed because of it, and reopens the run. Returns 'requeued', 'not_found' (absent or
-- another tenant's) or 'not_dead'.
CREATE FUNCTION synaps.requeue_dead_item(p_tenant text, p_item_id bigint, p_actor text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  q       synaps.queue_items;
  v_task  synaps.tasks;
BEGIN
  SELECT qi.* INTO q FROM synaps.queue_items qi JOIN synaps.tasks t ON t.id = qi.task_id
   WHERE qi.id = p_item_id AND t.tenant_id = p_tenant FOR UPDATE OF qi;
  IF NOT FOUND THEN RETURN 'not_found'; END IF;
  IF q.status <> 'dead' THEN RETURN 'not_dead'; END IF;
  SELECT * INTO v_task FROM synaps.tasks WHERE id = q.task_id;
  IF v_task.status <> 'failed' OR coalesce(v_task.error->>'code', '') = 'dependency_failed' THEN
    RETURN 'not_dead';  -- requeue the failed dependency instead
  END IF;
  UPDATE synaps.runs SET status = 'running', error = NULL, finished_at = NULL WHERE id = q.run_id;
  UPDATE synaps.queue_items
     SET status = 'ready', attempts = 0, available_at = now(), lease_owner = NULL, last_error = NULL
   WHERE id = p_item_id;
  UPDATE synaps.tasks SET status = 'queued', error = NULL, finished_at = NULL, attempt = 0 WHERE id = q.task_id;
  PERFORM synaps.append_event(q.run_id, q.task_id, 'task.queued', NULL,
                              jsonb_build_object('requeuedBy', p_actor, 'queue', q.queue));
  -- Dependents that failed only because of this task wait again.
  WITH RECURSIVE downstream AS (
    SELECT d.id, d.name FROM synaps.tasks d
     WHERE d.run_id = q.run_id AND v_task.name = ANY (d.depends_on) AND d.error->>'code' = 'dependency_failed'
    UNION
    SELECT d.id, d.name FROM synaps.tasks d JOIN downstream ON downstream.name = ANY (d.depends_on)
     WHERE d.run_id = q.run_id AND d.error->>'code' = 'dependency_failed'
  ), reopened AS (
    UPDATE synaps.tasks t SET status = 'waiting', error = NULL, finished_at = NULL
      FROM downstream WHERE t.id = downstream.id RETURNING t.id
  )
  UPDATE synaps.queue_items qi SET status = 'waiting', attempts = 0, last_error = NULL
    FROM reopened WHERE qi.task_id = reopened.id;
  INSERT INTO synaps.outbox (subject, payload)
  VALUES ('synaps.wakeup.' || q.queue, jsonb_build_object('queue', q.queue, 'runId', q.run_id));
  RETURN 'requeued';
END $$;

-- Cancels a run: queued and waiting items are removed, leased ones are marked so their worker
-- learns it on its next renew (and from the run.cancelled message on synaps.run.<id>); unfinished
-- tasks become cancelled. Returns 'cancelled', 'not_found' or 'finished' (already over).
CREATE FUNCTION synaps.cancel_run(p_tenant text, p_run_id uuid, p_actor text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r synaps.runs;
BEGIN
  SELECT * INTO r FROM synaps.runs WHERE id = p_run_id AND tenant_id = p_tenant FOR UPDATE;
  IF NOT FOUND THEN RETURN 'not_found'; END IF;
  IF r.status IN ('succeeded', 'failed', 'cancelled') THEN RETURN 'finished'; END IF;
  DELETE FROM synaps.queue_items
   WHERE run_id = p_run_id AND (status <> 'leased' OR lease_expires_at <= now());
  UPDATE synaps.queue_items SET status = 'cancelled' WHERE run_id = p_run_id AND status = 'leased';
  UPDATE synaps.tasks SET status = 'cancelled', finished_at = now()
   WHERE run_id = p_run_id AND status NOT IN ('succeeded', 'failed', 'cancelled');
  PERFORM synaps.finish_run(p_run_id, 'cancelled',
                            jsonb_build_object('code', 'cancelled', 'message', 'cancelled by ' || p_actor));
  RETURN 'cancelled';
END $$;

-- Completes a leased item if p_epoch is still its lease epoch: deletes the item, stores the task
-- output, records artifacts (p_artifacts: [{name, contentType, objectKey, size, sha256}]) as new
-- versions per (thread, name), appends artifact.created and task.completed, and finishes the
-- run when no task is left; tasks whose dependencies have now all succeeded become ready.
-- Returns 'completed', 'cancelled' (the run was cancelled; result discarded) or 'lease_lost'
-- (nothing changed).
CREATE FUNCTION synaps.complete_queue_item(p_item_id bigint, p_epoch bigint, p_output jsonb, p_artifacts jsonb)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  q          synaps.queue_items;
  v_run      synaps.runs;
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
  SELECT * INTO v_run FROM synaps.runs WHERE id = q.run_id;

  FOR a IN SELECT * FROM jsonb_array_elements(coalesce(p_artifacts, '[]'::jsonb)) LOOP
    INSERT INTO synaps.artifacts (id, tenant_id, run_id, task_id, thread_id, name, content_type)
    VALUES (gen_random_uuid(), v_run.tenant_id, q.run_id, q.task_id, v_run.thread_id, a->>'name', a->>'contentType')
    ON CONFLICT ON CONSTRAINT artifacts_thread_name_uq DO NOTHING;
    -- The row lock serializes version numbers of one (thread, name).
    SELECT id INTO v_art_id FROM synaps.artifacts
     WHERE thread_id = v_run.thread_id AND name = a->>'name' FOR UPDATE;
    SELECT coalesce(max(version), 0) + 1 INTO v_version FROM synaps.artifact_versions WHERE artifact_id = v_art_id;
    INSERT INTO synaps.artifact_versions (artifact_id, version, run_id, task_id, object_key, size, sha256)
    VALUES (v_art_id, v_version, q.run_id, q.task_id, a->>'objectKey', (a->>'size')::bigint, a->>'sha256');
    PERFORM synaps.append_event(q.run_id, q.task_id, 'artifact.created', q.attempts,
                                jsonb_build_object('artifactId', v_art_id, 'name', a->>'name', 'version', v_version,
                                                   'size', (a->>'size')::bigint, 'sha256', a->>'sha256'));
  END LOOP;

  UPDATE synaps.tasks SET status = 'succeeded', output = p_output, error = NULL, finished_at = now()
   WHERE id = q.task_id;
  PERFORM synaps.append_event(q.run_id, q.task_id, 'task.completed', q.attempts,
                              coalesce(p_output, '{}'::jsonb) - 'text');

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

-- Records a failed attempt if p_epoch is current. A retryable error with attempts left puts the
-- item back as ready after an exponential backoff with full jitter
-- (random() * min(cap, base * 2^(attempts-1))) and records task.retry_scheduled; otherwise the
-- item is dead-lettered. Returns 'retry_scheduled', 'dead_lettered', 'cancelled' or 'lease_lost'.
CREATE FUNCTION synaps.fail_queue_item(p_item_id bigint, p_epoch bigint, p_error jsonb, p_retryable boolean,
                                       p_backoff_base_ms integer, p_backoff_cap_ms integer)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  q        synaps.queue_items;
  v_delay  double precision;
  v_at     timestamptz;
BEGIN
  SELECT * INTO q FROM synaps.queue_items
   WHERE id = p_item_id AND lease_epoch = p_epoch AND status = 'leased' FOR UPDATE;
  IF NOT FOUND THEN
    IF synaps.take_cancelled_item(p_item_id, p_epoch) THEN RETURN 'cancelled'; END IF;
    RETURN 'lease_lost';
  END IF;
  IF p_retryable AND q.attempts < q.max_attempts THEN
    v_delay := random() * least(p_backoff_cap_ms::double precision,
                                p_backoff_base_ms * power(2, q.attempts - 1));
    v_at := now() + make_interval(secs => v_delay / 1000.0);
    UPDATE synaps.queue_items
       SET status = 'ready', lease_owner = NULL, lease_expires_at = NULL, available_at = v_at, last_error = p_error
     WHERE id = p_item_id;
    UPDATE synaps.tasks SET status = 'queued', error = p_error WHERE id = q.task_id;
    PERFORM synaps.append_event(q.run_id, q.task_id, 'task.retry_scheduled', q.attempts,
                                jsonb_build_object('error', p_error, 'nextAttemptAt', v_at,
                                                   'delayMs', round(v_delay)));
    RETURN 'retry_scheduled';
  END IF;
  PERFORM synaps.dead_letter(p_item_id, p_error);
  RETURN 'dead_lettered';
END $$;

-- Appends task.progress events for leases that are still current; deltas of a stale or
-- cancelled lease are dropped. p_texts[i] is the text streamed since the last call for
-- p_item_ids[i]. Returns how many were recorded.
CREATE FUNCTION synaps.append_progress(p_item_ids bigint[], p_epochs bigint[], p_texts text[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  r record;
  n integer := 0;
BEGIN
  FOR r IN
    SELECT q.run_id, q.task_id, q.attempts, u.text
      FROM unnest(p_item_ids, p_epochs, p_texts) AS u(item_id, epoch, text)
      JOIN synaps.queue_items q ON q.id = u.item_id AND q.lease_epoch = u.epoch AND q.status = 'leased'
  LOOP
    PERFORM synaps.append_event(r.run_id, r.task_id, 'task.progress', r.attempts,
                                jsonb_build_object('text', r.text));
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;

-- Gives leases back without counting the attempt (a draining worker's unfinished work), so
-- another worker can claim the items at once. Returns the items released.
CREATE FUNCTION synaps.release_queue_items(p_item_ids bigint[], p_epochs bigint[], p_worker text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  q synaps.queue_items;
  n integer := 0;
BEGIN
  FOR q IN
    UPDATE synaps.queue_items qi
       SET status = 'ready', available_at = now(), lease_owner = NULL, lease_expires_at = NULL,
           attempts = greatest(qi.attempts - 1, 0)
      FROM unnest(p_item_ids, p_epochs) AS u(item_id, epoch)
     WHERE qi.id = u.item_id AND qi.lease_epoch = u.epoch AND qi.status = 'leased'
    RETURNING qi.*
  LOOP
    UPDATE synaps.tasks SET status = 'queued' WHERE id = q.task_id;
    PERFORM synaps.append_event(q.run_id, q.task_id, 'task.released', q.attempts + 1,
                                jsonb_build_object('worker', p_worker, 'reason', 'worker draining'));
    INSERT INTO synaps.outbox (subject, payload)
    VALUES ('synaps.wakeup.' || q.queue, jsonb_build_object('queue', q.queue, 'runId', q.run_id));
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;
