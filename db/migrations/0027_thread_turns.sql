-- One run at a time per thread (issue #15; docs/flow-control.md). A thread's runs execute in
-- submit order, each seeing the answers of those before it:
--
-- * threads.last_run_seq / runs.thread_seq: a run's place in its thread, assigned under the
--   thread's row lock at submit (created_at is the transaction's start, not the commit order).
-- * A run submitted while an earlier run of its thread is unfinished waits: its root queue items
--   are 'parked' (a new status, never claimed: the claim takes ready and leased items only) and
--   its tasks get `task.waiting {reason: "thread", runId}` naming the run that holds the thread.
-- * When a run finishes (any path: settle_tasks, finish_run, cancel_run) the trigger
--   runs_release_thread_turn releases the parked items of the thread's next unfinished run
--   (`task.ready {reason: "thread", after}` and a wakeup), if the finished run was the thread's
--   oldest unfinished one.
-- * submit_command takes `onThreadBusy`: enqueue (default) | reject (answer {error:
--   thread_busy, runId}) | interrupt (cancel the thread's unfinished runs; the running tasks'
--   streamed text so far is kept as their output and stays in the history) | rollback (cancel
--   them and drop their turns from the history). runs.thread_turn records 'interrupted' or
--   'rolledBack'.
-- * synaps.thread_history(thread, seq) is the history a claimed task receives (earlier runs by
--   thread_seq); claim_queue_items now calls it and is otherwise unchanged.
--
-- Races: a submit locks the thread row, then the thread's unfinished runs FOR UPDATE (oldest
-- first); a run finishing holds its own row lock until commit, so the submit either waits for it
-- and sees it finished, or has its parked run committed before the finishing transaction's
-- trigger reads the thread (it must wait for the submit's lock on the run to update it). The
-- trigger locks only the next run's row; nothing locks a thread's runs newest-first, so these
-- lock orders cannot form a cycle.

ALTER TABLE synaps.threads ADD COLUMN last_run_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE synaps.runs ADD COLUMN thread_seq bigint;
ALTER TABLE synaps.runs ADD COLUMN thread_turn text
  CONSTRAINT runs_thread_turn_check CHECK (thread_turn IN ('interrupted', 'rolledBack'));

UPDATE synaps.runs r SET thread_seq = s.n
  FROM (SELECT id, row_number() OVER (PARTITION BY thread_id ORDER BY created_at, id) AS n
          FROM synaps.runs) s
 WHERE s.id = r.id;
UPDATE synaps.threads t SET last_run_seq = s.n
  FROM (SELECT thread_id, max(thread_seq) AS n FROM synaps.runs GROUP BY thread_id) s
 WHERE s.thread_id = t.id;
ALTER TABLE synaps.runs ALTER COLUMN thread_seq SET NOT NULL;

ALTER TABLE synaps.queue_items DROP CONSTRAINT queue_items_status_check;
ALTER TABLE synaps.queue_items ADD CONSTRAINT queue_items_status_check
  CHECK (status IN ('waiting', 'parked', 'ready', 'leased', 'held', 'cancelled', 'dead', 'limited'));

-- The turns a task of run (p_thread, p_seq) sees: the last 50 of the thread's earlier runs'
-- succeeded tasks, and of an interrupted run the streamed text its running tasks had reached;
-- nothing of a rolled-back run. Oldest first: [{input, output}].
CREATE FUNCTION synaps.thread_history(p_thread uuid, p_seq bigint)
RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(h.turn ORDER BY h.thread_seq, h.task_created), '[]'::jsonb)
    FROM (SELECT r.thread_seq, t.created_at AS task_created,
                 jsonb_build_object('input', t.spec->'input'->>'text',
                                    'output', t.output->>'text') AS turn
            FROM synaps.runs r JOIN synaps.tasks t ON t.run_id = r.id
           WHERE r.thread_id = p_thread AND r.thread_seq < p_seq
             AND r.thread_turn IS DISTINCT FROM 'rolledBack'
             AND (t.status = 'succeeded'
                  OR (r.thread_turn = 'interrupted' AND t.status = 'cancelled'
                      AND coalesce(t.output->>'text', '') <> ''))
           ORDER BY r.thread_seq DESC, t.created_at DESC LIMIT 50) h
$$;

-- After a run finished: when it was its thread's oldest unfinished run, the next unfinished run
-- of the thread (by thread_seq) gets its parked items back in the queue.
CREATE FUNCTION synaps.release_thread_turn() RETURNS trigger LANGUAGE plpgsql AS $$
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
     WHERE run_id = v_next AND status = 'parked'
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

CREATE TRIGGER runs_release_thread_turn
  AFTER UPDATE OF status ON synaps.runs
  FOR EACH ROW
  WHEN (OLD.status IN ('queued', 'running', 'awaiting_approval')
        AND NEW.status IN ('succeeded', 'failed', 'cancelled'))
  EXECUTE FUNCTION synaps.release_thread_turn();

-- Why a queued task is not running yet, for GET /v1/runs/{id}: the data of its latest ledger
-- event when that is task.waiting ({reason: thread | rateLimit | limit, ...}); no row otherwise.
CREATE FUNCTION synaps.task_waiting(t synaps.tasks)
RETURNS TABLE(data jsonb) LANGUAGE sql STABLE AS $$
  SELECT l.data FROM (SELECT e.type, e.data FROM synaps.ledger_events e
                       WHERE e.run_id = t.run_id AND e.task_id = t.id
                       ORDER BY e.seq DESC LIMIT 1) l
   WHERE t.status = 'queued' AND l.type = 'task.waiting'
$$;

-- submit_command with thread turns (see the top of this file). p_command may carry
-- onThreadBusy (enqueue | reject | interrupt | rollback; the API validates it). New answers:
-- {error: 'thread_busy', runId, threadId, waiting} for reject; a queued run behind a busy
-- thread answers waiting: {reason: 'thread', runId}; interrupt and rollback answer
-- cancelledRuns: [ids].
CREATE OR REPLACE FUNCTION synaps.submit_command(p_tenant text, p_actor text, p_idempotency_key text, p_request_hash text, p_command jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
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
  v_unfinished uuid[];
  v_holder     uuid;
  v_cancelled  uuid[] := '{}';
  v_task       jsonb;
  v_task_id    uuid;
  v_waiting    boolean;
  v_outbox     jsonb;
  v_response   jsonb;
  i            integer;
BEGIN
  IF p_command->>'threadId' IS NOT NULL THEN
    -- The thread's row lock orders its submits: the run's place in the thread, and what the
    -- thread is busy with, are decided one submit at a time.
    UPDATE synaps.threads SET last_run_seq = last_run_seq + 1
     WHERE id = (p_command->>'threadId')::uuid AND tenant_id = p_tenant
    RETURNING id, last_run_seq INTO v_thread_id, v_seq;
    IF NOT FOUND THEN
      RETURN jsonb_build_object('error', 'thread_not_found');
    END IF;
    -- A retried submit gets its first answer, even when its own run is what keeps the thread busy.
    IF p_idempotency_key IS NOT NULL THEN
      SELECT * INTO v_existing FROM synaps.commands
       WHERE tenant_id = p_tenant AND idempotency_key = p_idempotency_key;
      IF FOUND THEN
        IF v_existing.request_hash <> p_request_hash THEN
          RETURN jsonb_build_object('error', 'idempotency_conflict', 'commandId', v_existing.id);
        END IF;
        RETURN v_existing.response || jsonb_build_object('replayed', true);
      END IF;
    END IF;
    -- Its unfinished runs, oldest first, locked: one finishing meanwhile is waited for and left out.
    SELECT array_agg(u.id ORDER BY u.thread_seq) INTO v_unfinished
      FROM (SELECT r.id, r.thread_seq FROM synaps.runs r
             WHERE r.thread_id = v_thread_id AND r.status IN ('queued', 'running', 'awaiting_approval')
             ORDER BY r.thread_seq FOR UPDATE) u;
    IF v_unfinished IS NOT NULL THEN
      IF v_on_busy = 'reject' THEN
        RETURN jsonb_build_object('error', 'thread_busy', 'runId', v_unfinished[1],
                                  'threadId', v_thread_id, 'waiting', cardinality(v_unfinished) - 1);
      ELSIF v_on_busy IN ('interrupt', 'rollback') THEN
        IF v_on_busy = 'interrupt' THEN
          -- What the running tasks streamed so far becomes their output: the history keeps it.
          UPDATE synaps.tasks t
             SET output = jsonb_build_object('text', coalesce((
                   SELECT string_agg(e.data->>'text', '' ORDER BY e.seq) FROM synaps.ledger_events e
                    WHERE e.run_id = t.run_id AND e.task_id = t.id AND e.type = 'task.progress'
                      AND e.attempt = t.attempt), ''), 'interrupted', true)
           WHERE t.run_id = ANY (v_unfinished) AND t.status = 'running';
        END IF;
        UPDATE synaps.runs SET thread_turn = CASE WHEN v_on_busy = 'interrupt' THEN 'interrupted'
                                                  ELSE 'rolledBack' END
         WHERE id = ANY (v_unfinished);
        -- Newest first, so that no cancellation hands the thread to a run cancelled next.
        FOR i IN REVERSE cardinality(v_unfinished) .. 1 LOOP
          IF synaps.cancel_run(p_tenant, v_unfinished[i], p_actor || ' (onThreadBusy ' || v_on_busy || ')') = 'cancelled' THEN
            v_cancelled := v_cancelled || v_unfinished[i];
          END IF;
        END LOOP;
      ELSE
        v_holder := v_unfinished[1];
      END IF;
    END IF;
  ELSE
    v_thread_id := synaps.uuid_v7();
    INSERT INTO synaps.threads (id, tenant_id, last_run_seq) VALUES (v_thread_id, p_tenant, 1);
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

  INSERT INTO synaps.runs (id, command_id, thread_id, tenant_id, thread_seq)
  VALUES (v_run_id, v_command_id, v_thread_id, p_tenant, v_seq);
  PERFORM synaps.append_event(v_run_id, NULL, 'run.created',
                              NULL, jsonb_build_object('commandId', v_command_id, 'kind', p_command->>'kind'));

  FOR v_task IN SELECT * FROM jsonb_array_elements(p_command->'tasks') LOOP
    v_task_id := synaps.uuid_v7();
    v_waiting := jsonb_array_length(coalesce(v_task->'dependsOn', '[]'::jsonb)) > 0;
    INSERT INTO synaps.tasks (id, run_id, tenant_id, name, kind, spec, status, max_attempts, depends_on)
    VALUES (v_task_id, v_run_id, p_tenant, v_task->>'name', v_task->>'kind', v_task->'spec',
            CASE WHEN v_waiting THEN 'waiting' ELSE 'queued' END, v_max,
            ARRAY(SELECT jsonb_array_elements_text(coalesce(v_task->'dependsOn', '[]'::jsonb))));
    INSERT INTO synaps.queue_items (task_id, run_id, tenant_id, queue, priority, available_at, status, max_attempts,
                                    fairness_key, concurrency_key)
    VALUES (v_task_id, v_run_id, p_tenant, v_queue, v_priority, v_available,
            CASE WHEN v_waiting THEN 'waiting' WHEN v_holder IS NOT NULL THEN 'parked' ELSE 'ready' END,
            v_max, coalesce(p_command->>'fairnessKey', ''), p_command->>'concurrencyKey');
    PERFORM synaps.append_event(v_run_id, v_task_id, 'task.queued', NULL,
                                jsonb_build_object('name', v_task->>'name', 'queue', v_queue,
                                                   'priority', v_priority, 'availableAt', v_available));
    IF v_holder IS NOT NULL AND NOT v_waiting THEN
      PERFORM synaps.append_event(v_run_id, v_task_id, 'task.waiting', NULL,
                                  jsonb_build_object('reason', 'thread', 'runId', v_holder));
    END IF;
  END LOOP;

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

  v_response := jsonb_build_object('commandId', v_command_id, 'runId', v_run_id,
                                   'threadId', v_thread_id, 'status', 'queued');
  IF v_holder IS NOT NULL THEN
    v_response := v_response || jsonb_build_object(
      'waiting', jsonb_build_object('reason', 'thread', 'runId', v_holder));
  END IF;
  IF cardinality(v_cancelled) > 0 THEN
    v_response := v_response || jsonb_build_object('cancelledRuns', to_jsonb(v_cancelled));
  END IF;
  UPDATE synaps.commands SET response = v_response WHERE id = v_command_id;
  RETURN v_response || jsonb_build_object('outbox', coalesce(v_outbox, '[]'::jsonb));
END $$;

-- submit_commands with thread turns: every run gets its place in its thread; a run whose thread
-- is busy (an unfinished run before the batch, or an earlier command of the same batch) waits,
-- parked, with task.waiting {reason: 'thread', runId} (the run that holds the thread). Batches
-- only enqueue (the API refuses another onThreadBusy in a batch).
CREATE OR REPLACE FUNCTION synaps.submit_commands(p_tenant text, p_actor text, p_items jsonb)
RETURNS TABLE(item_n bigint, item_answer jsonb) LANGUAGE plpgsql AS $$
DECLARE
  v_now      timestamptz := now();
  v_written  jsonb;
  v_threads  uuid[];
  v_holders  jsonb;
BEGIN
  -- The named threads' rows, then their unfinished runs, locked (as submit_command does): the
  -- statement below then sees every run that finished meanwhile as finished.
  v_threads := ARRAY(SELECT DISTINCT (i->'command'->>'threadId')::uuid
                       FROM jsonb_array_elements(p_items) AS i
                      WHERE i->'command'->>'threadId' IS NOT NULL);
  IF cardinality(v_threads) > 0 THEN
    PERFORM 1 FROM synaps.threads
     WHERE id = ANY (v_threads) AND tenant_id = p_tenant ORDER BY id FOR UPDATE;
    SELECT coalesce(jsonb_object_agg(h.thread_id, h.id), '{}'::jsonb) INTO v_holders
      FROM (SELECT DISTINCT ON (l.thread_id) l.thread_id, l.id
              FROM (SELECT r.thread_id, r.id, r.thread_seq FROM synaps.runs r
                     WHERE r.thread_id = ANY (v_threads) AND r.tenant_id = p_tenant
                       AND r.status IN ('queued', 'running', 'awaiting_approval')
                     ORDER BY r.thread_seq FOR UPDATE) l
             ORDER BY l.thread_id, l.thread_seq) h;
  ELSE
    v_holders := '{}'::jsonb;
  END IF;

  WITH items AS MATERIALIZED (
    SELECT t.n, t.i->>'key' AS key, t.i->>'hash' AS hash, t.i->'command' AS c,
           (t.i->'command'->>'threadId')::uuid AS given_thread,
           synaps.uuid_v7() AS command_id, synaps.uuid_v7() AS run_id,
           synaps.uuid_v7() AS new_thread,
           coalesce(t.i->'command'->>'queue', 'default') AS queue,
           coalesce((t.i->'command'->>'priority')::integer, 0) AS priority,
           greatest(v_now, coalesce((t.i->'command'->>'notBefore')::timestamptz, v_now)) AS available,
           coalesce((t.i->'command'->>'maxAttempts')::integer, 3) AS max_attempts,
           coalesce(t.i->'command'->>'fairnessKey', '') AS fairness_key,
           t.i->'command'->>'concurrencyKey' AS concurrency_key
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS t(i, n)
  ),
  checked AS MATERIALIZED (
    SELECT i.*, coalesce(i.given_thread, i.new_thread) AS thread_id,
           (i.given_thread IS NULL OR EXISTS (
              SELECT 1 FROM synaps.threads th
               WHERE th.id = i.given_thread AND th.tenant_id = p_tenant)) AS thread_ok
      FROM items i
  ),
  cmd AS (
    INSERT INTO synaps.commands (id, tenant_id, thread_id, kind, payload, idempotency_key,
                                 request_hash, submitted_by, response)
    SELECT command_id, p_tenant, thread_id, c->>'kind', c->'payload', key, hash, p_actor,
           jsonb_build_object('commandId', command_id, 'runId', run_id,
                              'threadId', thread_id, 'status', 'queued')
      FROM checked WHERE thread_ok ORDER BY key NULLS LAST, n  -- key order: see 0019_batch_key_order.sql
    ON CONFLICT ON CONSTRAINT commands_idempotency_key_uq DO NOTHING
    RETURNING id
  ),
  fresh0 AS MATERIALIZED (
    SELECT ch.*, row_number() OVER (PARTITION BY ch.thread_id ORDER BY ch.n) AS k_in_thread,
           count(*) OVER (PARTITION BY ch.thread_id) AS n_in_thread
      FROM checked ch JOIN cmd ON cmd.id = ch.command_id
  ),
  bump AS (
    -- Named threads: their next places, for the batch's runs in order.
    UPDATE synaps.threads th SET last_run_seq = th.last_run_seq + g.n_in_thread
      FROM (SELECT DISTINCT thread_id, n_in_thread FROM fresh0 WHERE given_thread IS NOT NULL) g
     WHERE th.id = g.thread_id
    RETURNING th.id, th.last_run_seq - g.n_in_thread AS base
  ),
  fresh AS MATERIALIZED (
    SELECT f.*,
           CASE WHEN f.given_thread IS NULL THEN 1 ELSE b.base + f.k_in_thread END AS thread_seq,
           coalesce((v_holders->>f.thread_id::text)::uuid,
                    CASE WHEN f.k_in_thread > 1 THEN first.run_id END) AS holder,
           jsonb_array_length(f.c->'tasks') AS n_tasks
      FROM fresh0 f
      LEFT JOIN bump b ON b.id = f.thread_id
      LEFT JOIN fresh0 first ON first.thread_id = f.thread_id AND first.k_in_thread = 1
  ),
  thr AS (
    INSERT INTO synaps.threads (id, tenant_id, last_run_seq)
    SELECT new_thread, p_tenant, 1 FROM fresh WHERE given_thread IS NULL ORDER BY n
  ),
  task_src AS MATERIALIZED (
    SELECT f.n, tk.k, f.run_id, f.queue, f.priority, f.available, f.max_attempts, tk.t,
           f.fairness_key, f.concurrency_key,
           f.holder, f.n_tasks, synaps.uuid_v7() AS task_id,
           jsonb_array_length(coalesce(tk.t->'dependsOn', '[]'::jsonb)) > 0 AS waiting
      FROM fresh f, jsonb_array_elements(f.c->'tasks') WITH ORDINALITY AS tk(t, k)
  ),
  parks AS MATERIALIZED (
    -- The root tasks of runs that wait for their thread: one task.waiting each, after the
    -- run's task.queued events.
    SELECT s.run_id, s.task_id, s.n, s.holder,
           s.n_tasks + row_number() OVER (PARTITION BY s.run_id ORDER BY s.k) AS k
      FROM task_src s WHERE s.holder IS NOT NULL AND NOT s.waiting
  ),
  run AS (
    INSERT INTO synaps.runs (id, command_id, thread_id, tenant_id, last_seq, thread_seq)
    SELECT f.run_id, f.command_id, f.thread_id, p_tenant,
           1 + f.n_tasks + (SELECT count(*) FROM parks p WHERE p.run_id = f.run_id), f.thread_seq
      FROM fresh f ORDER BY f.n
  ),
  tsk AS (
    INSERT INTO synaps.tasks (id, run_id, tenant_id, name, kind, spec, status, max_attempts,
                              depends_on)
    SELECT task_id, run_id, p_tenant, t->>'name', t->>'kind', t->'spec',
           CASE WHEN waiting THEN 'waiting' ELSE 'queued' END, max_attempts,
           ARRAY(SELECT jsonb_array_elements_text(coalesce(t->'dependsOn', '[]'::jsonb)))
      FROM task_src ORDER BY n, k
  ),
  qi AS (
    INSERT INTO synaps.queue_items (task_id, run_id, tenant_id, queue, priority, available_at,
                                    status, max_attempts, fairness_key, concurrency_key)
    SELECT task_id, run_id, p_tenant, queue, priority, available,
           CASE WHEN waiting THEN 'waiting' WHEN holder IS NOT NULL THEN 'parked' ELSE 'ready' END,
           max_attempts, fairness_key, concurrency_key
      FROM task_src ORDER BY n, k
  ),
  ev AS (
    INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data)
    SELECT e.run_id, e.task_id, e.seq, e.type, NULL, e.data FROM (
      SELECT f.n, 0::bigint AS k, f.run_id, NULL::uuid AS task_id, 1::bigint AS seq,
             'run.created' AS type,
             jsonb_build_object('commandId', f.command_id, 'kind', f.c->>'kind') AS data
        FROM fresh f
      UNION ALL
      SELECT s.n, s.k, s.run_id, s.task_id, 1 + s.k, 'task.queued',
             jsonb_build_object('name', s.t->>'name', 'queue', s.queue, 'priority', s.priority,
                                'availableAt', s.available)
        FROM task_src s
      UNION ALL
      SELECT p.n, p.k, p.run_id, p.task_id, 1 + p.k, 'task.waiting',
             jsonb_build_object('reason', 'thread', 'runId', p.holder)
        FROM parks p) e
     ORDER BY e.n, e.k
  ),
  ob AS (
    -- A run that waits for its thread is woken when the thread is free (release_thread_turn).
    INSERT INTO synaps.outbox (subject, payload)
    SELECT 'synaps.wakeup.' || queue, jsonb_build_object('queue', queue, 'runId', run_id)
      FROM fresh WHERE holder IS NULL ORDER BY n
    RETURNING id, subject, payload, msg_id
  )
  SELECT jsonb_agg(jsonb_build_object(
           'n', ch.n, 'key', ch.key, 'hash', ch.hash,
           'answer', CASE
             WHEN NOT ch.thread_ok THEN jsonb_build_object('error', 'thread_not_found')
             WHEN f.n IS NULL THEN NULL  -- the key was used before: read below
             ELSE jsonb_build_object('commandId', f.command_id, 'runId', f.run_id,
                                     'threadId', f.thread_id, 'status', 'queued',
                                     'outbox', CASE WHEN ob.id IS NULL THEN '[]'::jsonb
                                       ELSE jsonb_build_array(jsonb_build_object(
                                       'id', ob.id, 'subject', ob.subject,
                                       'payload', ob.payload, 'msgId', ob.msg_id)) END)
                  || CASE WHEN f.holder IS NULL THEN '{}'::jsonb
                          ELSE jsonb_build_object('waiting', jsonb_build_object(
                                 'reason', 'thread', 'runId', f.holder)) END
           END) ORDER BY ch.n)
    INTO v_written
    FROM checked ch
    LEFT JOIN fresh f ON f.n = ch.n
    LEFT JOIN ob ON (ob.payload->>'runId')::uuid = f.run_id;

  -- Keys used before (by an earlier transaction, or earlier in this batch): a statement of its
  -- own, whose snapshot sees what the conflicting inserts committed.
  RETURN QUERY
    SELECT (w->>'n')::bigint,
           CASE
             WHEN w->'answer' <> 'null'::jsonb THEN w->'answer'
             WHEN c.request_hash IS DISTINCT FROM w->>'hash'
               THEN jsonb_build_object('error', 'idempotency_conflict', 'commandId', c.id)
             ELSE c.response || jsonb_build_object('replayed', true)
           END
      FROM jsonb_array_elements(v_written) AS w
      LEFT JOIN synaps.commands c
        ON w->'answer' = 'null'::jsonb AND c.tenant_id = p_tenant AND c.idempotency_key = w->>'key'
     ORDER BY 1;
END $$;

-- claim_queue_items as 0022_concurrency_keys left it, with the history from
-- synaps.thread_history (earlier runs by thread_seq); nothing else changes.
CREATE OR REPLACE FUNCTION synaps.claim_queue_items(p_worker text, p_queues text[], p_limit integer, p_lease_seconds integer, p_tenant text DEFAULT NULL::text, p_fair boolean DEFAULT true) RETURNS TABLE(item_id bigint, lease_epoch bigint, attempt integer, task_id uuid, run_id uuid, tenant_id text, thread_id uuid, task_name text, task_kind text, spec jsonb, lease_expires_at timestamp with time zone, upstream jsonb, history jsonb, snapshot_version bigint)
    LANGUAGE plpgsql
    AS $$
#variable_conflict use_column
DECLARE
  v_ids      bigint[];
  v_expired  bigint[];
  v_item     bigint;
  v_version  bigint;
  v_gq       text[];
  v_gt       text[];
  v_gk       text[];
  v_pick     bigint[];
BEGIN
  IF p_fair THEN
    -- The groups with work in these queues: one index probe each (a loose index scan).
    WITH RECURSIVE g AS (
      SELECT f.queue, f.tenant_id, f.fairness_key
        FROM unnest(p_queues) AS u(queue)
       CROSS JOIN LATERAL (
         SELECT q.queue, q.tenant_id, q.fairness_key FROM synaps.queue_items q
          WHERE q.queue = u.queue AND q.status IN ('ready', 'leased')
            AND (p_tenant IS NULL OR q.tenant_id = p_tenant)
          ORDER BY q.tenant_id, q.fairness_key LIMIT 1) f
      UNION ALL
      SELECT n.queue, n.tenant_id, n.fairness_key
        FROM g CROSS JOIN LATERAL (
         SELECT q.queue, q.tenant_id, q.fairness_key FROM synaps.queue_items q
          WHERE q.queue = g.queue AND q.status IN ('ready', 'leased')
            AND (q.tenant_id, q.fairness_key) > (g.tenant_id, g.fairness_key)
            AND (p_tenant IS NULL OR q.tenant_id = p_tenant)
          ORDER BY q.tenant_id, q.fairness_key LIMIT 1) n
    )
    SELECT array_agg(g.queue), array_agg(g.tenant_id), array_agg(g.fairness_key)
      INTO v_gq, v_gt, v_gk FROM g;
  END IF;

  IF coalesce(cardinality(v_gq), 0) > 1 THEN
    -- Fair order (the contract at the top of this file). Each group offers its first k
    -- claimable items: its part of p_limit + 16 (the extra ones stand in for rows a concurrent
    -- claim has locked), at least 2; a group that deserves more gets it from the next claims.
    -- Then every candidate gets its rank inside its tenant and the tenant's share.
    WITH cand AS (
      SELECT gr.tenant_id, gr.fairness_key, c.id, c.priority, c.available_at,
             row_number() OVER (PARTITION BY gr.tenant_id, gr.fairness_key
                                ORDER BY c.priority DESC, c.available_at, c.id) AS i
        FROM unnest(v_gq, v_gt, v_gk) AS gr(queue, tenant_id, fairness_key)
       CROSS JOIN LATERAL (
         SELECT q.id, q.priority, q.available_at FROM synaps.queue_items q
          WHERE q.queue = gr.queue AND q.tenant_id = gr.tenant_id AND q.fairness_key = gr.fairness_key
            AND q.status IN ('ready', 'leased') AND q.available_at <= now()
          ORDER BY q.priority DESC, q.available_at, q.id
          LIMIT greatest(2, ceil((p_limit + 16)::numeric / cardinality(v_gq)))) c
    ), keys AS (
      SELECT k.tenant_id, k.fairness_key,
             (SELECT count(*) FROM synaps.queue_items q
               WHERE q.queue = ANY (p_queues) AND q.tenant_id = k.tenant_id
                 AND q.fairness_key = k.fairness_key AND q.status = 'leased') AS running,
             CASE WHEN k.fairness_key = '' THEN 1
                  ELSE synaps.flow_weight(k.tenant_id, k.fairness_key) END AS weight
        FROM (SELECT DISTINCT cand.tenant_id, cand.fairness_key FROM cand) k
    ), tenants AS (
      SELECT t.tenant_id,
             (SELECT count(*) FROM synaps.queue_items q
               WHERE q.queue = ANY (p_queues) AND q.tenant_id = t.tenant_id
                 AND q.status = 'leased') AS running,
             synaps.flow_weight(t.tenant_id, NULL) AS weight
        FROM (SELECT DISTINCT cand.tenant_id FROM cand) t
    ), by_key AS (
      SELECT cand.*, (keys.running + cand.i)::float8 / keys.weight AS key_share
        FROM cand JOIN keys USING (tenant_id, fairness_key)
    ), by_tenant AS (
      SELECT b.id, b.available_at,
             (tenants.running + row_number() OVER (PARTITION BY b.tenant_id
                 ORDER BY b.priority DESC, b.key_share, b.available_at, b.id))::float8
               / tenants.weight AS tenant_share
        FROM by_key b JOIN tenants USING (tenant_id)
    )
    SELECT array_agg(b.id ORDER BY b.tenant_share, b.available_at, b.id) INTO v_ids FROM by_tenant b;

    SELECT array_agg(p.id ORDER BY p.ord) INTO v_pick
      FROM (SELECT q.id, o.ord FROM synaps.queue_items q
              JOIN unnest(v_ids) WITH ORDINALITY AS o(id, ord) ON o.id = q.id
             WHERE q.status IN ('ready', 'leased') AND q.available_at <= now()
             ORDER BY o.ord
             LIMIT p_limit
             FOR UPDATE OF q SKIP LOCKED) p;
  ELSE
    SELECT array_agg(p.id ORDER BY p.priority DESC, p.available_at, p.id) INTO v_pick
      FROM (SELECT q.id, q.priority, q.available_at FROM synaps.queue_items q
             WHERE q.queue = ANY (p_queues) AND q.status IN ('ready', 'leased') AND q.available_at <= now()
               AND (p_tenant IS NULL OR q.tenant_id = p_tenant)
             ORDER BY q.priority DESC, q.available_at, q.id
             LIMIT p_limit
             FOR UPDATE SKIP LOCKED) p;
  END IF;
  IF v_pick IS NULL THEN RETURN; END IF;

  -- Concurrency limits (the contract at the top of this file); nothing to do without any.
  IF EXISTS (SELECT 1 FROM synaps.flow_limits) THEN
    v_pick := synaps.flow_admit(v_pick);
  END IF;

  WITH claimed AS (
    UPDATE synaps.queue_items q
       SET status = 'leased', lease_owner = p_worker, lease_epoch = q.lease_epoch + 1,
           attempts = q.attempts + 1,
           lease_expires_at = now() + make_interval(secs => p_lease_seconds),
           available_at = now() + make_interval(secs => p_lease_seconds)
      FROM unnest(v_pick) WITH ORDINALITY AS o(id, ord)
     WHERE q.id = o.id
    RETURNING q.id, q.attempts, q.max_attempts, o.ord
  )
  SELECT array_agg(c.id ORDER BY c.ord) FILTER (WHERE c.attempts <= c.max_attempts),
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
           -- Earlier turns of the thread, oldest first (synaps.thread_history), so a command
           -- on an existing thread continues the conversation.
           synaps.thread_history(u.thread_id, u.thread_seq),
           v_version
      FROM unnest(v_ids) WITH ORDINALITY AS x(id, ord)
      JOIN synaps.queue_items q ON q.id = x.id
      JOIN synaps.tasks t ON t.id = q.task_id
      JOIN synaps.runs u ON u.id = t.run_id
     ORDER BY x.ord;
END $$;

