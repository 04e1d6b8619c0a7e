-- Restoring an archived run checks what it inserts (issue #18; docs/storage.md, "Archives").
--
-- An archive lives in the object store, which others than Synaps may be able to write. Before
-- this migration restore_archived_run inserted every row of a story as it was, so a rewritten
-- segment could add ledger events to another tenant's live run, ready queue items, or rows of
-- another thread. Now:
--
-- * a run that is in PostgreSQL already is left exactly as it is: nothing of its story is
--   written (restoring twice is still harmless: the second time returns false);
-- * the run must be finished (succeeded, failed, cancelled), and every other row must belong to
--   it: the thread and command the run names (a thread or command that exists must be the run's
--   tenant's), tasks, queue items and ledger events of this run (events' and items' tasks among
--   the story's tasks), artifacts of the run's thread and tenant, artifact versions of this run
--   and of the story's artifacts; queue items only dead or cancelled (nothing claimable comes
--   back). A story that breaks a rule is refused whole (SQLSTATE 22023, naming the rule);
-- * an artifact restored into a thread that still has it keeps the higher latest_version, so
--   the next version written after the restore does not collide with a restored one.

CREATE OR REPLACE FUNCTION synaps.restore_archived_run(p_story jsonb)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_run     jsonb := p_story->'run';
  v_run_id  uuid;
  v_tenant  text;
  v_thread  uuid;
  v_command uuid;
  v_part    record;
  v_bad     text;
BEGIN
  IF jsonb_typeof(p_story) <> 'object' OR jsonb_typeof(v_run) <> 'object' THEN
    RAISE EXCEPTION 'restore_archived_run: not an archived run' USING ERRCODE = '22023';
  END IF;
  v_run_id := (v_run->>'id')::uuid;
  v_tenant := v_run->>'tenant_id';
  v_thread := (v_run->>'thread_id')::uuid;
  v_command := (v_run->>'command_id')::uuid;
  IF v_run_id IS NULL OR v_tenant IS NULL OR v_thread IS NULL OR v_command IS NULL THEN
    RAISE EXCEPTION 'restore_archived_run: the run row lacks its id, tenant, thread or command'
      USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT 1 FROM synaps.runs WHERE id = v_run_id) THEN
    RETURN false;
  END IF;
  IF coalesce(v_run->>'status', '') NOT IN ('succeeded', 'failed', 'cancelled') THEN
    RAISE EXCEPTION 'restore_archived_run: run % is not finished', v_run_id USING ERRCODE = '22023';
  END IF;
  SELECT CASE
    WHEN p_story ? 'thread' AND (jsonb_typeof(p_story->'thread') <> 'object'
         OR (p_story->'thread'->>'id')::uuid IS DISTINCT FROM v_thread
         OR p_story->'thread'->>'tenant_id' IS DISTINCT FROM v_tenant)
      THEN 'the thread row is not the run''s thread of its tenant'
    WHEN EXISTS (SELECT 1 FROM synaps.threads WHERE id = v_thread AND tenant_id <> v_tenant)
      THEN 'the run''s thread belongs to another tenant'
    WHEN p_story ? 'command' AND (jsonb_typeof(p_story->'command') <> 'object'
         OR (p_story->'command'->>'id')::uuid IS DISTINCT FROM v_command
         OR p_story->'command'->>'tenant_id' IS DISTINCT FROM v_tenant
         OR (p_story->'command'->>'thread_id')::uuid IS DISTINCT FROM v_thread)
      THEN 'the command row is not the run''s command'
    WHEN EXISTS (SELECT 1 FROM synaps.commands WHERE id = v_command AND tenant_id <> v_tenant)
      THEN 'the run''s command belongs to another tenant'
    WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_story->'tasks', '[]')) t
                  WHERE (t->>'run_id')::uuid IS DISTINCT FROM v_run_id
                     OR t->>'tenant_id' IS DISTINCT FROM v_tenant)
      THEN 'a task row is not of this run and tenant'
    WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_story->'queueItems', '[]')) q
                  WHERE (q->>'run_id')::uuid IS DISTINCT FROM v_run_id
                     OR q->>'tenant_id' IS DISTINCT FROM v_tenant
                     OR coalesce(q->>'status', '') NOT IN ('dead', 'cancelled')
                     OR NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_story->'tasks') t
                                     WHERE t->>'id' = q->>'task_id'))
      THEN 'a queue item is not a dead or cancelled item of this run''s tasks'
    WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_story->'events', '[]')) e
                  WHERE (e->>'run_id')::uuid IS DISTINCT FROM v_run_id
                     OR (e->>'task_id' IS NOT NULL
                         AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_story->'tasks') t
                                          WHERE t->>'id' = e->>'task_id')))
      THEN 'a ledger event is not of this run and its tasks'
    WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_story->'artifacts', '[]')) a
                  WHERE (a->>'thread_id')::uuid IS DISTINCT FROM v_thread
                     OR a->>'tenant_id' IS DISTINCT FROM v_tenant
                     OR EXISTS (SELECT 1 FROM synaps.artifacts x
                                 WHERE x.id = (a->>'id')::uuid
                                   AND (x.tenant_id <> v_tenant OR x.thread_id <> v_thread)))
      THEN 'an artifact is not of the run''s thread and tenant'
    WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_story->'artifactVersions', '[]')) v
                  WHERE (v->>'run_id')::uuid IS DISTINCT FROM v_run_id
                     OR NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_story->'artifacts') a
                                     WHERE a->>'id' = v->>'artifact_id'))
      THEN 'an artifact version is not of this run and its artifacts'
  END INTO v_bad;
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'restore_archived_run: run %: %', v_run_id, v_bad USING ERRCODE = '22023';
  END IF;
  FOR v_part IN SELECT * FROM (VALUES (1, 'thread', 'threads'), (2, 'command', 'commands'),
                                      (3, 'run', 'runs'), (4, 'tasks', 'tasks'),
                                      (5, 'queueItems', 'queue_items'),
                                      (6, 'artifacts', 'artifacts'),
                                      (7, 'artifactVersions', 'artifact_versions'),
                                      (8, 'events', 'ledger_events')) p(n, key, tbl) ORDER BY n
  LOOP
    IF jsonb_typeof(p_story->v_part.key) = 'object' THEN
      PERFORM synaps.restore_archived_rows(v_part.tbl, jsonb_build_array(p_story->v_part.key));
    ELSIF jsonb_typeof(p_story->v_part.key) = 'array' THEN
      PERFORM synaps.restore_archived_rows(v_part.tbl, p_story->v_part.key);
    END IF;
  END LOOP;
  -- An artifact the thread kept (another run wrote it since) continues after the highest
  -- version now present.
  UPDATE synaps.artifacts a
     SET latest_version = v.top
    FROM (SELECT artifact_id, max(version) AS top FROM synaps.artifact_versions
           WHERE artifact_id IN (SELECT (x->>'id')::uuid
                                   FROM jsonb_array_elements(coalesce(p_story->'artifacts', '[]')) x)
           GROUP BY artifact_id) v
   WHERE a.id = v.artifact_id AND a.latest_version < v.top;
  RETURN true;
END $$;
