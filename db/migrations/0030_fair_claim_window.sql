-- Fair sharing whose cost is bounded by the claim's batch, not by the number of tenants
-- (issue #15; docs/flow-control.md "What fair sharing costs"). Before this migration a fair
-- claim visited every group (tenant, fairness key) with work: with 1,000 tenants it ranked 1,000
-- groups, counted each one's leased items twice and looked up each one's weight, for a claim of
-- one item.
--
-- Contract of the fair claim (otherwise as 0021_fair_share.sql states it):
--   * A claim looks at a WINDOW of groups: per queue, the next 2 * p_limit + 16 groups that have
--     a claimable item (ready, or leased with an expired lease, and available now), in index
--     order (tenant, fairness key) from a rotating start, wrapping around at the end. When fewer
--     groups have claimable work, the window holds all of them, and the claim is exactly the
--     fair claim of 0021.
--   * Inside the window the weighted shares of 0021 decide: a tenant's next item is ranked by
--     (items it holds leased now + its rank) / its weight, the lowest shares first, ties by age.
--     What a tenant holds is counted over all its items (one grouped scan of
--     queue_items_running_idx for the window's tenants), not only over the window.
--   * The start rotates per database connection: after a claim, the start of that connection's
--     next window is the group after the last group of this window that the claim served.
--     So every group with claimable work is in some window of each connection within
--     (groups / groups served per claim) claims, and a group that lost on its share in one
--     window meets the same competition again when the start comes round. The start is a
--     session setting (synaps.flow_cursor, a JSON object per queue and tenant scope): no table,
--     no lock, no write-ahead log; a new connection starts at the first group.
--   * Weights: synaps.flow_weight() is not called at all while synaps.flow_weights is empty.

-- The groups of one queue with a claimable item, in index order, at most p_max: those after
-- (p_after_tenant, p_after_key), then from the first group again up to and including it (all of
-- them when p_after_tenant is NULL). Only p_tenant's groups when p_tenant is set. Each group
-- costs one probe of queue_items_fair_idx (a loose index scan) that steps over the group's
-- items not claimable now (leased, or available later).
CREATE FUNCTION synaps.flow_window(p_queue text, p_tenant text, p_after_tenant text,
                                   p_after_key text, p_max integer)
RETURNS TABLE (tenant_id text, fairness_key text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  v_found integer := 0;
BEGIN
  IF p_after_tenant IS NOT NULL THEN
    RETURN QUERY
      WITH RECURSIVE g AS (
        SELECT 1 AS n, f.tenant_id, f.fairness_key
          FROM (SELECT q.tenant_id, q.fairness_key FROM synaps.queue_items q
                 WHERE q.queue = p_queue AND q.status IN ('ready', 'leased')
                   AND q.available_at <= now()
                   AND (q.tenant_id, q.fairness_key) > (p_after_tenant, p_after_key)
                 ORDER BY q.tenant_id, q.fairness_key LIMIT 1) f
         WHERE p_tenant IS NULL OR f.tenant_id = p_tenant
        UNION ALL
        SELECT g.n + 1, x.tenant_id, x.fairness_key
          FROM g CROSS JOIN LATERAL (
            SELECT q.tenant_id, q.fairness_key FROM synaps.queue_items q
             WHERE q.queue = p_queue AND q.status IN ('ready', 'leased')
               AND q.available_at <= now()
               AND (q.tenant_id, q.fairness_key) > (g.tenant_id, g.fairness_key)
             ORDER BY q.tenant_id, q.fairness_key LIMIT 1) x
         WHERE g.n < p_max AND (p_tenant IS NULL OR x.tenant_id = p_tenant)
      )
      SELECT g.tenant_id, g.fairness_key FROM g;
    GET DIAGNOSTICS v_found = ROW_COUNT;
  END IF;
  IF v_found >= p_max THEN RETURN; END IF;

  -- Round again from the first group of the scope (tenant ids are never empty, so ('', '') is
  -- below every group), stopping at the groups the first pass has seen.
  RETURN QUERY
    WITH RECURSIVE g AS (
      SELECT 1 AS n, f.tenant_id, f.fairness_key
        FROM (SELECT q.tenant_id, q.fairness_key FROM synaps.queue_items q
               WHERE q.queue = p_queue AND q.status IN ('ready', 'leased')
                 AND q.available_at <= now()
                 AND (q.tenant_id, q.fairness_key) >= (coalesce(p_tenant, ''), '')
               ORDER BY q.tenant_id, q.fairness_key LIMIT 1) f
       WHERE (p_tenant IS NULL OR f.tenant_id = p_tenant)
         AND (p_after_tenant IS NULL OR (f.tenant_id, f.fairness_key) <= (p_after_tenant, p_after_key))
      UNION ALL
      SELECT g.n + 1, x.tenant_id, x.fairness_key
        FROM g CROSS JOIN LATERAL (
          SELECT q.tenant_id, q.fairness_key FROM synaps.queue_items q
           WHERE q.queue = p_queue AND q.status IN ('ready', 'leased')
             AND q.available_at <= now()
             AND (q.tenant_id, q.fairness_key) > (g.tenant_id, g.fairness_key)
           ORDER BY q.tenant_id, q.fairness_key LIMIT 1) x
       WHERE g.n < p_max - v_found AND (p_tenant IS NULL OR x.tenant_id = p_tenant)
         AND (p_after_tenant IS NULL OR (x.tenant_id, x.fairness_key) <= (p_after_tenant, p_after_key))
    )
    SELECT g.tenant_id, g.fairness_key FROM g;
END $$;

-- The fair windows of a claim: for each of p_queues, flow_window from this connection's start
-- (see the contract above), in window order.
CREATE FUNCTION synaps.flow_windows(p_queues text[], p_tenant text, p_max integer)
RETURNS TABLE (queue text, tenant_id text, fairness_key text)
LANGUAGE sql STABLE AS $$
  SELECT u.queue, w.tenant_id, w.fairness_key
    FROM unnest(p_queues) WITH ORDINALITY AS u(queue, n)
    LEFT JOIN LATERAL (
      SELECT nullif(current_setting('synaps.flow_cursor', true), '')::jsonb
               -> (u.queue || '/' || coalesce(p_tenant, '')) AS start) c ON true
   CROSS JOIN LATERAL synaps.flow_window(u.queue, p_tenant, c.start->>0, c.start->>1, p_max)
               WITH ORDINALITY AS w(tenant_id, fairness_key, pos)
   ORDER BY u.n, w.pos
$$;

-- Moves this connection's start for each queue past the last group of its window (in window
-- order) that the claim served; p_served_pos is the group's place in the claim's windows. The
-- session setting is transactional: a claim that rolls back leaves the start where it was.
CREATE FUNCTION synaps.flow_advance(p_tenant text, p_served_queue text[], p_served_tenant text[],
                                    p_served_key text[], p_served_pos bigint[])
RETURNS void
LANGUAGE sql AS $$
  SELECT set_config('synaps.flow_cursor',
           (coalesce(nullif(current_setting('synaps.flow_cursor', true), '')::jsonb, '{}'::jsonb)
              || coalesce(jsonb_object_agg(l.queue || '/' || coalesce(p_tenant, ''),
                                           jsonb_build_array(l.tenant_id, l.fairness_key)),
                          '{}'::jsonb))::text,
           false)
    FROM (SELECT DISTINCT ON (s.queue) s.queue, s.tenant_id, s.fairness_key
            FROM unnest(p_served_queue, p_served_tenant, p_served_key, p_served_pos)
                   AS s(queue, tenant_id, fairness_key, pos)
           ORDER BY s.queue, s.pos DESC) l
$$;

-- claim_queue_items as 0027_thread_turns left it, with the fair path looking at a window of
-- groups (above), one grouped count of what the window's tenants hold, no weight lookups while
-- no weight is set, and the connection's start moved after the claim.
CREATE OR REPLACE FUNCTION synaps.claim_queue_items(p_worker text, p_queues text[], p_limit integer,
                                                    p_lease_seconds integer, p_tenant text DEFAULT NULL,
                                                    p_fair boolean DEFAULT true)
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

-- The periodic sweep of concurrency keys (docs/flow-control.md): a `limited` item is made
-- ready by the release trigger of 0022 when a leased item of its key stops being leased, but
-- that trigger skips items another transaction holds locked at that moment (SKIP LOCKED), so a
-- key can be left with waiting items and a free slot that no later release will fill. This
-- makes ready, for every key with waiting items, as many of them as the key has room for now
-- (its maxRunning less its leased and ready items; every waiting item when no limit applies
-- any more), first by priority then age, skipping rows locked now (the next sweep gets them).
-- The claim checks the limit again, so a sweep racing a release costs at most one more
-- task.waiting event, never an extra running task. Returns how many items it made ready.
CREATE FUNCTION synaps.flow_sweep() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_ids bigint[];
BEGIN
  WITH keys AS (
    SELECT DISTINCT q.tenant_id, q.concurrency_key FROM synaps.queue_items q
     WHERE q.status = 'limited' AND q.concurrency_key IS NOT NULL
  ), room AS (
    SELECT k.tenant_id, k.concurrency_key,
           coalesce((SELECT l.max_running FROM synaps.flow_limit(k.tenant_id, k.concurrency_key) l),
                    2147483647)
             - (SELECT count(*) FROM synaps.queue_items q
                 WHERE q.tenant_id = k.tenant_id AND q.concurrency_key = k.concurrency_key
                   AND q.status IN ('ready', 'leased')) AS free
      FROM keys k
  )
  SELECT array_agg(w.id) INTO v_ids
    FROM room r CROSS JOIN LATERAL (
      SELECT q.id FROM synaps.queue_items q
       WHERE q.tenant_id = r.tenant_id AND q.concurrency_key = r.concurrency_key
         AND q.status = 'limited'
       ORDER BY q.priority DESC, q.available_at, q.id
       LIMIT greatest(r.free, 0)
       FOR UPDATE SKIP LOCKED) w;
  UPDATE synaps.queue_items q SET status = 'ready' WHERE q.id = ANY (v_ids) AND q.status = 'limited';
  RETURN coalesce(cardinality(v_ids), 0);
END $$;
