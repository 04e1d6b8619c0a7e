-- Leaner intake (issue #13, the submit side): fewer writes per submitted command.
--
-- * submit_command inserts the command with its answer (no UPDATE of commands.response), the
--   run with its final last_seq (no append_event, which updated runs.last_seq once per event),
--   and its tasks, queue items and events with one INSERT each (0027's event order is kept: each
--   task's task.queued, then its task.waiting when it waits for the thread).
-- * submit_commands (a batch) writes one wakeup outbox row per queue instead of one per run: a
--   wakeup only tells workers to claim (docs/queue.md), and its runId was never read
--   (bus/messages.h: optional). The payload names the queue's first run and the number of runs.
-- * cancelNewest is enforced for batches too (synaps.submit_refusals): a refused item is
--   answered {error: concurrency_limit, key, limit, maxRunning, unfinished, runId} and nothing
--   of it is written; the others are.
-- * flow_admit_submit (a single submit's cancelNewest check) also names a run holding the key.
--
-- Functions only: no table changes, so a database written by an earlier release keeps
-- everything it has.

-- cancelNewest for a batch (docs/flow-control.md): the items of p_items (by their 1-based
-- place, as text keys) that their key's limit refuses. Keys are locked in key order
-- (synaps.flow_lock, held until commit, as a single submit's check holds it) and each key's
-- items decided in the batch's order as if submitted one after the other: an admitted item's
-- tasks that start ready count against the items after it. A replay (its idempotency key
-- already used) is not refused: it is answered as before.
CREATE FUNCTION synaps.submit_refusals(p_tenant text, p_items jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_out      jsonb := '{}'::jsonb;
  v_key      text;
  l          synaps.flow_limits;
  v_n        integer;
  v_run      uuid;
  v_admitted text[] := '{}';
  it         record;
BEGIN
  FOR v_key IN SELECT DISTINCT i->'command'->>'concurrencyKey'
                 FROM jsonb_array_elements(p_items) AS i
                WHERE i->'command'->>'concurrencyKey' IS NOT NULL ORDER BY 1 LOOP
    SELECT * INTO l FROM synaps.flow_limit(p_tenant, v_key);
    CONTINUE WHEN NOT FOUND OR l.strategy <> 'cancelNewest';
    PERFORM synaps.flow_lock(p_tenant, v_key);
    SELECT count(*) INTO v_n FROM synaps.queue_items q
     WHERE q.tenant_id = p_tenant AND q.concurrency_key = v_key
       AND q.status IN ('ready', 'leased', 'limited');
    -- The run to name: one that is running, else the oldest waiting one.
    SELECT q.run_id INTO v_run FROM synaps.queue_items q
     WHERE q.tenant_id = p_tenant AND q.concurrency_key = v_key
       AND q.status IN ('ready', 'leased', 'limited')
     ORDER BY (q.status = 'leased') DESC, q.id LIMIT 1;
    FOR it IN SELECT t.n, t.i->>'key' AS item_key,
                     (SELECT count(*) FROM jsonb_array_elements(t.i->'command'->'tasks') AS x
                       WHERE jsonb_array_length(coalesce(x->'dependsOn', '[]'::jsonb)) = 0) AS roots
                FROM jsonb_array_elements(p_items) WITH ORDINALITY AS t(i, n)
               WHERE t.i->'command'->>'concurrencyKey' = v_key ORDER BY t.n LOOP
      CONTINUE WHEN it.item_key IS NOT NULL AND (it.item_key = ANY (v_admitted) OR EXISTS (
        SELECT 1 FROM synaps.commands c
         WHERE c.tenant_id = p_tenant AND c.idempotency_key = it.item_key));
      IF v_n >= l.max_running THEN
        v_out := v_out || jsonb_build_object(it.n::text, jsonb_build_object(
          'error', 'concurrency_limit', 'key', v_key, 'limit', l.name,
          'maxRunning', l.max_running, 'unfinished', v_n, 'runId', v_run));
      ELSE
        v_n := v_n + it.roots;
        IF it.item_key IS NOT NULL THEN v_admitted := v_admitted || it.item_key; END IF;
      END IF;
    END LOOP;
  END LOOP;
  RETURN v_out;
END $$;

-- As in 0022, and the answer names a run holding the key (one running, else the oldest waiting).
CREATE OR REPLACE FUNCTION synaps.flow_admit_submit(p_tenant text, p_key text, p_run_id uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  l synaps.flow_limits;
  n integer;
  v_run uuid;
BEGIN
  SELECT * INTO l FROM synaps.flow_limit(p_tenant, p_key);
  IF NOT FOUND OR l.strategy <> 'cancelNewest' THEN RETURN NULL; END IF;
  PERFORM synaps.flow_lock(p_tenant, p_key);
  SELECT count(*) INTO n FROM synaps.queue_items q
   WHERE q.tenant_id = p_tenant AND q.concurrency_key = p_key AND q.run_id <> p_run_id
     AND q.status IN ('ready', 'leased', 'limited');
  IF n < l.max_running THEN RETURN NULL; END IF;
  SELECT q.run_id INTO v_run FROM synaps.queue_items q
   WHERE q.tenant_id = p_tenant AND q.concurrency_key = p_key AND q.run_id <> p_run_id
     AND q.status IN ('ready', 'leased', 'limited')
   ORDER BY (q.status = 'leased') DESC, q.id LIMIT 1;
  RETURN jsonb_build_object('limit', l.name, 'maxRunning', l.max_running, 'unfinished', n,
                            'runId', v_run);
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
  v_unfinished uuid[];
  v_holder     uuid;
  v_cancelled  uuid[] := '{}';
  v_task       jsonb;
  v_task_id    uuid;
  v_waiting    boolean;
  v_outbox     jsonb;
  v_response   jsonb;
  v_n_tasks    integer := jsonb_array_length(p_command->'tasks');
  v_n_parked   integer := 0;
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


-- The metadata search index (0020) held an entry for every command, most of which have no
-- metadata: now only those that do. GET /v1/runs?metadata= still uses it: its containment tests
-- are strict, so they imply the predicate (checked with EXPLAIN).
DROP INDEX synaps.commands_metadata;
CREATE INDEX commands_metadata ON synaps.commands USING gin ((payload->'metadata') jsonb_path_ops)
  WHERE (payload->'metadata') IS NOT NULL;
