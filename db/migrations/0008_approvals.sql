-- Approvals, refined (docs/api.md, "Approvals"): a run's status follows its tasks when some are
-- held, deciding locks the run before the item (the order cancel_run uses), and a rejected
-- task keeps no held output.

-- An unfinished run reads `running` while any task is queued or running, else
-- `awaiting_approval` while any task is held (tasks waiting on a held one count as blocked).
-- Finished runs are left alone.
CREATE FUNCTION synaps.refresh_run_status(p_run_id uuid)
RETURNS void LANGUAGE sql AS $$
  UPDATE synaps.runs r
     SET status = CASE
           WHEN EXISTS (SELECT 1 FROM synaps.tasks t
                         WHERE t.run_id = p_run_id AND t.status IN ('queued', 'running')) THEN 'running'
           WHEN EXISTS (SELECT 1 FROM synaps.tasks t
                         WHERE t.run_id = p_run_id AND t.status = 'awaiting_approval') THEN 'awaiting_approval'
           ELSE r.status END
   WHERE r.id = p_run_id AND r.status IN ('running', 'awaiting_approval')
$$;

-- As in 0002, and while tasks remain, the status follows them (a completion can leave only held
-- tasks behind).
CREATE OR REPLACE FUNCTION synaps.settle_run(p_run_id uuid)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_error jsonb;
BEGIN
  IF EXISTS (SELECT 1 FROM synaps.tasks
              WHERE run_id = p_run_id AND status NOT IN ('succeeded', 'failed', 'cancelled')) THEN
    PERFORM synaps.refresh_run_status(p_run_id);
    RETURN;
  END IF;
  SELECT jsonb_build_object('task', name) || coalesce(error, '{}'::jsonb) INTO v_error
    FROM synaps.tasks WHERE run_id = p_run_id AND status = 'failed'
   ORDER BY finished_at, name LIMIT 1;
  PERFORM synaps.finish_run(p_run_id, CASE WHEN v_error IS NULL THEN 'succeeded' ELSE 'failed' END, v_error);
END $$;

-- As in 0004, with the run's status from refresh_run_status, and the held answer's text in
-- task.awaiting_approval.
CREATE OR REPLACE FUNCTION synaps.hold_queue_item(p_item_id bigint, p_epoch bigint, p_output jsonb, p_artifacts jsonb)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  q synaps.queue_items;
BEGIN
  UPDATE synaps.queue_items
     SET status = 'held', lease_owner = NULL, lease_expires_at = NULL,
         held = jsonb_build_object('output', p_output, 'artifacts', coalesce(p_artifacts, '[]'::jsonb))
   WHERE id = p_item_id AND lease_epoch = p_epoch AND status = 'leased'
  RETURNING * INTO q;
  IF NOT FOUND THEN
    IF synaps.take_cancelled_item(p_item_id, p_epoch) THEN RETURN 'cancelled'; END IF;
    RETURN 'lease_lost';
  END IF;
  UPDATE synaps.tasks SET status = 'awaiting_approval', output = p_output WHERE id = q.task_id;
  PERFORM synaps.refresh_run_status(q.run_id);
  -- The approver reads the answer here: it is in no artifact until approved.
  PERFORM synaps.append_event(q.run_id, q.task_id, 'task.awaiting_approval', q.attempts,
                              jsonb_build_object('verdicts', coalesce(p_output->'arbiters', '[]'::jsonb),
                                                 'text', p_output->'text'));
  INSERT INTO synaps.outbox (subject, payload)
  VALUES ('synaps.run.' || q.run_id,
          jsonb_build_object('type', 'run.awaiting_approval', 'runId', q.run_id, 'taskId', q.task_id));
  RETURN 'held';
END $$;

-- As in 0004: locks the run first (as cancel_run does, so a decision racing a cancel waits
-- instead of deadlocking), clears the held output on reject, and leaves the run's status to
-- settle_run / refresh_run_status.
CREATE OR REPLACE FUNCTION synaps.decide_task(p_tenant text, p_task_id uuid, p_approve boolean, p_actor text,
                                              p_reason text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  q synaps.queue_items;
  v_task synaps.tasks;
BEGIN
  SELECT * INTO v_task FROM synaps.tasks WHERE id = p_task_id AND tenant_id = p_tenant;
  IF NOT FOUND THEN RETURN 'not_found'; END IF;
  PERFORM 1 FROM synaps.runs WHERE id = v_task.run_id FOR UPDATE;
  SELECT * INTO q FROM synaps.queue_items WHERE task_id = p_task_id FOR UPDATE;
  IF NOT FOUND OR q.status <> 'held' THEN RETURN 'not_held'; END IF;
  PERFORM synaps.append_event(q.run_id, q.task_id, CASE WHEN p_approve THEN 'task.approved' ELSE 'task.rejected' END,
                              q.attempts, jsonb_strip_nulls(jsonb_build_object('by', p_actor,
                                                                               'reason', nullif(p_reason, ''))));
  IF p_approve THEN
    -- Hand the item to complete_queue_item under a fresh epoch nobody else holds.
    UPDATE synaps.queue_items SET status = 'leased', lease_epoch = lease_epoch + 1, lease_owner = p_actor
     WHERE id = q.id RETURNING * INTO q;
    PERFORM synaps.complete_queue_item(q.id, q.lease_epoch, q.held->'output', q.held->'artifacts');
    RETURN 'approved';
  END IF;
  UPDATE synaps.queue_items SET held = NULL WHERE id = q.id;
  UPDATE synaps.tasks SET output = NULL WHERE id = q.task_id;
  PERFORM synaps.dead_letter(q.id, jsonb_build_object(
    'code', 'rejected', 'message', 'rejected by ' || p_actor ||
    CASE WHEN coalesce(p_reason, '') = '' THEN '' ELSE ': ' || p_reason END));
  RETURN 'rejected';
END $$;
