-- Agent loop and arbiters (docs/control.md): ledger events a worker writes for a leased task
-- (tool calls and results, arbiter verdicts), and the hold for human approval.

-- Appends events of any type for leases that are still current; events of a stale or cancelled
-- lease are dropped. Element i of each array belongs together. Returns how many were recorded.
CREATE FUNCTION synaps.append_task_events(p_item_ids bigint[], p_epochs bigint[], p_types text[],
                                          p_data jsonb[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  r record;
  n integer := 0;
BEGIN
  FOR r IN
    SELECT q.run_id, q.task_id, q.attempts, u.type, u.data
      FROM unnest(p_item_ids, p_epochs, p_types, p_data) WITH ORDINALITY AS u(item_id, epoch, type, data, ord)
      JOIN synaps.queue_items q ON q.id = u.item_id AND q.lease_epoch = u.epoch AND q.status = 'leased'
     ORDER BY u.ord
  LOOP
    PERFORM synaps.append_event(r.run_id, r.task_id, r.type, r.attempts, r.data);
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;

-- A held item keeps its row (status 'held', never claimed, no lease) with the output and
-- artifacts it will complete with once approved.
ALTER TABLE synaps.queue_items DROP CONSTRAINT queue_items_status_check;
ALTER TABLE synaps.queue_items ADD CONSTRAINT queue_items_status_check
  CHECK (status IN ('waiting', 'ready', 'leased', 'held', 'cancelled', 'dead'));
ALTER TABLE synaps.queue_items ADD COLUMN held jsonb;

-- Holds a leased item for approval if p_epoch is current: the task and its run become
-- awaiting_approval, the output and artifacts are kept on the item, and task.awaiting_approval
-- (with p_verdicts) is appended. Returns 'held', 'cancelled' or 'lease_lost'.
CREATE FUNCTION synaps.hold_queue_item(p_item_id bigint, p_epoch bigint, p_output jsonb, p_artifacts jsonb)
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
  UPDATE synaps.runs SET status = 'awaiting_approval' WHERE id = q.run_id AND status = 'running';
  PERFORM synaps.append_event(q.run_id, q.task_id, 'task.awaiting_approval', q.attempts,
                              jsonb_build_object('verdicts', coalesce(p_output->'arbiters', '[]'::jsonb)));
  INSERT INTO synaps.outbox (subject, payload)
  VALUES ('synaps.run.' || q.run_id,
          jsonb_build_object('type', 'run.awaiting_approval', 'runId', q.run_id, 'taskId', q.task_id));
  RETURN 'held';
END $$;

-- Decides a held task of p_tenant. Approve completes it with the held output and artifacts
-- (through complete_queue_item, so dependents and the run move on as after any completion);
-- reject fails it without retry (dead letter, so an operator can still requeue it). Either way
-- task.approved / task.rejected records who decided and why. Returns 'approved', 'rejected',
-- 'not_found' (absent or another tenant's) or 'not_held'.
CREATE FUNCTION synaps.decide_task(p_tenant text, p_task_id uuid, p_approve boolean, p_actor text,
                                   p_reason text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  q synaps.queue_items;
  v_task synaps.tasks;
BEGIN
  SELECT * INTO v_task FROM synaps.tasks WHERE id = p_task_id AND tenant_id = p_tenant;
  IF NOT FOUND THEN RETURN 'not_found'; END IF;
  SELECT * INTO q FROM synaps.queue_items WHERE task_id = p_task_id FOR UPDATE;
  IF NOT FOUND OR q.status <> 'held' THEN RETURN 'not_held'; END IF;
  UPDATE synaps.runs SET status = 'running' WHERE id = q.run_id AND status = 'awaiting_approval';
  PERFORM synaps.append_event(q.run_id, q.task_id, CASE WHEN p_approve THEN 'task.approved' ELSE 'task.rejected' END,
                              q.attempts, jsonb_build_object('by', p_actor, 'reason', p_reason));
  IF p_approve THEN
    -- Hand the item to complete_queue_item under a fresh epoch nobody else holds.
    UPDATE synaps.queue_items SET status = 'leased', lease_epoch = lease_epoch + 1, lease_owner = p_actor
     WHERE id = q.id RETURNING * INTO q;
    PERFORM synaps.complete_queue_item(q.id, q.lease_epoch, q.held->'output', q.held->'artifacts');
    RETURN 'approved';
  END IF;
  UPDATE synaps.tasks SET output = NULL WHERE id = q.task_id;
  PERFORM synaps.dead_letter(q.id, jsonb_build_object(
    'code', 'rejected', 'message', 'rejected by ' || p_actor ||
    CASE WHEN coalesce(p_reason, '') = '' THEN '' ELSE ': ' || p_reason END));
  RETURN 'rejected';
END $$;
