-- Thread turns: one lock order, refusals that write nothing, a requeue that waits its turn
-- (issue #15; review of 0027).
--
-- Lock order (docs/queue.md, "Lock order"): a thread's row, then queue items (in id order),
-- then their runs — the order of the hot path: a claim locks items (SKIP LOCKED) and then
-- updates their runs, and a worker's write batch deletes or updates its items and then updates
-- the runs. cancel_run, decide_task and a thread's interrupt/rollback took a run first and then
-- its items, so an interrupt landing as the running task completed deadlocked (40P01: a 503 for
-- the submit, or a retried write batch); they now lock the items first.
--
-- Submit onto a busy thread (take_thread_turn, shared by submit_command's paths):
--   * reject and a replay write nothing: the thread is locked with SELECT ... FOR UPDATE and
--     last_run_seq moves only when a run is inserted (0027 bumped it on every submit, leaving
--     gaps in thread_seq and a row version per refusal);
--   * interrupt/rollback with an idempotency key take an advisory lock on (tenant, key) before
--     looking the key up, so two such submits with one key wait for each other instead of both
--     cancelling; and a submit that cancelled runs and then finds its key taken by a concurrent
--     submit raises 40001 (everything undone) instead of answering idempotency_conflict with
--     the runs cancelled;
--   * thread_busy names the runs queued behind the holder `queuedBehind` (was `waiting`, which
--     is an object elsewhere).
-- requeue_dead_item refuses (thread_busy) while another run of the run's thread is unfinished:
-- it moved a failed run back to running next to the thread's current run.
--
-- One lock is still taken run-first: release_thread_turn (on a run's finish) locks the next run
-- and then makes its parked items ready. Its only rival for those items is a cancel of that
-- waiting run, which locks the items and then the run; the trigger therefore skips parked items
-- that are locked (a cancel is deleting them), so neither waits for the other.

-- A submit's turn on the existing thread p_thread, decided under the thread's row lock (so one
-- submit at a time per thread). Either `answer` is set: what the submit answers with nothing
-- written — {error: thread_not_found}, the earlier answer of this idempotency key (replayed) or
-- {error: idempotency_conflict}, or {error: thread_busy, runId (the holder), threadId,
-- queuedBehind} for reject; or the run gets place `seq` in the thread (last_run_seq moved), to
-- wait behind `holder` (enqueue, when the thread is busy) or after the runs in `cancelled`
-- (interrupt, rollback: cancelled oldest last, their turns marked interrupted / rolledBack, an
-- interrupted task's streamed text kept as its output).
CREATE FUNCTION synaps.take_thread_turn(p_tenant text, p_actor text, p_thread uuid, p_on_busy text,
                                        p_idempotency_key text, p_request_hash text,
                                        OUT seq bigint, OUT holder uuid, OUT cancelled uuid[],
                                        OUT answer jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  v_existing   synaps.commands;
  v_unfinished uuid[];
  i            integer;
BEGIN
  cancelled := '{}';
  PERFORM 1 FROM synaps.threads WHERE id = p_thread AND tenant_id = p_tenant FOR UPDATE;
  IF NOT FOUND THEN
    answer := jsonb_build_object('error', 'thread_not_found');
    RETURN;
  END IF;
  -- A retried submit gets its first answer, even when its own run is what keeps the thread busy.
  IF p_idempotency_key IS NOT NULL THEN
    IF p_on_busy IN ('interrupt', 'rollback') THEN
      PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant || chr(31) || p_idempotency_key, 1527));
    END IF;
    SELECT * INTO v_existing FROM synaps.commands
     WHERE tenant_id = p_tenant AND idempotency_key = p_idempotency_key;
    IF FOUND THEN
      answer := CASE WHEN v_existing.request_hash <> p_request_hash
                     THEN jsonb_build_object('error', 'idempotency_conflict', 'commandId', v_existing.id)
                     ELSE v_existing.response || jsonb_build_object('replayed', true) END;
      RETURN;
    END IF;
  END IF;
  IF p_on_busy IN ('interrupt', 'rollback') THEN
    -- The queue items of the runs about to be cancelled, before the runs (the lock order): a
    -- completion of the running task holds its item and then updates the run.
    PERFORM 1 FROM synaps.queue_items q
     WHERE q.run_id IN (SELECT r.id FROM synaps.runs r
                         WHERE r.thread_id = p_thread
                           AND r.status IN ('queued', 'running', 'awaiting_approval'))
     ORDER BY q.id FOR UPDATE;
  END IF;
  -- Its unfinished runs, oldest first, locked: one finishing meanwhile is waited for and left out.
  SELECT array_agg(u.id ORDER BY u.thread_seq) INTO v_unfinished
    FROM (SELECT r.id, r.thread_seq FROM synaps.runs r
           WHERE r.thread_id = p_thread AND r.status IN ('queued', 'running', 'awaiting_approval')
           ORDER BY r.thread_seq FOR UPDATE) u;
  IF v_unfinished IS NOT NULL THEN
    IF p_on_busy = 'reject' THEN
      answer := jsonb_build_object('error', 'thread_busy', 'runId', v_unfinished[1],
                                   'threadId', p_thread, 'queuedBehind', cardinality(v_unfinished) - 1);
      RETURN;
    ELSIF p_on_busy IN ('interrupt', 'rollback') THEN
      IF p_on_busy = 'interrupt' THEN
        -- What the running tasks streamed so far becomes their output: the history keeps it.
        UPDATE synaps.tasks t
           SET output = jsonb_build_object('text', coalesce((
                 SELECT string_agg(e.data->>'text', '' ORDER BY e.seq) FROM synaps.ledger_events e
                  WHERE e.run_id = t.run_id AND e.task_id = t.id AND e.type = 'task.progress'
                    AND e.attempt = t.attempt), ''), 'interrupted', true)
         WHERE t.run_id = ANY (v_unfinished) AND t.status = 'running';
      END IF;
      UPDATE synaps.runs SET thread_turn = CASE WHEN p_on_busy = 'interrupt' THEN 'interrupted'
                                                ELSE 'rolledBack' END
       WHERE id = ANY (v_unfinished);
      -- Newest first, so that no cancellation hands the thread to a run cancelled next.
      FOR i IN REVERSE cardinality(v_unfinished) .. 1 LOOP
        IF synaps.cancel_run(p_tenant, v_unfinished[i],
                             p_actor || ' (onThreadBusy ' || p_on_busy || ')') = 'cancelled' THEN
          cancelled := cancelled || v_unfinished[i];
        END IF;
      END LOOP;
    ELSE
      holder := v_unfinished[1];
    END IF;
  END IF;
  UPDATE synaps.threads SET last_run_seq = last_run_seq + 1 WHERE id = p_thread
  RETURNING last_run_seq INTO seq;
END $$;

-- Puts a dead letter back in its queue (attempts from zero), its run running again, and the
-- dependents that failed only because of it waiting again. 'not_found' (no such item of the
-- tenant), 'not_dead', or 'thread_busy:<run id>' while another run of the run's thread is
-- unfinished (the thread runs one run at a time: requeue when it is idle). Locks the thread,
-- then the item, then the run (docs/queue.md, "Lock order").
CREATE OR REPLACE FUNCTION synaps.requeue_dead_item(p_tenant text, p_item_id bigint, p_actor text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  q       synaps.queue_items;
  v_task  synaps.tasks;
  v_run   synaps.runs;
  v_busy  uuid;
BEGIN
  SELECT r.* INTO v_run FROM synaps.queue_items qi JOIN synaps.runs r ON r.id = qi.run_id
   WHERE qi.id = p_item_id AND qi.tenant_id = p_tenant;
  IF NOT FOUND THEN RETURN 'not_found'; END IF;
  PERFORM 1 FROM synaps.threads WHERE id = v_run.thread_id FOR UPDATE;
  SELECT r.id INTO v_busy FROM synaps.runs r
   WHERE r.thread_id = v_run.thread_id AND r.id <> v_run.id
     AND r.status IN ('queued', 'running', 'awaiting_approval')
   ORDER BY r.thread_seq LIMIT 1;
  IF FOUND THEN RETURN 'thread_busy:' || v_busy; END IF;
  SELECT * INTO q FROM synaps.queue_items WHERE id = p_item_id FOR UPDATE;
  IF NOT FOUND THEN RETURN 'not_found'; END IF;
  PERFORM 1 FROM synaps.runs WHERE id = v_run.id FOR UPDATE;
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

-- Cancelling a run: its queue items first, then the run (was: the run, then its items).
CREATE OR REPLACE FUNCTION synaps.cancel_run(p_tenant text, p_run_id uuid, p_actor text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  r synaps.runs;
BEGIN
  PERFORM 1 FROM synaps.queue_items WHERE run_id = p_run_id AND tenant_id = p_tenant
   ORDER BY id FOR UPDATE;
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

-- Approving or rejecting a held task: its queue item first, then the run (was: the run first).
CREATE OR REPLACE FUNCTION synaps.decide_task(p_tenant text, p_task_id uuid, p_approve boolean, p_actor text, p_reason text) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
  q synaps.queue_items;
  v_task synaps.tasks;
BEGIN
  SELECT * INTO v_task FROM synaps.tasks WHERE id = p_task_id AND tenant_id = p_tenant;
  IF NOT FOUND THEN RETURN 'not_found'; END IF;
  SELECT * INTO q FROM synaps.queue_items WHERE task_id = p_task_id FOR UPDATE;
  IF NOT FOUND OR q.status <> 'held' THEN RETURN 'not_held'; END IF;
  PERFORM 1 FROM synaps.runs WHERE id = v_task.run_id FOR UPDATE;
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

-- Handing the thread on: the next run's parked items that a cancel of that run holds are skipped
-- (the cancel is removing them; waiting for it would close a cycle: the cancel waits for the
-- next run's row, which this transaction holds).
CREATE OR REPLACE FUNCTION synaps.release_thread_turn() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_next  uuid;
  q       record;
  v_queues text[] := '{}';
BEGIN
  IF EXISTS (SELECT 1 FROM synaps.runs
              WHERE thread_id = NEW.thread_id AND thread_seq < NEW.thread_seq
                AND status IN ('queued', 'running', 'awaiting_approval')) THEN
    RETURN NULL;  -- a waiting run was cancelled: the thread's holder is still at work
  END IF;
  SELECT id INTO v_next FROM synaps.runs
   WHERE thread_id = NEW.thread_id AND thread_seq > NEW.thread_seq
     AND status IN ('queued', 'running', 'awaiting_approval')
   ORDER BY thread_seq LIMIT 1
   FOR UPDATE;
  IF NOT FOUND THEN RETURN NULL; END IF;
  FOR q IN
    UPDATE synaps.queue_items SET status = 'ready', available_at = greatest(available_at, now())
     WHERE id IN (SELECT p.id FROM synaps.queue_items p
                   WHERE p.run_id = v_next AND p.status = 'parked'
                   ORDER BY p.id FOR UPDATE SKIP LOCKED)
    RETURNING task_id, queue
  LOOP
    PERFORM synaps.append_event(v_next, q.task_id, 'task.ready', NULL,
                                jsonb_build_object('reason', 'thread', 'after', NEW.id));
    IF NOT q.queue = ANY (v_queues) THEN v_queues := v_queues || q.queue; END IF;
  END LOOP;
  INSERT INTO synaps.outbox (subject, payload)
  SELECT 'synaps.wakeup.' || w.queue, jsonb_build_object('queue', w.queue, 'runId', v_next)
    FROM unnest(v_queues) AS w(queue);
  RETURN NULL;
END $$;

-- submit_command as 0032 wrote it, with the thread's turn taken by take_thread_turn above.

CREATE OR REPLACE FUNCTION synaps.submit_command(p_tenant text, p_actor text, p_idempotency_key text, p_request_hash text, p_command jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_command_id uuid := synaps.uuid_v7();
  v_run_id     uuid := synaps.uuid_v7();
  v_thread_id  uuid;
  v_seq        bigint := 1;
  v_existing   synaps.commands;
  v_queue      text := coalesce(p_command->>'queue', 'default');
  v_priority   integer := coalesce((p_command->>'priority')::integer, 0);
  v_available  timestamptz := greatest(now(), coalesce((p_command->>'notBefore')::timestamptz, now()));
  v_max        integer := coalesce((p_command->>'maxAttempts')::integer, 3);
  v_on_busy    text := coalesce(p_command->>'onThreadBusy', 'enqueue');
  v_turn       record;
  v_holder     uuid;
  v_cancelled  uuid[] := '{}';
  v_outbox     jsonb;
  v_response   jsonb;
  v_n_tasks    integer := jsonb_array_length(p_command->'tasks');
  v_n_parked   integer := 0;
BEGIN
  IF p_command->>'threadId' IS NOT NULL THEN
    v_thread_id := (p_command->>'threadId')::uuid;
    SELECT * INTO v_turn
      FROM synaps.take_thread_turn(p_tenant, p_actor, v_thread_id, v_on_busy, p_idempotency_key,
                                   p_request_hash);
    IF v_turn.answer IS NOT NULL THEN RETURN v_turn.answer; END IF;
    v_seq := v_turn.seq;
    v_holder := v_turn.holder;
    v_cancelled := v_turn.cancelled;
  ELSE
    v_thread_id := synaps.uuid_v7();
    INSERT INTO synaps.threads (id, tenant_id, last_run_seq) VALUES (v_thread_id, p_tenant, 1);
  END IF;

  -- The answer is known before anything is written: the command is inserted with it.
  v_response := jsonb_build_object('commandId', v_command_id, 'runId', v_run_id,
                                   'threadId', v_thread_id, 'status', 'queued');
  IF v_holder IS NOT NULL THEN
    v_response := v_response || jsonb_build_object(
      'waiting', jsonb_build_object('reason', 'thread', 'runId', v_holder));
  END IF;
  IF cardinality(v_cancelled) > 0 THEN
    v_response := v_response || jsonb_build_object('cancelledRuns', to_jsonb(v_cancelled));
  END IF;
  INSERT INTO synaps.commands (id, tenant_id, thread_id, kind, payload, idempotency_key, request_hash,
                               submitted_by, response)
  VALUES (v_command_id, p_tenant, v_thread_id, p_command->>'kind', p_command->'payload',
          p_idempotency_key, p_request_hash, p_actor, v_response)
  ON CONFLICT ON CONSTRAINT commands_idempotency_key_uq DO NOTHING;
  IF NOT FOUND THEN
    -- A command with this key exists (a concurrent insert waited for it to commit). The
    -- thread made above for it is not needed.
    IF p_command->>'threadId' IS NULL THEN
      DELETE FROM synaps.threads WHERE id = v_thread_id;
    END IF;
    IF cardinality(v_cancelled) > 0 THEN
      -- A concurrent submit (not an interrupt: those wait for each other in take_thread_turn)
      -- took the key after this one cancelled the thread's runs: undo everything rather than
      -- answer with the runs cancelled. 40001 is "retry": the retry gets the key's answer.
      RAISE EXCEPTION 'idempotency key % was taken by a concurrent submit; nothing was written, retry',
        p_idempotency_key USING ERRCODE = '40001';
    END IF;
    SELECT * INTO v_existing FROM synaps.commands
     WHERE tenant_id = p_tenant AND idempotency_key = p_idempotency_key;
    IF v_existing.request_hash <> p_request_hash THEN
      RETURN jsonb_build_object('error', 'idempotency_conflict', 'commandId', v_existing.id);
    END IF;
    RETURN v_existing.response || jsonb_build_object('replayed', true);
  END IF;

  -- The run is inserted with its final last_seq (run.created, a task.queued per task and a
  -- task.waiting per root task that waits for the thread), so its events need no update of it.
  IF v_holder IS NOT NULL THEN
    SELECT count(*) INTO v_n_parked FROM jsonb_array_elements(p_command->'tasks') AS t
     WHERE jsonb_array_length(coalesce(t->'dependsOn', '[]'::jsonb)) = 0;
  END IF;
  INSERT INTO synaps.runs (id, command_id, thread_id, tenant_id, last_seq, thread_seq)
  VALUES (v_run_id, v_command_id, v_thread_id, p_tenant, 1 + v_n_tasks + v_n_parked, v_seq);

  -- Tasks, queue items and events, one INSERT each; the events in the order of 0027 (each
  -- task's task.queued, then its task.waiting when it waits for the thread).
  WITH src AS MATERIALIZED (
    SELECT tk.k, tk.t, synaps.uuid_v7() AS task_id,
           jsonb_array_length(coalesce(tk.t->'dependsOn', '[]'::jsonb)) > 0 AS waiting
      FROM jsonb_array_elements(p_command->'tasks') WITH ORDINALITY AS tk(t, k)
  ),
  numbered AS MATERIALIZED (
    SELECT s.*, (v_holder IS NOT NULL AND NOT s.waiting) AS parked,
           1 + s.k + coalesce(sum((v_holder IS NOT NULL AND NOT s.waiting)::integer)
                       OVER (ORDER BY s.k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
             AS seq
      FROM src s
  ),
  tsk AS (
    INSERT INTO synaps.tasks (id, run_id, tenant_id, name, kind, spec, status, max_attempts, depends_on)
    SELECT task_id, v_run_id, p_tenant, t->>'name', t->>'kind', t->'spec',
           CASE WHEN waiting THEN 'waiting' ELSE 'queued' END, v_max,
           ARRAY(SELECT jsonb_array_elements_text(coalesce(t->'dependsOn', '[]'::jsonb)))
      FROM numbered ORDER BY k
  ),
  qi AS (
    INSERT INTO synaps.queue_items (task_id, run_id, tenant_id, queue, priority, available_at, status,
                                    max_attempts, fairness_key, concurrency_key)
    SELECT task_id, v_run_id, p_tenant, v_queue, v_priority, v_available,
           CASE WHEN waiting THEN 'waiting' WHEN parked THEN 'parked' ELSE 'ready' END,
           v_max, coalesce(p_command->>'fairnessKey', ''), p_command->>'concurrencyKey'
      FROM numbered ORDER BY k
  )
  INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data)
  SELECT v_run_id, e.task_id, e.seq, e.type, NULL, e.data FROM (
    SELECT NULL::uuid AS task_id, 1::bigint AS seq, 'run.created' AS type,
           jsonb_build_object('commandId', v_command_id, 'kind', p_command->>'kind') AS data
    UNION ALL
    SELECT n.task_id, n.seq, 'task.queued',
           jsonb_build_object('name', n.t->>'name', 'queue', v_queue, 'priority', v_priority,
                              'availableAt', v_available)
      FROM numbered n
    UNION ALL
    SELECT n.task_id, n.seq + 1, 'task.waiting',
           jsonb_build_object('reason', 'thread', 'runId', v_holder)
      FROM numbered n WHERE n.parked) e
   ORDER BY e.seq;

  -- A run waiting for its thread is woken by the run before it (release_thread_turn); the
  -- cancellations of interrupt and rollback are handed to the relay with the rest.
  WITH o AS (
    INSERT INTO synaps.outbox (subject, payload)
    SELECT 'synaps.wakeup.' || v_queue, jsonb_build_object('queue', v_queue, 'runId', v_run_id)
     WHERE v_holder IS NULL
    RETURNING id, subject, payload, msg_id
  ), c AS (
    SELECT ob.id, ob.subject, ob.payload, ob.msg_id FROM synaps.outbox ob
     WHERE cardinality(v_cancelled) > 0 AND ob.published_at IS NULL
       AND ob.subject = ANY (ARRAY(SELECT 'synaps.run.' || x FROM unnest(v_cancelled) AS x))
  )
  SELECT jsonb_agg(jsonb_build_object('id', a.id, 'subject', a.subject, 'payload', a.payload, 'msgId', a.msg_id))
    INTO v_outbox FROM (SELECT * FROM o UNION ALL SELECT * FROM c) a;

  RETURN v_response || jsonb_build_object('outbox', coalesce(v_outbox, '[]'::jsonb));
END $$;

