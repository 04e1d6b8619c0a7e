-- Flow control, part two (docs/flow-control.md): concurrency keys. A submit's concurrencyKey
-- counts against the `concurrency` control item with a maxRunning that matches it (the most
-- specific: one naming the tenant first, then one naming a key pattern, then by name); a key no
-- such item matches is unlimited. Keys are per tenant: tenants never share a limit.
--
-- Contract, enforced inside synaps.claim_queue_items (never in a worker's memory):
--   * At most maxRunning items of one (tenant, key) are `leased` at once, across every worker.
--     A claim that picked items of a limited key takes that key's transaction-scoped advisory
--     lock (claims lock their keys in one order: no deadlock between claims), counts the key's
--     leased items in a fresh snapshot, and admits only what fits.
--   * queue: the picked items that do not fit, and every other ready item of the key, become
--     `limited` (out of the claim's index: they cost later claims nothing) with one
--     `task.waiting` ledger event each, data {reason: "limit", key, maxRunning, limit: <item>}.
--     Whenever a leased item of the key stops being leased (completed, failed, held, cancelled,
--     released), a trigger makes the key's first limited item ready again (priority, then age).
--     Writing any `concurrency` item makes every limited item ready (the next claims re-check).
--   * cancelInProgress: the newest picked items of the key are admitted (up to maxRunning); the
--     older picked ones, and the oldest running ones beyond maxRunning, have their runs
--     cancelled (actor `concurrency:<item>`).
--   * cancelNewest: enforced at submit (synaps.flow_admit_submit, below): a command whose key
--     already has maxRunning unfinished tasks is refused; the claim still never exceeds the
--     limit (it treats the key as `queue`).

ALTER TABLE synaps.queue_items DROP CONSTRAINT queue_items_status_check;
ALTER TABLE synaps.queue_items ADD CONSTRAINT queue_items_status_check
  CHECK (status IN ('waiting', 'ready', 'leased', 'held', 'cancelled', 'dead', 'limited'));

-- Only items that carry a key are in these (the partial predicates): no cost for the others.
CREATE INDEX queue_items_key_running_idx ON synaps.queue_items (tenant_id, concurrency_key)
  WHERE status = 'leased' AND concurrency_key IS NOT NULL;
CREATE INDEX queue_items_key_queued_idx ON synaps.queue_items
  (tenant_id, concurrency_key, priority DESC, available_at, id)
  WHERE status IN ('ready', 'limited') AND concurrency_key IS NOT NULL;

-- Concurrency limits in effect, one row per `concurrency` control item with a maxRunning
-- (key_like as flow_weights.fairness_like). Rebuilt with flow_weights by flow_refresh().
CREATE TABLE synaps.flow_limits (
  name         text PRIMARY KEY,
  tenant       text,
  key_like     text,
  max_running  integer NOT NULL CHECK (max_running >= 1),
  strategy     text NOT NULL CHECK (strategy IN ('queue', 'cancelInProgress', 'cancelNewest'))
);

CREATE OR REPLACE FUNCTION synaps.flow_refresh() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- control_write serializes writers with an advisory lock, so a full rebuild is consistent.
  DELETE FROM synaps.flow_weights;
  DELETE FROM synaps.flow_limits;
  WITH items AS (
    SELECT i.name, i.spec
      FROM (SELECT DISTINCT ON (c.name) c.name, c.deleted, c.spec
              FROM synaps.control_items c WHERE c.kind = 'concurrency'
             ORDER BY c.name, c.version DESC) i
     WHERE NOT i.deleted
  ), w AS (
    INSERT INTO synaps.flow_weights (name, tenant, fairness_like, weight)
    SELECT items.name, items.spec #>> '{match,tenant}',
           synaps.flow_like(items.spec #>> '{match,fairnessKey}'), (items.spec->>'weight')::integer
      FROM items WHERE items.spec ? 'weight'
  )
  INSERT INTO synaps.flow_limits (name, tenant, key_like, max_running, strategy)
  SELECT items.name, items.spec #>> '{match,tenant}', synaps.flow_like(items.spec #>> '{match,key}'),
         (items.spec->>'maxRunning')::integer, coalesce(items.spec->>'strategy', 'queue')
    FROM items WHERE items.spec ? 'maxRunning';
  -- A changed or removed limit: every waiting item gets another look from the next claims.
  UPDATE synaps.queue_items SET status = 'ready' WHERE status = 'limited';
  RETURN NULL;
END $$;

-- The limit of a tenant's key: the most specific matching item (tenant named, then key
-- pattern named), ties by name; no row when the key is unlimited.
CREATE FUNCTION synaps.flow_limit(p_tenant text, p_key text) RETURNS SETOF synaps.flow_limits
LANGUAGE sql STABLE AS $$
  SELECT l.* FROM synaps.flow_limits l
   WHERE (l.tenant IS NULL OR l.tenant = p_tenant) AND (l.key_like IS NULL OR p_key LIKE l.key_like)
   ORDER BY (l.tenant IS NOT NULL) DESC, (l.key_like IS NOT NULL) DESC, l.name
   LIMIT 1
$$;

-- One advisory lock key per (tenant, concurrency key), shared by claims and submits.
CREATE FUNCTION synaps.flow_lock(p_tenant text, p_key text) RETURNS void
LANGUAGE sql AS $$
  SELECT pg_advisory_xact_lock(hashtextextended('synaps.flow:' || p_tenant || '/' || p_key, 0))
$$;

-- Of the items a claim picked and locked (p_ids, in claim order), those it may lease, in the
-- same order; the others become `limited` or have their runs cancelled (the contract above).
CREATE FUNCTION synaps.flow_admit(p_ids bigint[]) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
  r          record;
  v_keyed    bigint[];
  v_running  integer;
  v_admit    bigint[];
  v_drop     bigint[] := '{}';
  v_limited  bigint[] := '{}';
  v_excess   integer;
  v_run      uuid;
BEGIN
  FOR r IN
    SELECT k.tenant_id, k.concurrency_key, l.name, l.max_running, l.strategy, k.ids
      FROM (SELECT q.tenant_id, q.concurrency_key,
                   array_agg(q.id ORDER BY array_position(p_ids, q.id)) AS ids
              FROM synaps.queue_items q
             WHERE q.id = ANY (p_ids) AND q.concurrency_key IS NOT NULL
             GROUP BY q.tenant_id, q.concurrency_key) k
     CROSS JOIN LATERAL synaps.flow_limit(k.tenant_id, k.concurrency_key) l
     ORDER BY k.tenant_id, k.concurrency_key
  LOOP
    PERFORM synaps.flow_lock(r.tenant_id, r.concurrency_key);
    -- A fresh snapshot (this is a new statement, after the lock): every claim of this key that
    -- committed before is counted. The picked items themselves (an expired lease among them)
    -- are not.
    SELECT count(*) INTO v_running FROM synaps.queue_items q
     WHERE q.tenant_id = r.tenant_id AND q.concurrency_key = r.concurrency_key
       AND q.status = 'leased' AND q.id <> ALL (p_ids);

    IF r.strategy = 'cancelInProgress' THEN
      -- The newest picked items (the highest ids) stay; older picked ones and the oldest
      -- running ones beyond the limit give way, their runs cancelled.
      SELECT array_agg(x.id) INTO v_admit
        FROM (SELECT u.id FROM unnest(r.ids) AS u(id) ORDER BY u.id DESC LIMIT r.max_running) x;
      v_drop := v_drop || ARRAY(SELECT u.id FROM unnest(r.ids) AS u(id) WHERE u.id <> ALL (v_admit));
      v_excess := v_running + cardinality(v_admit) - r.max_running;
      FOR v_run IN
        SELECT q.run_id FROM synaps.queue_items q WHERE q.id = ANY (r.ids) AND q.id <> ALL (v_admit)
        UNION
        SELECT o.run_id FROM (
          SELECT q.run_id FROM synaps.queue_items q
           WHERE q.tenant_id = r.tenant_id AND q.concurrency_key = r.concurrency_key
             AND q.status = 'leased' AND q.id <> ALL (p_ids)
           ORDER BY q.id LIMIT greatest(v_excess, 0)) o
      LOOP
        PERFORM synaps.cancel_run(r.tenant_id, v_run, 'concurrency:' || r.name);
      END LOOP;
    ELSE
      SELECT array_agg(u.id ORDER BY u.ord) INTO v_admit
        FROM unnest(r.ids) WITH ORDINALITY AS u(id, ord)
       WHERE u.ord <= greatest(r.max_running - v_running, 0);
      v_admit := coalesce(v_admit, '{}');
      v_drop := v_drop || ARRAY(SELECT u.id FROM unnest(r.ids) AS u(id) WHERE u.id <> ALL (v_admit));
      IF v_running + cardinality(v_admit) >= r.max_running THEN
        -- Full: the key's other ready items wait too (rows another claim holds are its own).
        v_limited := v_limited
          || ARRAY(SELECT u.id FROM unnest(r.ids) AS u(id) WHERE u.id <> ALL (v_admit))
          || ARRAY(SELECT q.id FROM synaps.queue_items q
                    WHERE q.tenant_id = r.tenant_id AND q.concurrency_key = r.concurrency_key
                      AND q.status = 'ready' AND q.id <> ALL (r.ids)
                    FOR UPDATE SKIP LOCKED);
      ELSE
        -- Room left: items that wait on this key (a missed release) get it.
        UPDATE synaps.queue_items SET status = 'ready'
         WHERE id IN (SELECT q.id FROM synaps.queue_items q
                       WHERE q.tenant_id = r.tenant_id AND q.concurrency_key = r.concurrency_key
                         AND q.status = 'limited'
                       ORDER BY q.priority DESC, q.available_at, q.id
                       LIMIT r.max_running - v_running - cardinality(v_admit)
                       FOR UPDATE SKIP LOCKED);
      END IF;
    END IF;
  END LOOP;

  IF cardinality(v_limited) > 0 THEN
    WITH held AS (
      UPDATE synaps.queue_items q SET status = 'limited'
       WHERE q.id = ANY (v_limited) AND q.status = 'ready'
      RETURNING q.id, q.run_id, q.task_id, q.tenant_id, q.concurrency_key
    ), per_run AS (
      SELECT h.run_id, count(*) AS n FROM held h GROUP BY h.run_id
    ), seqs AS (
      UPDATE synaps.runs u SET last_seq = u.last_seq + per_run.n
        FROM per_run WHERE u.id = per_run.run_id
      RETURNING u.id, u.last_seq - per_run.n AS base
    )
    INSERT INTO synaps.ledger_events (run_id, task_id, seq, type, attempt, data)
    SELECT h.run_id, h.task_id, seqs.base + row_number() OVER (PARTITION BY h.run_id ORDER BY h.id),
           'task.waiting', NULL,
           jsonb_build_object('reason', 'limit', 'key', h.concurrency_key,
                              'maxRunning', l.max_running, 'limit', l.name)
      FROM held h JOIN seqs ON seqs.id = h.run_id
     CROSS JOIN LATERAL synaps.flow_limit(h.tenant_id, h.concurrency_key) l;
  END IF;
  RETURN ARRAY(SELECT u.id FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord)
                WHERE u.id <> ALL (v_drop) ORDER BY u.ord);
END $$;

-- A leased item of a limited key stopped being leased: the key's first waiting item is ready.
CREATE FUNCTION synaps.flow_release() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE synaps.queue_items SET status = 'ready'
   WHERE id = (SELECT q.id FROM synaps.queue_items q
                WHERE q.tenant_id = OLD.tenant_id AND q.concurrency_key = OLD.concurrency_key
                  AND q.status = 'limited'
                ORDER BY q.priority DESC, q.available_at, q.id
                LIMIT 1 FOR UPDATE SKIP LOCKED);
  RETURN NULL;
END $$;

CREATE TRIGGER queue_items_flow_release_deleted AFTER DELETE ON synaps.queue_items
  FOR EACH ROW WHEN (OLD.concurrency_key IS NOT NULL AND OLD.status = 'leased')
  EXECUTE FUNCTION synaps.flow_release();
CREATE TRIGGER queue_items_flow_release_updated AFTER UPDATE OF status ON synaps.queue_items
  FOR EACH ROW WHEN (OLD.concurrency_key IS NOT NULL AND OLD.status = 'leased' AND NEW.status <> 'leased')
  EXECUTE FUNCTION synaps.flow_release();

-- cancelNewest, checked in the submit's transaction after the command is written (p_run_id):
-- NULL when the command may stay, else why not ({limit, maxRunning, unfinished}). Holds the
-- key's lock until commit, so concurrent submits of one key are decided one after the other.
CREATE FUNCTION synaps.flow_admit_submit(p_tenant text, p_key text, p_run_id uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  l synaps.flow_limits;
  n integer;
BEGIN
  SELECT * INTO l FROM synaps.flow_limit(p_tenant, p_key);
  IF NOT FOUND OR l.strategy <> 'cancelNewest' THEN RETURN NULL; END IF;
  PERFORM synaps.flow_lock(p_tenant, p_key);
  SELECT count(*) INTO n FROM synaps.queue_items q
   WHERE q.tenant_id = p_tenant AND q.concurrency_key = p_key AND q.run_id <> p_run_id
     AND q.status IN ('ready', 'leased', 'limited');
  IF n < l.max_running THEN RETURN NULL; END IF;
  RETURN jsonb_build_object('limit', l.name, 'maxRunning', l.max_running, 'unfinished', n);
END $$;

-- The claim of 0021 with the limits between picking and leasing: the pick and the lease are
-- two statements now (the picked rows stay locked in between).
CREATE OR REPLACE FUNCTION synaps.claim_queue_items(p_worker text, p_queues text[], p_limit integer, p_lease_seconds integer,
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
