-- Time-ordered ids (UUID version 7, RFC 9562) for what a submit creates: commands, threads, runs
-- and tasks. Random (version 4) ids put every insert at a random leaf of each primary-key and
-- foreign-key index, so with a large history each insert touches index pages that are no longer
-- cached; time-ordered ids keep new entries together at one edge of the index
-- (docs/benchmarks.md, "Scale of history"). PostgreSQL 15 has no uuidv7(), hence this one.

-- 48 bits of Unix time in milliseconds, the version (7) and variant bits, and 74 random bits.
CREATE FUNCTION synaps.uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                            PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                            FROM 1 FOR 6),
                    52, 1),
            53, 1),
    'hex')::uuid
$$;

-- As in 0002, with synaps.uuid_v7() for every id it makes.
CREATE OR REPLACE FUNCTION synaps.submit_command(p_tenant text, p_actor text, p_idempotency_key text,
                                      p_request_hash text, p_command jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_command_id uuid := synaps.uuid_v7();
  v_run_id     uuid := synaps.uuid_v7();
  v_thread_id  uuid;
  v_existing   synaps.commands;
  v_queue      text := coalesce(p_command->>'queue', 'default');
  v_priority   integer := coalesce((p_command->>'priority')::integer, 0);
  v_available  timestamptz := greatest(now(), coalesce((p_command->>'notBefore')::timestamptz, now()));
  v_max        integer := coalesce((p_command->>'maxAttempts')::integer, 3);
  v_task       jsonb;
  v_task_id    uuid;
  v_waiting    boolean;
  v_outbox     jsonb;
  v_response   jsonb;
BEGIN
  IF p_command->>'threadId' IS NOT NULL THEN
    SELECT id INTO v_thread_id FROM synaps.threads
     WHERE id = (p_command->>'threadId')::uuid AND tenant_id = p_tenant;
    IF NOT FOUND THEN
      RETURN jsonb_build_object('error', 'thread_not_found');
    END IF;
  ELSE
    v_thread_id := synaps.uuid_v7();
    INSERT INTO synaps.threads (id, tenant_id) VALUES (v_thread_id, p_tenant);
  END IF;

  INSERT INTO synaps.commands (id, tenant_id, thread_id, kind, payload, idempotency_key, request_hash, submitted_by)
  VALUES (v_command_id, p_tenant, v_thread_id, p_command->>'kind', p_command->'payload',
          p_idempotency_key, p_request_hash, p_actor)
  ON CONFLICT ON CONSTRAINT commands_idempotency_key_uq DO NOTHING;
  IF NOT FOUND THEN
    -- A command with this key exists (a concurrent insert waited for it to commit). The
    -- thread made above for it is not needed.
    IF p_command->>'threadId' IS NULL THEN
      DELETE FROM synaps.threads WHERE id = v_thread_id;
    END IF;
    SELECT * INTO v_existing FROM synaps.commands
     WHERE tenant_id = p_tenant AND idempotency_key = p_idempotency_key;
    IF v_existing.request_hash <> p_request_hash THEN
      RETURN jsonb_build_object('error', 'idempotency_conflict', 'commandId', v_existing.id);
    END IF;
    RETURN v_existing.response || jsonb_build_object('replayed', true);
  END IF;

  INSERT INTO synaps.runs (id, command_id, thread_id, tenant_id) VALUES (v_run_id, v_command_id, v_thread_id, p_tenant);
  PERFORM synaps.append_event(v_run_id, NULL, 'run.created',
                              NULL, jsonb_build_object('commandId', v_command_id, 'kind', p_command->>'kind'));

  FOR v_task IN SELECT * FROM jsonb_array_elements(p_command->'tasks') LOOP
    v_task_id := synaps.uuid_v7();
    v_waiting := jsonb_array_length(coalesce(v_task->'dependsOn', '[]'::jsonb)) > 0;
    INSERT INTO synaps.tasks (id, run_id, tenant_id, name, kind, spec, status, max_attempts, depends_on)
    VALUES (v_task_id, v_run_id, p_tenant, v_task->>'name', v_task->>'kind', v_task->'spec',
            CASE WHEN v_waiting THEN 'waiting' ELSE 'queued' END, v_max,
            ARRAY(SELECT jsonb_array_elements_text(coalesce(v_task->'dependsOn', '[]'::jsonb))));
    INSERT INTO synaps.queue_items (task_id, run_id, tenant_id, queue, priority, available_at, status, max_attempts)
    VALUES (v_task_id, v_run_id, p_tenant, v_queue, v_priority, v_available,
            CASE WHEN v_waiting THEN 'waiting' ELSE 'ready' END, v_max);
    PERFORM synaps.append_event(v_run_id, v_task_id, 'task.queued', NULL,
                                jsonb_build_object('name', v_task->>'name', 'queue', v_queue,
                                                   'priority', v_priority, 'availableAt', v_available));
  END LOOP;

  WITH o AS (
    INSERT INTO synaps.outbox (subject, payload)
    VALUES ('synaps.wakeup.' || v_queue, jsonb_build_object('queue', v_queue, 'runId', v_run_id))
    RETURNING id, subject, payload, msg_id
  )
  SELECT jsonb_agg(jsonb_build_object('id', o.id, 'subject', o.subject, 'payload', o.payload, 'msgId', o.msg_id))
    INTO v_outbox FROM o;

  v_response := jsonb_build_object('commandId', v_command_id, 'runId', v_run_id,
                                   'threadId', v_thread_id, 'status', 'queued');
  UPDATE synaps.commands SET response = v_response WHERE id = v_command_id;
  RETURN v_response || jsonb_build_object('outbox', v_outbox);
END $$;
