-- Batch submits that share idempotency keys no longer deadlock (docs/api.md, "Batch submit").
-- synaps.submit_commands (0017) inserted the batch's commands in the order sent, so two batches
-- writing the same keys in different orders could each wait on a key the other had inserted
-- first, and PostgreSQL aborted one of them. The commands are now inserted in key order (keys
-- sorted, then the commands without a key); within one key the first sent still wins, so a
-- duplicate key inside a batch replays or conflicts with the first of them as before. Nothing
-- else changes. The current definition of every function is in db/schema.sql.
CREATE OR REPLACE FUNCTION synaps.submit_commands(p_tenant text, p_actor text, p_items jsonb)
RETURNS TABLE (item_n bigint, item_answer jsonb) LANGUAGE plpgsql AS $$
DECLARE
  v_now      timestamptz := now();
  v_written  jsonb;
BEGIN
  WITH items AS MATERIALIZED (
    SELECT t.n, t.i->>'key' AS key, t.i->>'hash' AS hash, t.i->'command' AS c,
           (t.i->'command'->>'threadId')::uuid AS given_thread,
           synaps.uuid_v7() AS command_id, synaps.uuid_v7() AS run_id,
           synaps.uuid_v7() AS new_thread,
           coalesce(t.i->'command'->>'queue', 'default') AS queue,
           coalesce((t.i->'command'->>'priority')::integer, 0) AS priority,
           greatest(v_now, coalesce((t.i->'command'->>'notBefore')::timestamptz, v_now)) AS available,
           coalesce((t.i->'command'->>'maxAttempts')::integer, 3) AS max_attempts
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
      FROM checked WHERE thread_ok ORDER BY key NULLS LAST, n
    ON CONFLICT ON CONSTRAINT commands_idempotency_key_uq DO NOTHING
    RETURNING id
  ),
  fresh AS MATERIALIZED (
    SELECT ch.* FROM checked ch JOIN cmd ON cmd.id = ch.command_id
  ),
  thr AS (
    INSERT INTO synaps.threads (id, tenant_id)
    SELECT new_thread, p_tenant FROM fresh WHERE given_thread IS NULL ORDER BY n
  ),
  run AS (
    INSERT INTO synaps.runs (id, command_id, thread_id, tenant_id, last_seq)
    SELECT run_id, command_id, thread_id, p_tenant, 1 + jsonb_array_length(c->'tasks')
      FROM fresh ORDER BY n
  ),
  task_src AS MATERIALIZED (
    SELECT f.n, tk.k, f.run_id, f.queue, f.priority, f.available, f.max_attempts, tk.t,
           synaps.uuid_v7() AS task_id,
           jsonb_array_length(coalesce(tk.t->'dependsOn', '[]'::jsonb)) > 0 AS waiting
      FROM fresh f, jsonb_array_elements(f.c->'tasks') WITH ORDINALITY AS tk(t, k)
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
                                    status, max_attempts)
    SELECT task_id, run_id, p_tenant, queue, priority, available,
           CASE WHEN waiting THEN 'waiting' ELSE 'ready' END, max_attempts
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
        FROM task_src s) e
     ORDER BY e.n, e.k
  ),
  ob AS (
    INSERT INTO synaps.outbox (subject, payload)
    SELECT 'synaps.wakeup.' || queue, jsonb_build_object('queue', queue, 'runId', run_id)
      FROM fresh ORDER BY n
    RETURNING id, subject, payload, msg_id
  )
  SELECT jsonb_agg(jsonb_build_object(
           'n', ch.n, 'key', ch.key, 'hash', ch.hash,
           'answer', CASE
             WHEN NOT ch.thread_ok THEN jsonb_build_object('error', 'thread_not_found')
             WHEN f.n IS NULL THEN NULL  -- the key was used before: read below
             ELSE jsonb_build_object('commandId', f.command_id, 'runId', f.run_id,
                                     'threadId', f.thread_id, 'status', 'queued',
                                     'outbox', jsonb_build_array(jsonb_build_object(
                                       'id', ob.id, 'subject', ob.subject,
                                       'payload', ob.payload, 'msgId', ob.msg_id)))
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
