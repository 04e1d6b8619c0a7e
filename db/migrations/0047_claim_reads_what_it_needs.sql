-- A claim skips the lookups a task without dependencies or earlier turns does not need (issue
-- #13 and #18: the claim's cost, and its growth with the history).
--
-- Every claimed item ran two lookups into the history's largest indexes whatever the task:
-- its upstream outputs (`tasks` by run and name) and its thread's earlier turns
-- (synaps.thread_history: `runs` by thread and thread_seq, a SQL function planned on every
-- call). A task that depends on nothing has no upstream outputs, and the first turn of a thread
-- (thread_seq 1, every run submitted without a threadId) has no earlier turns: both are now
-- answered without reading anything. The result is the same: '{}' and '[]'.

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
  v_weighted boolean;
BEGIN
  IF p_fair THEN
    -- The window: a bounded number of groups with claimable work (the contract above).
    SELECT array_agg(w.queue ORDER BY w.pos), array_agg(w.tenant_id ORDER BY w.pos),
           array_agg(w.fairness_key ORDER BY w.pos)
      INTO v_gq, v_gt, v_gk
      FROM synaps.flow_windows(p_queues, p_tenant, 2 * p_limit + 16) WITH ORDINALITY
             AS w(queue, tenant_id, fairness_key, pos);
  END IF;

  IF coalesce(cardinality(v_gq), 0) > 1 THEN
    -- Fair order (the contract at the top of this file). Each group offers its first k
    -- claimable items: its part of p_limit + 16 (the extra ones stand in for rows a concurrent
    -- claim has locked), at least 2; a group that deserves more gets it from the next claims.
    -- Then every candidate gets its rank inside its tenant and the tenant's share.
    v_weighted := EXISTS (SELECT 1 FROM synaps.flow_weights);
    WITH cand AS (
      SELECT gr.tenant_id, gr.fairness_key, gr.pos, c.id, c.priority, c.available_at,
             row_number() OVER (PARTITION BY gr.tenant_id, gr.fairness_key
                                ORDER BY c.priority DESC, c.available_at, c.id) AS i
        FROM unnest(v_gq, v_gt, v_gk) WITH ORDINALITY AS gr(queue, tenant_id, fairness_key, pos)
       CROSS JOIN LATERAL (
         SELECT q.id, q.priority, q.available_at FROM synaps.queue_items q
          WHERE q.queue = gr.queue AND q.tenant_id = gr.tenant_id AND q.fairness_key = gr.fairness_key
            AND q.status IN ('ready', 'leased') AND q.available_at <= now()
          ORDER BY q.priority DESC, q.available_at, q.id
          LIMIT greatest(2, ceil((p_limit + 16)::numeric / cardinality(v_gq)))) c
    ), held AS MATERIALIZED (
      -- What the window's tenants hold now, all their groups: one scan of the leased items.
      SELECT q.tenant_id, q.fairness_key, count(*) AS n FROM synaps.queue_items q
       WHERE q.queue = ANY (p_queues) AND q.status = 'leased'
         AND q.tenant_id = ANY (ARRAY(SELECT DISTINCT unnest(v_gt)))
       GROUP BY q.tenant_id, q.fairness_key
    ), keys AS (
      SELECT k.tenant_id, k.fairness_key,
             coalesce((SELECT h.n FROM held h WHERE h.tenant_id = k.tenant_id
                                                AND h.fairness_key = k.fairness_key), 0) AS running,
             CASE WHEN k.fairness_key = '' OR NOT v_weighted THEN 1
                  ELSE synaps.flow_weight(k.tenant_id, k.fairness_key) END AS weight
        FROM (SELECT DISTINCT cand.tenant_id, cand.fairness_key FROM cand) k
    ), tenants AS (
      SELECT t.tenant_id,
             coalesce((SELECT sum(h.n) FROM held h WHERE h.tenant_id = t.tenant_id), 0) AS running,
             CASE WHEN v_weighted THEN synaps.flow_weight(t.tenant_id, NULL) ELSE 1 END AS weight
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
    -- The next window of this connection starts after the last group this claim served.
    PERFORM synaps.flow_advance(p_tenant, array_agg(gr.queue), array_agg(gr.tenant_id),
                                array_agg(gr.fairness_key), array_agg(gr.pos))
       FROM unnest(v_gq, v_gt, v_gk) WITH ORDINALITY AS gr(queue, tenant_id, fairness_key, pos)
       JOIN (SELECT DISTINCT q.queue, q.tenant_id, q.fairness_key FROM synaps.queue_items q
              WHERE q.id = ANY (v_pick)) s
         ON s.queue = gr.queue AND s.tenant_id = gr.tenant_id AND s.fairness_key = gr.fairness_key;
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
           -- Outputs of the tasks this one depends on, by name ('{}' without reading when it
           -- depends on none).
           CASE WHEN cardinality(t.depends_on) > 0 THEN
             (SELECT coalesce(jsonb_object_agg(d.name, d.output), '{}'::jsonb)
                FROM synaps.tasks d WHERE d.run_id = t.run_id AND d.name = ANY (t.depends_on))
           ELSE '{}'::jsonb END,
           -- Earlier turns of the thread, oldest first (synaps.thread_history), so a command
           -- on an existing thread continues the conversation ('[]' without reading for a
           -- thread's first turn).
           CASE WHEN u.thread_seq > 1 THEN synaps.thread_history(u.thread_id, u.thread_seq)
                ELSE '[]'::jsonb END,
           v_version
      FROM unnest(v_ids) WITH ORDINALITY AS x(id, ord)
      JOIN synaps.queue_items q ON q.id = x.id
      JOIN synaps.tasks t ON t.id = q.task_id
      JOIN synaps.runs u ON u.id = t.run_id
     ORDER BY x.ord;
END $$;
