-- A thread row only when a submit names the thread (issue #13: cost per task).
--
-- Every submit wrote a `threads` row (its two indexes, and two foreign-key row locks in the same
-- transaction) although most runs are alone in their thread and nobody names it again: about
-- 400 bytes of WAL per submit and two of its five foreign-key checks. Now a run submitted
-- without `threadId` gets a fresh thread id and no row; the row is written the first time a
-- submit (or a dead letter's requeue) names the thread, by synaps.materialize_threads, from
-- the runs that carry the id (its tenant, and `last_run_seq` = their highest `thread_seq`).
-- A thread exists while it has a row or a run; GET /v1/threads/{id} answers either way.
-- `runs`, `commands` and `artifacts` keep `thread_id` without a foreign key to `threads`.

ALTER TABLE synaps.runs DROP CONSTRAINT runs_thread_id_fkey;
ALTER TABLE synaps.commands DROP CONSTRAINT commands_thread_id_fkey;
ALTER TABLE synaps.artifacts DROP CONSTRAINT artifacts_thread_id_fkey;

-- The row of each named thread that so far exists only as its runs' thread_id, written from
-- those runs of p_tenant (none of another tenant's). A thread with a row, or with no run of
-- p_tenant, is left as it is. Concurrent callers for one thread: the second waits for the
-- first's row and writes nothing. The caller then locks the rows it needs.
CREATE FUNCTION synaps.materialize_threads(p_tenant text, p_threads uuid[]) RETURNS void
    LANGUAGE sql
    AS $$
  INSERT INTO synaps.threads (id, tenant_id, created_at, last_run_seq)
  SELECT r.thread_id, p_tenant, min(r.created_at), max(r.thread_seq)
    FROM synaps.runs r
   WHERE r.thread_id = ANY (p_threads) AND r.tenant_id = p_tenant
     AND NOT EXISTS (SELECT 1 FROM synaps.threads t WHERE t.id = r.thread_id)
   GROUP BY r.thread_id
   ORDER BY r.thread_id
  ON CONFLICT (id) DO NOTHING
$$;

CREATE OR REPLACE FUNCTION synaps.take_thread_turn(p_tenant text, p_actor text, p_thread uuid, p_on_busy text, p_idempotency_key text, p_request_hash text, OUT seq bigint, OUT holder uuid, OUT cancelled uuid[], OUT answer jsonb) RETURNS record
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_existing   synaps.commands;
  v_unfinished uuid[];
  i            integer;
BEGIN
  cancelled := '{}';
  PERFORM synaps.materialize_threads(p_tenant, ARRAY[p_thread]);
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

CREATE OR REPLACE FUNCTION synaps.requeue_dead_item(p_tenant text, p_item_id bigint, p_actor text) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
  q       synaps.queue_items;
  v_task  synaps.tasks;
  v_run   synaps.runs;
  v_busy  uuid;
BEGIN
  SELECT r.* INTO v_run FROM synaps.queue_items qi JOIN synaps.runs r ON r.id = qi.run_id
   WHERE qi.id = p_item_id AND qi.tenant_id = p_tenant;
  IF NOT FOUND THEN RETURN 'not_found'; END IF;
  -- The thread's row serializes this with submits naming the thread (take_thread_turn).
  PERFORM synaps.materialize_threads(v_run.tenant_id, ARRAY[v_run.thread_id]);
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
    -- A thread of its own, without a row until a submit names it (materialize_threads).
    v_thread_id := synaps.uuid_v7();
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
    -- A command with this key exists (a concurrent insert waited for it to commit).
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

CREATE OR REPLACE FUNCTION synaps.submit_commands(p_tenant text, p_actor text, p_items jsonb) RETURNS TABLE(item_n bigint, item_answer jsonb)
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_now      timestamptz := now();
  v_written  jsonb;
  v_threads  uuid[];
  v_holders  jsonb;
  v_refused  jsonb := '{}'::jsonb;
BEGIN
  v_refused := synaps.submit_refusals(p_tenant, p_items);

  -- The named threads' rows, then their unfinished runs, locked (as submit_command does): the
  -- statement below then sees every run that finished meanwhile as finished.
  v_threads := ARRAY(SELECT DISTINCT (i->'command'->>'threadId')::uuid
                       FROM jsonb_array_elements(p_items) AS i
                      WHERE i->'command'->>'threadId' IS NOT NULL);
  IF cardinality(v_threads) > 0 THEN
    PERFORM synaps.materialize_threads(p_tenant, v_threads);
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
               WHERE th.id = i.given_thread AND th.tenant_id = p_tenant)) AS thread_ok,
           v_refused -> i.n::text AS refusal
      FROM items i
  ),
  cmd AS (
    INSERT INTO synaps.commands (id, tenant_id, thread_id, kind, payload, idempotency_key,
                                 request_hash, submitted_by, response)
    SELECT command_id, p_tenant, thread_id, c->>'kind', c->'payload', key, hash, p_actor,
           jsonb_build_object('commandId', command_id, 'runId', run_id,
                              'threadId', thread_id, 'status', 'queued')
      FROM checked WHERE thread_ok AND refusal IS NULL ORDER BY key NULLS LAST, n  -- key order: see 0019_batch_key_order.sql
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
    -- One wakeup per queue for the whole batch (a wakeup is a hint to claim, docs/queue.md),
    -- answered with the queue's first run. A run that waits for its thread is woken when the
    -- thread is free (release_thread_turn).
    INSERT INTO synaps.outbox (subject, payload)
    SELECT 'synaps.wakeup.' || queue,
           jsonb_build_object('queue', queue, 'runId', (array_agg(run_id ORDER BY n))[1],
                              'runs', count(*))
      FROM fresh WHERE holder IS NULL GROUP BY queue ORDER BY min(n)
    RETURNING id, subject, payload, msg_id
  )
  SELECT jsonb_agg(jsonb_build_object(
           'n', ch.n, 'key', ch.key, 'hash', ch.hash,
           'answer', CASE
             WHEN ch.refusal IS NOT NULL THEN ch.refusal
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

CREATE OR REPLACE FUNCTION synaps.restore_archived_story(p_story jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_run      jsonb := p_story->'run';
  v_run_id   uuid;
  v_tenant   text;
  v_thread   uuid;
  v_command  uuid;
  v_part     record;
  v_bad      text;
  v_map      jsonb;
  v_key      text;
  v_dropped  text;
BEGIN
  IF jsonb_typeof(p_story) <> 'object' OR jsonb_typeof(v_run) <> 'object' THEN
    RAISE EXCEPTION 'restore_archived_run: not an archived run' USING ERRCODE = '22023';
  END IF;
  v_run_id := (v_run->>'id')::uuid;
  v_tenant := v_run->>'tenant_id';
  v_thread := (v_run->>'thread_id')::uuid;
  v_command := (v_run->>'command_id')::uuid;
  IF v_run_id IS NULL OR v_tenant IS NULL OR v_thread IS NULL OR v_command IS NULL THEN
    RAISE EXCEPTION 'restore_archived_run: the run row lacks its id, tenant, thread or command'
      USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT 1 FROM synaps.runs WHERE id = v_run_id) THEN
    RETURN jsonb_build_object('restored', false, 'keyDropped', NULL, 'artifactsMapped', 0);
  END IF;
  IF coalesce(v_run->>'status', '') NOT IN ('succeeded', 'failed', 'cancelled') THEN
    RAISE EXCEPTION 'restore_archived_run: run % is not finished', v_run_id USING ERRCODE = '22023';
  END IF;
  SELECT CASE
    -- A run alone in its thread has no thread row (0045): its story says "thread": null.
    WHEN jsonb_typeof(p_story->'thread') NOT IN ('object', 'null')
         OR (jsonb_typeof(p_story->'thread') = 'object'
             AND ((p_story->'thread'->>'id')::uuid IS DISTINCT FROM v_thread
                  OR p_story->'thread'->>'tenant_id' IS DISTINCT FROM v_tenant))
      THEN 'the thread row is not the run''s thread of its tenant'
    WHEN EXISTS (SELECT 1 FROM synaps.threads WHERE id = v_thread AND tenant_id <> v_tenant)
         OR EXISTS (SELECT 1 FROM synaps.runs WHERE thread_id = v_thread AND tenant_id <> v_tenant)
      THEN 'the run''s thread belongs to another tenant'
    WHEN p_story ? 'command' AND (jsonb_typeof(p_story->'command') <> 'object'
         OR (p_story->'command'->>'id')::uuid IS DISTINCT FROM v_command
         OR p_story->'command'->>'tenant_id' IS DISTINCT FROM v_tenant
         OR (p_story->'command'->>'thread_id')::uuid IS DISTINCT FROM v_thread)
      THEN 'the command row is not the run''s command'
    WHEN EXISTS (SELECT 1 FROM synaps.commands WHERE id = v_command AND tenant_id <> v_tenant)
      THEN 'the run''s command belongs to another tenant'
    WHEN jsonb_typeof(p_story->'command') IS DISTINCT FROM 'object'
         AND NOT EXISTS (SELECT 1 FROM synaps.commands WHERE id = v_command)
      THEN 'the run''s command is neither in the archive nor in PostgreSQL'
    WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_story->'tasks', '[]')) t
                  WHERE (t->>'run_id')::uuid IS DISTINCT FROM v_run_id
                     OR t->>'tenant_id' IS DISTINCT FROM v_tenant)
      THEN 'a task row is not of this run and tenant'
    WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_story->'queueItems', '[]')) q
                  WHERE (q->>'run_id')::uuid IS DISTINCT FROM v_run_id
                     OR q->>'tenant_id' IS DISTINCT FROM v_tenant
                     OR coalesce(q->>'status', '') NOT IN ('dead', 'cancelled')
                     OR NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_story->'tasks') t
                                     WHERE t->>'id' = q->>'task_id'))
      THEN 'a queue item is not a dead or cancelled item of this run''s tasks'
    WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_story->'events', '[]')) e
                  WHERE (e->>'run_id')::uuid IS DISTINCT FROM v_run_id
                     OR (e->>'task_id' IS NOT NULL
                         AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_story->'tasks') t
                                          WHERE t->>'id' = e->>'task_id')))
      THEN 'a ledger event is not of this run and its tasks'
    WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_story->'artifacts', '[]')) a
                  WHERE (a->>'thread_id')::uuid IS DISTINCT FROM v_thread
                     OR a->>'tenant_id' IS DISTINCT FROM v_tenant
                     OR a->>'name' IS NULL
                     OR EXISTS (SELECT 1 FROM synaps.artifacts x
                                 WHERE x.id = (a->>'id')::uuid
                                   AND (x.tenant_id <> v_tenant OR x.thread_id <> v_thread
                                        OR x.name <> a->>'name')))
      THEN 'an artifact is not of the run''s thread and tenant'
    WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_story->'artifactVersions', '[]')) v
                  WHERE (v->>'run_id')::uuid IS DISTINCT FROM v_run_id
                     OR NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_story->'artifacts') a
                                     WHERE a->>'id' = v->>'artifact_id'))
      THEN 'an artifact version is not of this run and its artifacts'
  END INTO v_bad;
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'restore_archived_run: run %: %', v_run_id, v_bad USING ERRCODE = '22023';
  END IF;

  -- The command's idempotency key, if a command made since holds it: restored without it.
  v_key := p_story->'command'->>'idempotency_key';
  IF v_key IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM synaps.commands WHERE id = v_command)
     AND EXISTS (SELECT 1 FROM synaps.commands
                  WHERE tenant_id = v_tenant AND idempotency_key = v_key) THEN
    v_dropped := v_key;
    p_story := jsonb_set(p_story, '{command,idempotency_key}', 'null'::jsonb);
  END IF;

  -- Archived artifact id -> the id the thread has under that name now (when they differ).
  SELECT coalesce(jsonb_object_agg(a->>'id', x.id::text), '{}'::jsonb) INTO v_map
    FROM jsonb_array_elements(coalesce(p_story->'artifacts', '[]')) a
    JOIN synaps.artifacts x ON x.thread_id = v_thread AND x.name = a->>'name'
   WHERE x.id <> (a->>'id')::uuid;
  p_story := p_story || jsonb_build_object(
    -- Rows the thread has (by id or by name) stay as they are. One that comes back names an
    -- owner run that exists: its archived owner, or this run (its oldest version here).
    'artifacts', coalesce((
      SELECT jsonb_agg(CASE
               WHEN (a->>'run_id')::uuid = v_run_id
                    OR EXISTS (SELECT 1 FROM synaps.runs r WHERE r.id = (a->>'run_id')::uuid)
                 THEN a
               ELSE a || jsonb_build_object(
                      'run_id', v_run_id,
                      'task_id', (SELECT v->'task_id'
                                    FROM jsonb_array_elements(p_story->'artifactVersions') v
                                   WHERE v->>'artifact_id' = a->>'id'
                                   ORDER BY (v->>'version')::int LIMIT 1))
             END)
        FROM jsonb_array_elements(coalesce(p_story->'artifacts', '[]')) a
       WHERE NOT v_map ? (a->>'id')
         AND NOT EXISTS (SELECT 1 FROM synaps.artifacts x WHERE x.id = (a->>'id')::uuid)),
      '[]'::jsonb),
    'artifactVersions', coalesce((
      SELECT jsonb_agg(CASE WHEN v_map ? (v->>'artifact_id')
                            THEN jsonb_set(v, '{artifact_id}', v_map->(v->>'artifact_id'))
                            ELSE v END)
        FROM jsonb_array_elements(coalesce(p_story->'artifactVersions', '[]')) v), '[]'::jsonb),
    'events', coalesce((
      SELECT jsonb_agg(CASE WHEN e->>'type' = 'artifact.created'
                                 AND v_map ? (e->'data'->>'artifactId')
                            THEN jsonb_set(e, '{data,artifactId}', v_map->(e->'data'->>'artifactId'))
                            ELSE e END ORDER BY n)
        FROM jsonb_array_elements(coalesce(p_story->'events', '[]')) WITH ORDINALITY x(e, n)),
      '[]'::jsonb));

  -- A version number the thread's artifact holds already: written by a run since the archive.
  SELECT format('version %s of artifact %L exists already (written by run %s after this run '
                'expired), so the archived version cannot be put back under its number',
                av.version, x.name, av.run_id)
    INTO v_bad
    FROM jsonb_array_elements(p_story->'artifactVersions') v
    JOIN synaps.artifact_versions av
      ON av.artifact_id = (v->>'artifact_id')::uuid AND av.version = (v->>'version')::int
    JOIN synaps.artifacts x ON x.id = av.artifact_id
   ORDER BY av.version LIMIT 1;
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'restore_archived_run: run %: %', v_run_id, v_bad USING ERRCODE = '23505';
  END IF;

  FOR v_part IN SELECT * FROM (VALUES (1, 'thread', 'threads'), (2, 'command', 'commands'),
                                      (3, 'run', 'runs'), (4, 'tasks', 'tasks'),
                                      (5, 'queueItems', 'queue_items'),
                                      (6, 'artifacts', 'artifacts'),
                                      (7, 'artifactVersions', 'artifact_versions'),
                                      (8, 'events', 'ledger_events')) p(n, key, tbl) ORDER BY n
  LOOP
    IF jsonb_typeof(p_story->v_part.key) = 'object' THEN
      PERFORM synaps.restore_archived_rows(v_part.tbl, jsonb_build_array(p_story->v_part.key));
    ELSIF jsonb_typeof(p_story->v_part.key) = 'array' THEN
      PERFORM synaps.restore_archived_rows(v_part.tbl, p_story->v_part.key);
    END IF;
  END LOOP;
  -- Every artifact this run has versions of continues after the highest version now present.
  UPDATE synaps.artifacts a
     SET latest_version = v.top
    FROM (SELECT artifact_id, max(version) AS top FROM synaps.artifact_versions
           WHERE artifact_id IN (SELECT (x->>'artifact_id')::uuid
                                   FROM jsonb_array_elements(p_story->'artifactVersions') x)
           GROUP BY artifact_id) v
   WHERE a.id = v.artifact_id AND a.latest_version < v.top;
  RETURN jsonb_build_object('restored', true, 'keyDropped', v_dropped,
                            'artifactsMapped', (SELECT count(*) FROM jsonb_object_keys(v_map)));
END $$;
