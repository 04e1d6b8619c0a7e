-- Provider rate limits shared by every worker (issue #15; docs/flow-control.md). A route's
-- `limits: {requestsPerMinute?, tokensPerMinute?}` hold across all workers: its state is one
-- row here, and a worker asks for each model call with one statement (rate_acquire).
--
-- The limiter is GCRA ("virtual scheduling") over two resources at once: request_tat is the
-- earliest time the next request conforms (the last admission + 60 s / requestsPerMinute),
-- token_tat the time the tokens admitted so far are paid for (the last admission + its tokens
-- x 60 s / tokensPerMinute). A call is admitted at t = greatest(request_tat, token_tat,
-- blocked_until, now): calls are spaced evenly, without bursts, so no window of any length
-- sees more than its share (plus one call). Every call gets a time: now, or a slot in the
-- future that is reserved for it at once (the row is advanced past it), so waiting callers
-- never race for the same moment.
--
-- A call whose slot is further away than the caller's p_park_after_ms goes back to the queue
-- without holding a worker: its queue item becomes ready again at the slot (available_at),
-- remembers the slot (rate_slot), and the attempt is not counted (as release_queue_items);
-- the ledger gets task.waiting {reason: 'rateLimit', route, until}. When the item is claimed
-- again its call spends the slot reserved before (unless a Retry-After came since).
--
-- A provider's 429 with Retry-After (rate_block) moves blocked_until: every worker's next call
-- on the route waits until then. rate_settle corrects the tokens charged up front (an estimate:
-- the prompt's size and max_tokens) with what the provider reported.

CREATE TABLE synaps.rate_limits (
    route         text PRIMARY KEY,
    request_tat   timestamptz NOT NULL DEFAULT '-infinity',
    token_tat     timestamptz NOT NULL DEFAULT '-infinity',
    blocked_until timestamptz NOT NULL DEFAULT '-infinity',
    updated_at    timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE synaps.queue_items ADD COLUMN rate_slot timestamptz;

-- One model call on route p_route (p_rpm, p_tpm: its limits, 0 = none; p_tokens: the call's
-- estimated tokens). Answers the wait before the call may start (0: now) and whether the task
-- went back to the queue (parked: only with p_item, when the wait is longer than
-- p_park_after_ms and the lease (p_item, p_epoch) is still held).
CREATE FUNCTION synaps.rate_acquire(p_route text, p_rpm integer, p_tpm integer, p_tokens bigint,
                                    p_item bigint, p_epoch bigint, p_park_after_ms integer)
RETURNS TABLE(wait_ms bigint, parked boolean) LANGUAGE plpgsql AS $$
DECLARE
  v_now   timestamptz := clock_timestamp();
  v_req   interval := CASE WHEN p_rpm > 0 THEN make_interval(secs => 60.0 / p_rpm)
                           ELSE interval '0' END;
  v_tok   interval := CASE WHEN p_tpm > 0
                           THEN make_interval(secs => 60.0 * greatest(p_tokens, 0) / p_tpm)
                           ELSE interval '0' END;
  v_slot  timestamptz;
  v_at    timestamptz;
  v_wait  bigint;
  q       synaps.queue_items;
BEGIN
  IF p_item IS NOT NULL THEN
    SELECT qi.rate_slot INTO v_slot FROM synaps.queue_items qi
     WHERE qi.id = p_item AND qi.lease_epoch = p_epoch AND qi.status = 'leased';
    IF v_slot IS NOT NULL THEN
      UPDATE synaps.queue_items SET rate_slot = NULL WHERE id = p_item;
      IF NOT EXISTS (SELECT 1 FROM synaps.rate_limits
                      WHERE route = p_route AND blocked_until > v_now) THEN
        RETURN QUERY SELECT 0::bigint, false;
        RETURN;
      END IF;
    END IF;
  END IF;

  INSERT INTO synaps.rate_limits AS l (route, request_tat, token_tat, updated_at)
  VALUES (p_route, v_now + v_req, v_now + v_tok, v_now)
  ON CONFLICT (route) DO UPDATE
     SET request_tat = greatest(l.request_tat, l.token_tat, l.blocked_until, v_now) + v_req,
         token_tat = greatest(l.request_tat, l.token_tat, l.blocked_until, v_now) + v_tok,
         updated_at = v_now
  RETURNING l.request_tat - v_req INTO v_at;
  v_wait := greatest(0, ceil(extract(epoch FROM v_at - v_now) * 1000))::bigint;

  IF p_item IS NOT NULL AND v_wait > p_park_after_ms THEN
    UPDATE synaps.queue_items
       SET status = 'ready', lease_owner = NULL, lease_expires_at = NULL, available_at = v_at,
           rate_slot = v_at, attempts = greatest(attempts - 1, 0)
     WHERE id = p_item AND lease_epoch = p_epoch AND status = 'leased'
    RETURNING * INTO q;
    IF FOUND THEN
      UPDATE synaps.tasks SET status = 'queued' WHERE id = q.task_id;
      PERFORM synaps.append_event(q.run_id, q.task_id, 'task.waiting', q.attempts + 1,
                                  jsonb_build_object('reason', 'rateLimit', 'route', p_route,
                                                     'until', v_at, 'waitMs', v_wait));
      RETURN QUERY SELECT v_wait, true;
      RETURN;
    END IF;
  END IF;
  RETURN QUERY SELECT v_wait, false;
END $$;

-- A provider answered 429 with Retry-After on route p_route: no call on it starts, on any
-- worker, for p_ms from now.
CREATE FUNCTION synaps.rate_block(p_route text, p_ms bigint) RETURNS timestamptz
LANGUAGE sql AS $$
  INSERT INTO synaps.rate_limits AS l (route, blocked_until, updated_at)
  VALUES (p_route, clock_timestamp() + make_interval(secs => p_ms / 1000.0), clock_timestamp())
  ON CONFLICT (route) DO UPDATE
     SET blocked_until = greatest(l.blocked_until, excluded.blocked_until),
         updated_at = excluded.updated_at
  RETURNING blocked_until
$$;

-- A call charged p_tokens up front used p_tokens + p_delta: token_tat moves by the difference
-- (backwards for a refund).
CREATE FUNCTION synaps.rate_settle(p_route text, p_tpm integer, p_delta bigint) RETURNS void
LANGUAGE sql AS $$
  UPDATE synaps.rate_limits
     SET token_tat = token_tat + make_interval(secs => 60.0 * p_delta / p_tpm)
   WHERE route = p_route AND p_tpm > 0 AND p_delta <> 0
$$;
