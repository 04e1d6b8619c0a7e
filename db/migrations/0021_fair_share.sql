-- Flow control, part one (docs/flow-control.md): fair sharing of the free slots between tenants,
-- and between the fairness keys of a tenant, decided inside synaps.claim_queue_items.
--
-- Contract of the claim (fair mode, the default):
--   * Candidates are grouped by (tenant, fairnessKey); an item's group is fixed at submit.
--   * Between tenants, slots go by weighted share: a tenant's next item is ranked by
--     (items it holds leased now + its rank among its candidates) / its weight, and the claim
--     takes the lowest ranks first. Priority does NOT cross tenants: a tenant cannot buy other
--     tenants' slots with a higher priority.
--   * Inside a tenant: priority first, then the fairness keys by the same weighted share, then
--     age. Without fairness keys and with a single tenant this is the old order exactly.
--   * Weights come from control items of the new kind `concurrency` with a `weight`
--     (`{match: {tenant?, fairnessKey?}, weight}`; default 1), materialized into
--     synaps.flow_weights by a trigger whenever such an item is written.
--   * p_fair = false: the old order, priority then age across all tenants (an operator switch,
--     SYNAPS_FAIR_SHARE=off, and the benchmark's baseline).
-- The state is the queue itself (no counters): what a group holds is the count of its leased
-- items, read through queue_items_running_idx; the groups with ready work are found by a loose
-- index scan of queue_items_fair_idx (one probe per group). A claim that finds a single group
-- takes the old single-scan path.

-- The registry's seventh kind.
ALTER TABLE synaps.control_items DROP CONSTRAINT control_items_kind_check;
ALTER TABLE synaps.control_items ADD CONSTRAINT control_items_kind_check
  CHECK (kind IN ('prompts', 'skills', 'tools', 'routes', 'arbiters', 'schedules', 'concurrency'));

-- The submit's fairnessKey ('' when none) and concurrencyKey (NULL when none), validated by the
-- API ([A-Za-z0-9_.:/@-]{1,128}). concurrency_key is stored here; its limits come with the next
-- migration.
ALTER TABLE synaps.queue_items ADD COLUMN fairness_key text NOT NULL DEFAULT '';
ALTER TABLE synaps.queue_items ADD COLUMN concurrency_key text;

CREATE INDEX queue_items_fair_idx ON synaps.queue_items
  (queue, tenant_id, fairness_key, priority DESC, available_at, id)
  WHERE status IN ('ready', 'leased');
CREATE INDEX queue_items_running_idx ON synaps.queue_items (queue, tenant_id, fairness_key)
  WHERE status = 'leased';

-- Fair-share weights in effect, one row per `concurrency` control item that has a weight.
-- A LIKE pattern: the item's match with a trailing '*' turned into '%' (other characters
-- escaped); NULL matches anything. Rebuilt by the trigger below; never written otherwise.
CREATE TABLE synaps.flow_weights (
  name          text PRIMARY KEY,
  tenant        text,
  fairness_like text,
  weight        integer NOT NULL CHECK (weight BETWEEN 1 AND 1000)
);

-- '*' at the end of a match value means "any suffix"; everything else is literal.
CREATE FUNCTION synaps.flow_like(p_pattern text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_pattern IS NULL OR p_pattern = '*' THEN NULL
              WHEN right(p_pattern, 1) = '*'
                THEN replace(replace(replace(left(p_pattern, -1), '\', '\\'), '%', '\%'), '_', '\_') || '%'
              ELSE replace(replace(replace(p_pattern, '\', '\\'), '%', '\%'), '_', '\_') END
$$;

CREATE FUNCTION synaps.flow_refresh() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- control_write serializes writers with an advisory lock, so a full rebuild is consistent.
  DELETE FROM synaps.flow_weights;
  INSERT INTO synaps.flow_weights (name, tenant, fairness_like, weight)
  SELECT i.name, i.spec #>> '{match,tenant}', synaps.flow_like(i.spec #>> '{match,fairnessKey}'),
         (i.spec->>'weight')::integer
    FROM (SELECT DISTINCT ON (c.name) c.name, c.deleted, c.spec
            FROM synaps.control_items c WHERE c.kind = 'concurrency'
           ORDER BY c.name, c.version DESC) i
   WHERE NOT i.deleted AND i.spec ? 'weight';
  RETURN NULL;
END $$;

CREATE TRIGGER control_items_flow_refresh AFTER INSERT ON synaps.control_items
  FOR EACH ROW WHEN (NEW.kind = 'concurrency') EXECUTE FUNCTION synaps.flow_refresh();

-- The weight of a tenant (p_key NULL) or of one of its fairness keys: the most specific
-- matching item (tenant and key, then tenant, then key), ties by name; 1 when none matches.
CREATE FUNCTION synaps.flow_weight(p_tenant text, p_key text) RETURNS integer
LANGUAGE sql STABLE AS $$
  SELECT coalesce((
    SELECT w.weight FROM synaps.flow_weights w
     WHERE (w.tenant IS NULL OR w.tenant = p_tenant)
       AND CASE WHEN p_key IS NULL THEN w.fairness_like IS NULL
                ELSE w.fairness_like IS NOT NULL AND p_key LIKE w.fairness_like END
     ORDER BY (w.tenant IS NOT NULL) DESC, w.name
     LIMIT 1), 1)
$$;

DROP FUNCTION synaps.claim_queue_items(text, text[], integer, integer, text);

CREATE FUNCTION synaps.claim_queue_items(p_worker text, p_queues text[], p_limit integer, p_lease_seconds integer,
                                         p_tenant text DEFAULT NULL, p_fair boolean DEFAULT true)
RETURNS TABLE (item_id bigint, lease_epoch bigint, attempt integer, task_id uuid, run_id uuid, tenant_id text,
               thread_id uuid, task_name text, task_kind text, spec jsonb, lease_expires_at timestamptz,
               upstream jsonb, history jsonb, snapshot_version bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_ids      bigint[];
  v_expired  bigint[];
  v_item     bigint;
  v_version  bigint;
  v_gq       text[];
  v_gt       text[];
  v_gk       text[];
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

    WITH picked AS (
      SELECT q.id, o.ord FROM synaps.queue_items q
        JOIN unnest(v_ids) WITH ORDINALITY AS o(id, ord) ON o.id = q.id
       WHERE q.status IN ('ready', 'leased') AND q.available_at <= now()
       ORDER BY o.ord
       LIMIT p_limit
       FOR UPDATE OF q SKIP LOCKED
    ), claimed AS (
      UPDATE synaps.queue_items q
         SET status = 'leased', lease_owner = p_worker, lease_epoch = q.lease_epoch + 1,
             attempts = q.attempts + 1,
             lease_expires_at = now() + make_interval(secs => p_lease_seconds),
             available_at = now() + make_interval(secs => p_lease_seconds)
        FROM picked
       WHERE q.id = picked.id
      RETURNING q.id, q.attempts, q.max_attempts, picked.ord
    )
    SELECT array_agg(c.id ORDER BY c.ord) FILTER (WHERE c.attempts <= c.max_attempts),
           array_agg(c.id) FILTER (WHERE c.attempts > c.max_attempts)
      INTO v_ids, v_expired
      FROM claimed c;
  ELSE
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
  END IF;

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

-- Submit stores the fairness and concurrency keys on the queue items (the functions of 0017 and
-- 0019, plus the two columns).

CREATE OR REPLACE FUNCTION synaps.submit_command(p_tenant text, p_actor text, p_idempotency_key text, p_request_hash text, p_command jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_command_id uuid := synaps.uuid_v7();
  v_run_id     uuid := synaps.uuid_v7();
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
    v_thread_id := synaps.uuid_v7();
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
    v_task_id := synaps.uuid_v7();
    v_waiting := jsonb_array_length(coalesce(v_task->'dependsOn', '[]'::jsonb)) > 0;
    INSERT INTO synaps.tasks (id, run_id, tenant_id, name, kind, spec, status, max_attempts, depends_on)
    VALUES (v_task_id, v_run_id, p_tenant, v_task->>'name', v_task->>'kind', v_task->'spec',
            CASE WHEN v_waiting THEN 'waiting' ELSE 'queued' END, v_max,
            ARRAY(SELECT jsonb_array_elements_text(coalesce(v_task->'dependsOn', '[]'::jsonb))));
    INSERT INTO synaps.queue_items (task_id, run_id, tenant_id, queue, priority, available_at, status, max_attempts,
                                    fairness_key, concurrency_key)
    VALUES (v_task_id, v_run_id, p_tenant, v_queue, v_priority, v_available,
            CASE WHEN v_waiting THEN 'waiting' ELSE 'ready' END, v_max,
            coalesce(p_command->>'fairnessKey', ''), p_command->>'concurrencyKey');
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

CREATE OR REPLACE FUNCTION synaps.submit_commands(p_tenant text, p_actor text, p_items jsonb) RETURNS TABLE(item_n bigint, item_answer jsonb)
    LANGUAGE plpgsql
    AS $$
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
           f.fairness_key, f.concurrency_key,
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
                                    status, max_attempts, fairness_key, concurrency_key)
    SELECT task_id, run_id, p_tenant, queue, priority, available,
           CASE WHEN waiting THEN 'waiting' ELSE 'ready' END, max_attempts, fairness_key,
           concurrency_key
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
