-- Shared rate limits: a parked task holds no slot, slots follow the fair claim, and a route
-- change resets its limiter (issue #15, review 8; docs/flow-control.md).
--
-- Before, rate_acquire (0028, 0034) reserved a parked task's slot up to 30 s ahead, in the
-- order tasks asked: one tenant's burst took every slot of the next 30 s before another tenant
-- asked. It also held the route's row lock while it parked the task (item, task, run, ledger),
-- so every worker's ask on the route queued behind one park waiting for a run lock (and, with
-- cancel_run locking run before item until 0036, deadlocked: 40P01 cost an attempt); and the
-- slot it kept for the task (rate_slot) was spent by the next call whatever its route.
--
-- Now a worker asks in two statements, each its own transaction:
--   rate_reserve  locks only the route's row (and the asking tenant's wait row): a slot within
--                 the worker's hold (SYNAPS_RATE_LIMIT_HOLD_MS) is reserved and waited for in
--                 place; a later one is NOT reserved, and the task is told when to come back.
--   rate_park     sends the task back to the queue until then (item, then run: the lock order
--                 of docs/queue.md), without touching the route's row.
-- Only tasks about to call hold slots, so the route is never booked more than the hold plus
-- one interval ahead. Parked tasks come back when a slot is near, and the fair claim
-- (claim_queue_items) decides which of the tasks back at that moment is claimed, and so asks,
-- first. When they come back is paced per tenant (rate_waits): a tenant's parked tasks are
-- spread one interval apart from the route's next slot, so each tenant has about one task
-- asking per slot, however many it queued — a tenant with one task competes with one task of
-- the tenant with ten thousand, not with all of them. A task that asks too late parks again
-- at the end of its tenant's line.
--
-- rate_slot is no longer a reservation: it says until when a ready item waits for route
-- rate_route (the Flow page's count). A change of a route's control item (PUT, rollback,
-- delete) deletes its limiter state (rate_limits: blocked_until, request_tat, token_tat; and
-- rate_waits) and sends its waiting tasks back to the claim at once, to ask under the new
-- limits (or call, when the route has none).
--
-- rate_acquire stays for workers of the previous version during a rolling upgrade.

ALTER TABLE synaps.queue_items ADD COLUMN rate_route text;
CREATE INDEX queue_items_rate_route ON synaps.queue_items (rate_route)
 WHERE rate_route IS NOT NULL;

-- Items parked by rate_acquire with a reserved slot: they now ask again when claimed.
UPDATE synaps.queue_items SET rate_slot = NULL WHERE rate_slot IS NOT NULL;

-- When a tenant's next parked task on a route comes back (the pace described above).
CREATE TABLE synaps.rate_waits (
    route     text NOT NULL,
    tenant_id text NOT NULL,
    next_at   timestamptz NOT NULL,
    PRIMARY KEY (route, tenant_id)
);

-- One model call on route p_route (p_rpm, p_tpm: its limits, 0 = none; p_tokens: the call's
-- estimated tokens) of tenant p_tenant. A slot at most p_hold_ms away, or any slot when
-- p_may_park is false, is reserved: reserved = true and wait_ms until it. Otherwise nothing is
-- reserved: reserved = false, wait_ms until the route's next slot, and park_until the time the
-- task should come back (its tenant's place in the line). p_item: the asking task's queue item,
-- whose mark of a past park is cleared (before the route's row is locked).
CREATE FUNCTION synaps.rate_reserve(p_route text, p_rpm integer, p_tpm integer, p_tokens bigint,
                                    p_tenant text, p_item bigint, p_hold_ms integer,
                                    p_may_park boolean)
RETURNS TABLE(wait_ms bigint, reserved boolean, park_until timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  v_now  timestamptz := clock_timestamp();
  v_req  interval := CASE WHEN p_rpm > 0 THEN make_interval(secs => 60.0 / p_rpm)
                          ELSE interval '0' END;
  v_tok  interval := CASE WHEN p_tpm > 0
                          THEN make_interval(secs => 60.0 * greatest(p_tokens, 0) / p_tpm)
                          ELSE interval '0' END;
  v_hold interval := make_interval(secs => greatest(p_hold_ms, 0) / 1000.0);
  l      synaps.rate_limits;
  v_at   timestamptz;
  v_wait bigint;
  v_back timestamptz;
  v_line timestamptz;
BEGIN
  IF p_item IS NOT NULL THEN
    UPDATE synaps.queue_items SET rate_slot = NULL, rate_route = NULL
     WHERE id = p_item AND rate_route IS NOT NULL;
  END IF;
  INSERT INTO synaps.rate_limits (route) VALUES (p_route) ON CONFLICT (route) DO NOTHING;
  SELECT * INTO l FROM synaps.rate_limits WHERE route = p_route FOR UPDATE;
  v_at := greatest(l.request_tat, l.token_tat, l.blocked_until, v_now);
  v_wait := greatest(0, ceil(extract(epoch FROM v_at - v_now) * 1000))::bigint;
  IF NOT p_may_park OR v_wait <= p_hold_ms THEN
    UPDATE synaps.rate_limits
       SET request_tat = v_at + v_req, token_tat = v_at + v_tok, updated_at = v_now
     WHERE route = p_route;
    RETURN QUERY SELECT v_wait, true, NULL::timestamptz;
    RETURN;
  END IF;
  -- Come back when the slot is within the hold, behind the tenant's tasks already waiting.
  -- A task behind others of its tenant comes back 50 ms after its turn: when it meets the
  -- first task of a tenant that has none waiting, that one is claimed first (the claim orders
  -- equal shares by available_at) and takes the slot.
  INSERT INTO synaps.rate_waits (route, tenant_id, next_at)
  VALUES (p_route, p_tenant, '-infinity') ON CONFLICT (route, tenant_id) DO NOTHING;
  SELECT w.next_at INTO v_line FROM synaps.rate_waits w
   WHERE w.route = p_route AND w.tenant_id = p_tenant FOR UPDATE;
  v_back := CASE WHEN v_line > v_at - v_hold THEN v_line + interval '50 ms'
                 ELSE v_at - v_hold END;
  UPDATE synaps.rate_waits
     SET next_at = greatest(v_line, v_at - v_hold) + greatest(v_req, v_tok)
   WHERE route = p_route AND tenant_id = p_tenant;
  RETURN QUERY SELECT v_wait, false, v_back;
END $$;

-- Sends the task of queue item p_item back to the queue until p_until to wait for route
-- p_route, if its lease (p_item, p_epoch) is still held; the attempt is not counted (as
-- release_queue_items) and the ledger gets task.waiting {reason: rateLimit}. Locks the item,
-- then its run (docs/queue.md, "Lock order"). Answers whether it did.
CREATE FUNCTION synaps.rate_park(p_item bigint, p_epoch bigint, p_route text,
                                 p_until timestamptz, p_wait_ms bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  q synaps.queue_items;
BEGIN
  UPDATE synaps.queue_items
     SET status = 'ready', lease_owner = NULL, lease_expires_at = NULL, available_at = p_until,
         rate_slot = p_until, rate_route = p_route, attempts = greatest(attempts - 1, 0)
   WHERE id = p_item AND lease_epoch = p_epoch AND status = 'leased'
  RETURNING * INTO q;
  IF NOT FOUND THEN RETURN false; END IF;
  UPDATE synaps.tasks SET status = 'queued' WHERE id = q.task_id;
  PERFORM synaps.append_event(q.run_id, q.task_id, 'task.waiting', q.attempts + 1,
                              jsonb_build_object('reason', 'rateLimit', 'route', p_route,
                                                 'until', p_until, 'waitMs', p_wait_ms,
                                                 'reserved', false));
  RETURN true;
END $$;

-- A route's control item changed: its limiter starts afresh and its waiting tasks ask again.
CREATE FUNCTION synaps.rate_route_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Items before the route's row, the order of rate_reserve.
  UPDATE synaps.queue_items
     SET available_at = CASE WHEN status = 'ready' THEN least(available_at, now())
                             ELSE available_at END,
         rate_slot = NULL, rate_route = NULL
   WHERE rate_route = NEW.name;
  DELETE FROM synaps.rate_limits WHERE route = NEW.name;
  DELETE FROM synaps.rate_waits WHERE route = NEW.name;
  RETURN NULL;
END $$;

CREATE TRIGGER rate_route_changed AFTER INSERT ON synaps.control_items
  FOR EACH ROW WHEN (NEW.kind = 'routes') EXECUTE FUNCTION synaps.rate_route_changed();
