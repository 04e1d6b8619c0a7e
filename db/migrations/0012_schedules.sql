-- Schedules (docs/schedules.md): the specs live in the control registry (kind `schedules`);
-- this is what happened at each fire time.
--
-- Any API process may fire a schedule; there is no leader. Exactly once per fire time comes from
-- here: one row per (schedule, fire time), written by synaps.schedule_fire() under a
-- transaction-scoped advisory lock per schedule, in the same transaction as the command it
-- starts. A second process asking for the same fire time finds the row and starts nothing.

-- The registry's sixth kind.
ALTER TABLE synaps.control_items DROP CONSTRAINT control_items_kind_check;
ALTER TABLE synaps.control_items ADD CONSTRAINT control_items_kind_check
  CHECK (kind IN ('prompts', 'skills', 'tools', 'routes', 'arbiters', 'schedules'));

CREATE TABLE synaps.schedule_fires (
  schedule    text NOT NULL,
  fire_time   timestamptz NOT NULL,
  version     integer NOT NULL,          -- the schedule's version that fired it
  tenant_id   text NOT NULL,
  origin      text NOT NULL CHECK (origin IN ('schedule', 'trigger', 'backfill')),
  -- started: a command and run were made; buffered: waits for the running one (bufferOne,
  -- bufferAll); skipped: not run, see reason.
  status      text NOT NULL CHECK (status IN ('started', 'buffered', 'skipped')),
  reason      text,
  run_id      uuid REFERENCES synaps.runs (id),
  -- True while the run may still be unfinished; cleared (with result set) once it is seen over.
  open        boolean NOT NULL DEFAULT false,
  result      text,                      -- the run's final status once closed
  command     jsonb,                     -- a buffered fire's command, until it starts
  decided_at  timestamptz NOT NULL DEFAULT now(),
  started_at  timestamptz,
  PRIMARY KEY (schedule, fire_time)
);
CREATE INDEX schedule_fires_run_idx ON synaps.schedule_fires (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX schedule_fires_open_idx ON synaps.schedule_fires (schedule) WHERE open;
CREATE INDEX schedule_fires_buffered_idx ON synaps.schedule_fires (schedule, fire_time)
  WHERE status = 'buffered';
-- The cursor of the regular fire times (triggers and backfills do not move it).
CREATE INDEX schedule_fires_cursor_idx ON synaps.schedule_fires (schedule, fire_time)
  WHERE origin = 'schedule';
CREATE INDEX schedule_fires_failed_idx ON synaps.schedule_fires (schedule, version)
  WHERE result = 'failed';

-- Closes the open fires of p_schedule whose runs are over, and returns the runs still
-- unfinished, oldest first. Call with the schedule's lock held.
CREATE FUNCTION synaps.schedule_settle(p_schedule text) RETURNS uuid[]
LANGUAGE plpgsql AS $$
DECLARE
  v_active uuid[];
BEGIN
  UPDATE synaps.schedule_fires f SET open = false, result = r.status
    FROM synaps.runs r
   WHERE f.schedule = p_schedule AND f.open AND r.id = f.run_id
     AND r.status IN ('succeeded', 'failed', 'cancelled');
  SELECT coalesce(array_agg(run_id ORDER BY fire_time), '{}') INTO v_active
    FROM synaps.schedule_fires WHERE schedule = p_schedule AND open;
  RETURN v_active;
END $$;

-- Starts p_command (a normalized submit command, see store::CommandJson) for a fire time: the
-- command, its run, and a schedule.fired event on the run's ledger.
CREATE FUNCTION synaps.schedule_start(p_schedule text, p_fire_time timestamptz, p_version integer,
                                      p_origin text, p_tenant text, p_request_hash text,
                                      p_command jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_submit jsonb;
  v_run    uuid;
BEGIN
  v_submit := synaps.submit_command(p_tenant, 'schedule:' || p_schedule, NULL, p_request_hash,
                                    p_command);
  IF v_submit ? 'error' THEN
    RETURN v_submit;
  END IF;
  v_run := (v_submit->>'runId')::uuid;
  PERFORM synaps.append_event(v_run, NULL, 'schedule.fired', NULL,
    jsonb_build_object('schedule', p_schedule, 'version', p_version, 'fireTime', p_fire_time,
                       'origin', p_origin));
  RETURN jsonb_build_object('runId', v_run, 'outbox', coalesce(v_submit->'outbox', '[]'::jsonb));
END $$;

-- Decides one fire time of a schedule, once. p_fire_time NULL means now (a trigger).
-- p_overlap: skip | bufferOne | bufferAll | cancelOther | allow; p_skip_reason, when given,
-- records the fire time as skipped without running it (a catch-up that keeps only the latest).
-- Returns {outcome: started | buffered | skipped | duplicate, fireTime, reason?, runId?,
-- outbox?, cancelled?: [run ids]}. A command the submit refuses is recorded as skipped.
CREATE FUNCTION synaps.schedule_fire(p_schedule text, p_fire_time timestamptz, p_version integer,
                                     p_origin text, p_overlap text, p_tenant text,
                                     p_request_hash text, p_command jsonb, p_skip_reason text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_time      timestamptz := coalesce(p_fire_time, clock_timestamp());
  v_active    uuid[];
  v_buffered  integer;
  v_status    text;
  v_reason    text := p_skip_reason;
  v_start     jsonb;
  v_cancelled uuid[] := '{}';
  v_run       uuid;
BEGIN
  -- One decider per schedule at a time: the overlap decision reads what earlier fires made.
  PERFORM pg_advisory_xact_lock(hashtextextended('synaps.schedule:' || p_schedule, 0));
  IF EXISTS (SELECT 1 FROM synaps.schedule_fires
              WHERE schedule = p_schedule AND fire_time = v_time) THEN
    RETURN jsonb_build_object('outcome', 'duplicate', 'fireTime', v_time);
  END IF;
  v_active := synaps.schedule_settle(p_schedule);
  SELECT count(*) INTO v_buffered FROM synaps.schedule_fires
   WHERE schedule = p_schedule AND status = 'buffered';

  IF v_reason IS NOT NULL THEN
    v_status := 'skipped';
  ELSIF p_overlap = 'allow' OR (cardinality(v_active) = 0 AND v_buffered = 0) THEN
    v_status := 'started';
  ELSIF p_overlap = 'cancelOther' THEN
    FOREACH v_run IN ARRAY v_active LOOP
      IF synaps.cancel_run(p_tenant, v_run, 'schedule:' || p_schedule) = 'cancelled' THEN
        v_cancelled := v_cancelled || v_run;
      END IF;
    END LOOP;
    v_active := synaps.schedule_settle(p_schedule);
    v_status := 'started';
  ELSIF p_overlap = 'bufferAll' OR (p_overlap = 'bufferOne' AND v_buffered = 0) THEN
    v_status := 'buffered';
  ELSE
    v_status := 'skipped';
    v_reason := CASE WHEN p_overlap = 'bufferOne' THEN 'overlap: one fire time is already buffered'
                     ELSE 'overlap: the previous run is still unfinished' END;
  END IF;

  IF v_status = 'started' THEN
    v_start := synaps.schedule_start(p_schedule, v_time, p_version, p_origin, p_tenant,
                                     p_request_hash, p_command);
    IF v_start ? 'error' THEN
      -- e.g. the command's threadId no longer exists: recorded, never retried.
      v_status := 'skipped';
      v_reason := 'the command was refused: ' || (v_start->>'error');
    END IF;
  END IF;
  IF v_status = 'started' THEN
    INSERT INTO synaps.schedule_fires (schedule, fire_time, version, tenant_id, origin, status,
                                       run_id, open, started_at)
    VALUES (p_schedule, v_time, p_version, p_tenant, p_origin, 'started',
            (v_start->>'runId')::uuid, true, now());
    RETURN jsonb_build_object('outcome', 'started', 'fireTime', v_time,
                              'runId', v_start->'runId', 'outbox', v_start->'outbox',
                              'cancelled', to_jsonb(v_cancelled));
  END IF;

  INSERT INTO synaps.schedule_fires (schedule, fire_time, version, tenant_id, origin, status,
                                     reason, command)
  VALUES (p_schedule, v_time, p_version, p_tenant, p_origin, v_status, v_reason,
          CASE WHEN v_status = 'buffered' THEN
            jsonb_build_object('hash', p_request_hash, 'command', p_command) END);
  IF v_status = 'skipped' THEN
    -- The ledger entry goes to the run the fire time gave way to (the newest unfinished one).
    IF cardinality(v_active) > 0 THEN
      PERFORM synaps.append_event(v_active[cardinality(v_active)], NULL, 'schedule.skipped', NULL,
        jsonb_build_object('schedule', p_schedule, 'version', p_version, 'fireTime', v_time,
                           'origin', p_origin, 'reason', v_reason));
    END IF;
  END IF;
  RETURN jsonb_build_object('outcome', v_status, 'fireTime', v_time, 'reason', v_reason);
END $$;

-- Settles p_schedule and, when nothing of it is unfinished, starts its oldest buffered fire
-- time. Returns {started?: {fireTime, runId, outbox}, failed: bool} where failed says whether a
-- run of version p_version has failed (for pauseOnFailure).
CREATE FUNCTION synaps.schedule_drain(p_schedule text, p_version integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_active  uuid[];
  v_next    synaps.schedule_fires;
  v_start   jsonb;
  v_out     jsonb := '{}'::jsonb;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('synaps.schedule:' || p_schedule, 0));
  v_active := synaps.schedule_settle(p_schedule);
  IF cardinality(v_active) = 0 THEN
    SELECT * INTO v_next FROM synaps.schedule_fires
     WHERE schedule = p_schedule AND status = 'buffered' ORDER BY fire_time LIMIT 1;
    IF FOUND THEN
      v_start := synaps.schedule_start(p_schedule, v_next.fire_time, v_next.version,
                                       v_next.origin, v_next.tenant_id,
                                       v_next.command->>'hash', v_next.command->'command');
      IF v_start ? 'error' THEN
        UPDATE synaps.schedule_fires SET status = 'skipped', command = NULL,
               reason = 'the command was refused: ' || (v_start->>'error')
         WHERE schedule = p_schedule AND fire_time = v_next.fire_time;
      ELSE
        UPDATE synaps.schedule_fires
           SET status = 'started', run_id = (v_start->>'runId')::uuid, open = true,
               started_at = now(), command = NULL
         WHERE schedule = p_schedule AND fire_time = v_next.fire_time;
        v_out := jsonb_build_object('started', jsonb_build_object(
          'fireTime', v_next.fire_time, 'runId', v_start->'runId', 'outbox', v_start->'outbox',
          'origin', v_next.origin));
      END IF;
    END IF;
  END IF;
  RETURN v_out || jsonb_build_object('failed', EXISTS (
    SELECT 1 FROM synaps.schedule_fires
     WHERE schedule = p_schedule AND version = p_version AND result = 'failed'));
END $$;
