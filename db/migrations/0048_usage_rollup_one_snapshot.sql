-- The usage rollup's cursor is decided from one snapshot.
--
-- synaps.roll_up_usage() chose how far to fold in two statements: the first looked for the
-- oldest event inside the horizon, and only when it found none did the second take the newest
-- event. Under READ COMMITTED each statement has its own snapshot, so a transaction committing
-- between them (the first events of a fresh ledger, seen by `make test`'s usage e2e test) made
-- the second fold events that are inside the horizon, moving the cursor past ids a transaction
-- still writing could have taken below them. Both answers now come from one statement, so they
-- see the same events; everything else is unchanged.

CREATE OR REPLACE FUNCTION synaps.roll_up_usage(p_horizon interval DEFAULT '00:10:00'::interval, p_max_ids bigint DEFAULT 2000000) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_cursor  bigint;
  v_through bigint;
BEGIN
  SELECT last_event_id INTO v_cursor FROM synaps.usage_rollup FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  -- Up to the event before the first one inside the horizon, or, with none inside it, up to the
  -- newest event; one statement, so both read the same snapshot.
  SELECT coalesce(
           (SELECT min(e.id) - 1 FROM synaps.ledger_events e
             WHERE e.id > v_cursor AND e.id <= v_cursor + p_max_ids
               AND e.created_at >= now() - p_horizon),
           (SELECT max(e.id) FROM synaps.ledger_events e
             WHERE e.id > v_cursor AND e.id <= v_cursor + p_max_ids),
           v_cursor)
    INTO v_through;
  IF v_through <= v_cursor THEN
    RETURN 0;
  END IF;
  INSERT INTO synaps.usage_daily AS d
  SELECT u.tenant_id, u.day, u.route, u.model, u.skill, count(*), sum(u.succeeded),
         count(*) - sum(u.succeeded), sum(u.provider_calls), sum(u.prompt_tokens),
         sum(u.completion_tokens), sum(u.cost_usd), sum(u.unpriced)
    FROM synaps.usage_events(v_cursor, v_through) u
   GROUP BY 1, 2, 3, 4, 5
  ON CONFLICT (tenant_id, day, route, model, skill) DO UPDATE
     SET tasks = d.tasks + excluded.tasks,
         succeeded = d.succeeded + excluded.succeeded,
         errors = d.errors + excluded.errors,
         provider_calls = d.provider_calls + excluded.provider_calls,
         prompt_tokens = d.prompt_tokens + excluded.prompt_tokens,
         completion_tokens = d.completion_tokens + excluded.completion_tokens,
         cost_usd = d.cost_usd + excluded.cost_usd,
         unpriced = d.unpriced + excluded.unpriced;
  UPDATE synaps.usage_rollup SET last_event_id = v_through, rolled_up_at = now();
  RETURN v_through - v_cursor;
END;
$$;
