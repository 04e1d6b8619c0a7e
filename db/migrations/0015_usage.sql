-- Usage and cost per tenant, day (UTC), route, model and skill (GET /v1/usage,
-- docs/observability.md "Usage and cost"), read from the ledger: a task.completed event carries
-- the output's usage, model, provider attempts, cost and control versions; task.failed and
-- task.retry_scheduled count errors. Nothing on the completion path writes here: events older
-- than the rollup horizon are folded into synaps.usage_daily once, in ledger id order, by
-- synaps.roll_up_usage(), and a query adds the events past the cursor as it reads them.

CREATE TABLE synaps.usage_daily (
  tenant_id          text NOT NULL,
  day                date NOT NULL,
  route              text NOT NULL,   -- the route that answered ('' when none is known)
  model              text NOT NULL,   -- the model the provider reported ('' when none)
  skill              text NOT NULL,   -- '' for tasks without a skill
  tasks              bigint NOT NULL, -- task attempts that ended (succeeded or failed)
  succeeded          bigint NOT NULL,
  errors             bigint NOT NULL,
  provider_calls     bigint NOT NULL,
  prompt_tokens      bigint NOT NULL,
  completion_tokens  bigint NOT NULL,
  cost_usd           numeric NOT NULL,
  unpriced           bigint NOT NULL, -- succeeded attempts whose route names no pricing
  PRIMARY KEY (tenant_id, day, route, model, skill)
);

-- The single rollup cursor: every usage event with id <= last_event_id is in usage_daily.
CREATE TABLE synaps.usage_rollup (
  singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  last_event_id  bigint NOT NULL DEFAULT 0,
  rolled_up_at   timestamptz
);
INSERT INTO synaps.usage_rollup DEFAULT VALUES;

-- A number from a jsonb value, 0 when it is not one (outputs of remote workers are not trusted
-- to be well-typed, and one bad event must not stop the rollup).
CREATE FUNCTION synaps.jsonb_number(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN jsonb_typeof(v) = 'number' THEN v::text::numeric ELSE 0 END
$$;

CREATE FUNCTION synaps.jsonb_text(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN jsonb_typeof(v) = 'string' THEN left(v #>> '{}', 200) ELSE '' END
$$;

-- One row per usage event with p_after < id <= p_through.
CREATE FUNCTION synaps.usage_events(p_after bigint, p_through bigint)
RETURNS TABLE (tenant_id text, day date, route text, model text, skill text, succeeded integer,
               provider_calls numeric, prompt_tokens numeric, completion_tokens numeric,
               cost_usd numeric, unpriced integer)
LANGUAGE sql STABLE AS $$
  SELECT r.tenant_id,
         (e.created_at AT TIME ZONE 'UTC')::date,
         coalesce(nullif(synaps.jsonb_text(e.data #> '{control,routeUsed,name}'), ''),
                  synaps.jsonb_text(e.data #> '{control,route,name}')),
         synaps.jsonb_text(e.data -> 'model'),
         synaps.jsonb_text(e.data #> '{control,skill,name}'),
         (e.type = 'task.completed')::integer,
         synaps.jsonb_number(e.data -> 'providerAttempts'),
         synaps.jsonb_number(e.data #> '{usage,promptTokens}'),
         synaps.jsonb_number(e.data #> '{usage,completionTokens}'),
         synaps.jsonb_number(e.data -> 'costUsd'),
         (e.type = 'task.completed' AND jsonb_typeof(e.data -> 'costUsd') IS DISTINCT FROM 'number')::integer
    FROM synaps.ledger_events e
    JOIN synaps.runs r ON r.id = e.run_id
   WHERE e.id > p_after AND e.id <= p_through
     AND e.type IN ('task.completed', 'task.failed', 'task.retry_scheduled')
$$;

-- Folds usage events older than the horizon into usage_daily and moves the cursor past them;
-- returns how many ledger ids it passed. One caller at a time (the others return 0 at once).
--
-- Why a horizon: ledger ids are taken before commit, so an event with a lower id may become
-- visible after one with a higher id. The cursor only passes events created before
-- now() - p_horizon, and stops at the first one that is not; with no transaction writing the
-- ledger for longer than half the horizon (the API's and workers' statement and transaction
-- deadlines are seconds), no event can appear behind the cursor. p_max_ids bounds one pass.
CREATE FUNCTION synaps.roll_up_usage(p_horizon interval DEFAULT interval '10 minutes',
                                     p_max_ids bigint DEFAULT 2000000)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_cursor  bigint;
  v_through bigint;
BEGIN
  SELECT last_event_id INTO v_cursor FROM synaps.usage_rollup FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  SELECT min(e.id) - 1 INTO v_through
    FROM synaps.ledger_events e
   WHERE e.id > v_cursor AND e.id <= v_cursor + p_max_ids AND e.created_at >= now() - p_horizon;
  IF v_through IS NULL THEN
    SELECT coalesce(max(e.id), v_cursor) INTO v_through
      FROM synaps.ledger_events e
     WHERE e.id > v_cursor AND e.id <= v_cursor + p_max_ids;
  END IF;
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
