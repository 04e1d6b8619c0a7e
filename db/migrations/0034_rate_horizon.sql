-- Shared rate limits reserve at most 30 s ahead (issue #15; docs/flow-control.md).
--
-- rate_acquire (0028) reserved every asking task's slot at once, however far away, and parked
-- the task until it. A backlog of N tasks on a route of R requests per minute therefore
-- reserved N/R minutes of slots in claim order, and any other tenant's next call on that route
-- waited behind all of them, whatever fair sharing or priority said (50,000 tasks at 600/min:
-- 83 minutes). Now a task whose slot would be more than 30 s away reserves nothing: it parks
-- for 30 s (task.waiting {reason: rateLimit, reserved: false}) and asks again when it is
-- claimed again, so the claim's fair sharing and priority decide, every 30 s, who takes the
-- route's next slots; a newcomer waits at most about 30 s plus its share. Slots within 30 s are
-- still reserved as before (no race for the same moment, no busy asking).

CREATE OR REPLACE FUNCTION synaps.rate_acquire(p_route text, p_rpm integer, p_tpm integer, p_tokens bigint,
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
  -- How far ahead a parked task may reserve its slot.
  c_horizon_ms CONSTANT bigint := 30000;
  v_old_req timestamptz;  -- the route's state before this call, to take a reservation back
  v_old_tok timestamptz;
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

  SELECT l.request_tat, l.token_tat INTO v_old_req, v_old_tok
    FROM synaps.rate_limits l WHERE l.route = p_route FOR UPDATE;
  INSERT INTO synaps.rate_limits AS l (route, request_tat, token_tat, updated_at)
  VALUES (p_route, v_now + v_req, v_now + v_tok, v_now)
  ON CONFLICT (route) DO UPDATE
     SET request_tat = greatest(l.request_tat, l.token_tat, l.blocked_until, v_now) + v_req,
         token_tat = greatest(l.request_tat, l.token_tat, l.blocked_until, v_now) + v_tok,
         updated_at = v_now
  RETURNING l.request_tat - v_req INTO v_at;
  v_wait := greatest(0, ceil(extract(epoch FROM v_at - v_now) * 1000))::bigint;

  -- Beyond the horizon nothing is reserved: the task parks until the horizon and asks again
  -- when it is claimed again; its reservation is taken back (this transaction holds the
  -- route's row lock since it read the old state, so nobody reserved after it).
  IF p_item IS NOT NULL AND v_wait > c_horizon_ms AND v_old_req IS NOT NULL THEN
    UPDATE synaps.queue_items
       SET status = 'ready', lease_owner = NULL, lease_expires_at = NULL,
           available_at = v_now + make_interval(secs => c_horizon_ms / 1000.0),
           rate_slot = NULL, attempts = greatest(attempts - 1, 0)
     WHERE id = p_item AND lease_epoch = p_epoch AND status = 'leased'
    RETURNING * INTO q;
    IF FOUND THEN
      UPDATE synaps.rate_limits
         SET request_tat = coalesce(v_old_req, '-infinity'),
             token_tat = coalesce(v_old_tok, '-infinity')
       WHERE route = p_route;
      UPDATE synaps.tasks SET status = 'queued' WHERE id = q.task_id;
      PERFORM synaps.append_event(q.run_id, q.task_id, 'task.waiting', q.attempts + 1,
                                  jsonb_build_object('reason', 'rateLimit', 'route', p_route,
                                                     'until', q.available_at,
                                                     'waitMs', c_horizon_ms,
                                                     'reserved', false));
      RETURN QUERY SELECT c_horizon_ms, true;
      RETURN;
    END IF;
  END IF;

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
