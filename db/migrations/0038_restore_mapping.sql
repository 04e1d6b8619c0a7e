-- Restoring an archived run into a PostgreSQL that moved on since the run expired (issue #18;
-- review 8, MUST FIX 2; docs/storage.md, "Archives").
--
-- restore_archived_story(story) -> jsonb replaces the body of restore_archived_run (0033), which
-- stays as a wrapper answering only "restored or not". On top of 0033's checks:
--
-- * Artifacts are named per thread. When every run that wrote one has expired, expiry deletes
--   the artifact's row, and a later run of the thread creates a new row under the same name and
--   a new id. An archived artifact is now put under the row its thread has under that name (if
--   any): its versions are inserted under that row's id, and the run's artifact.created events
--   name that id. A version number the row holds already cannot be put back: the restore is
--   refused (SQLSTATE 23505, naming the artifact, the version and the run that wrote it since)
--   instead of failing on a foreign key or, later, wedging the next completion.
-- * An artifact row that comes back with the run names an owner run that exists: the archived
--   owner, or this run when the archived owner is gone (restoring runs of one thread in any
--   order).
-- * latest_version ends at the greatest of the row's value and every version now present, so
--   the next completion on the thread never collides with a restored version.
-- * A command whose idempotency key was taken by a new command after the run expired comes back
--   without its key (idempotency_key NULL); the answer says so ("keyDropped").
-- * A story without its thread or command row restores only when PostgreSQL has that row.

CREATE FUNCTION synaps.restore_archived_story(p_story jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_run      jsonb := p_story->'run';
  v_run_id   uuid;
  v_tenant   text;
  v_thread   uuid;
  v_command  uuid;
  v_part     record;
  v_bad      text;
  v_map      jsonb;
  v_key      text;
  v_dropped  text;
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
    RETURN jsonb_build_object('restored', false, 'keyDropped', NULL, 'artifactsMapped', 0);
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
    WHEN jsonb_typeof(p_story->'thread') IS DISTINCT FROM 'object'
         AND NOT EXISTS (SELECT 1 FROM synaps.threads WHERE id = v_thread)
      THEN 'the run''s thread is neither in the archive nor in PostgreSQL'
    WHEN p_story ? 'command' AND (jsonb_typeof(p_story->'command') <> 'object'
         OR (p_story->'command'->>'id')::uuid IS DISTINCT FROM v_command
         OR p_story->'command'->>'tenant_id' IS DISTINCT FROM v_tenant
         OR (p_story->'command'->>'thread_id')::uuid IS DISTINCT FROM v_thread)
      THEN 'the command row is not the run''s command'
    WHEN EXISTS (SELECT 1 FROM synaps.commands WHERE id = v_command AND tenant_id <> v_tenant)
      THEN 'the run''s command belongs to another tenant'
    WHEN jsonb_typeof(p_story->'command') IS DISTINCT FROM 'object'
         AND NOT EXISTS (SELECT 1 FROM synaps.commands WHERE id = v_command)
      THEN 'the run''s command is neither in the archive nor in PostgreSQL'
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
                     OR a->>'name' IS NULL
                     OR EXISTS (SELECT 1 FROM synaps.artifacts x
                                 WHERE x.id = (a->>'id')::uuid
                                   AND (x.tenant_id <> v_tenant OR x.thread_id <> v_thread
                                        OR x.name <> a->>'name')))
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

  -- The command's idempotency key, if a command made since holds it: restored without it.
  v_key := p_story->'command'->>'idempotency_key';
  IF v_key IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM synaps.commands WHERE id = v_command)
     AND EXISTS (SELECT 1 FROM synaps.commands
                  WHERE tenant_id = v_tenant AND idempotency_key = v_key) THEN
    v_dropped := v_key;
    p_story := jsonb_set(p_story, '{command,idempotency_key}', 'null'::jsonb);
  END IF;

  -- Archived artifact id -> the id the thread has under that name now (when they differ).
  SELECT coalesce(jsonb_object_agg(a->>'id', x.id::text), '{}'::jsonb) INTO v_map
    FROM jsonb_array_elements(coalesce(p_story->'artifacts', '[]')) a
    JOIN synaps.artifacts x ON x.thread_id = v_thread AND x.name = a->>'name'
   WHERE x.id <> (a->>'id')::uuid;
  p_story := p_story || jsonb_build_object(
    -- Rows the thread has (by id or by name) stay as they are. One that comes back names an
    -- owner run that exists: its archived owner, or this run (its oldest version here).
    'artifacts', coalesce((
      SELECT jsonb_agg(CASE
               WHEN (a->>'run_id')::uuid = v_run_id
                    OR EXISTS (SELECT 1 FROM synaps.runs r WHERE r.id = (a->>'run_id')::uuid)
                 THEN a
               ELSE a || jsonb_build_object(
                      'run_id', v_run_id,
                      'task_id', (SELECT v->'task_id'
                                    FROM jsonb_array_elements(p_story->'artifactVersions') v
                                   WHERE v->>'artifact_id' = a->>'id'
                                   ORDER BY (v->>'version')::int LIMIT 1))
             END)
        FROM jsonb_array_elements(coalesce(p_story->'artifacts', '[]')) a
       WHERE NOT v_map ? (a->>'id')
         AND NOT EXISTS (SELECT 1 FROM synaps.artifacts x WHERE x.id = (a->>'id')::uuid)),
      '[]'::jsonb),
    'artifactVersions', coalesce((
      SELECT jsonb_agg(CASE WHEN v_map ? (v->>'artifact_id')
                            THEN jsonb_set(v, '{artifact_id}', v_map->(v->>'artifact_id'))
                            ELSE v END)
        FROM jsonb_array_elements(coalesce(p_story->'artifactVersions', '[]')) v), '[]'::jsonb),
    'events', coalesce((
      SELECT jsonb_agg(CASE WHEN e->>'type' = 'artifact.created'
                                 AND v_map ? (e->'data'->>'artifactId')
                            THEN jsonb_set(e, '{data,artifactId}', v_map->(e->'data'->>'artifactId'))
                            ELSE e END ORDER BY n)
        FROM jsonb_array_elements(coalesce(p_story->'events', '[]')) WITH ORDINALITY x(e, n)),
      '[]'::jsonb));

  -- A version number the thread's artifact holds already: written by a run since the archive.
  SELECT format('version %s of artifact %L exists already (written by run %s after this run '
                'expired), so the archived version cannot be put back under its number',
                av.version, x.name, av.run_id)
    INTO v_bad
    FROM jsonb_array_elements(p_story->'artifactVersions') v
    JOIN synaps.artifact_versions av
      ON av.artifact_id = (v->>'artifact_id')::uuid AND av.version = (v->>'version')::int
    JOIN synaps.artifacts x ON x.id = av.artifact_id
   ORDER BY av.version LIMIT 1;
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'restore_archived_run: run %: %', v_run_id, v_bad USING ERRCODE = '23505';
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
  -- Every artifact this run has versions of continues after the highest version now present.
  UPDATE synaps.artifacts a
     SET latest_version = v.top
    FROM (SELECT artifact_id, max(version) AS top FROM synaps.artifact_versions
           WHERE artifact_id IN (SELECT (x->>'artifact_id')::uuid
                                   FROM jsonb_array_elements(p_story->'artifactVersions') x)
           GROUP BY artifact_id) v
   WHERE a.id = v.artifact_id AND a.latest_version < v.top;
  RETURN jsonb_build_object('restored', true, 'keyDropped', v_dropped,
                            'artifactsMapped', (SELECT count(*) FROM jsonb_object_keys(v_map)));
END $$;

CREATE OR REPLACE FUNCTION synaps.restore_archived_run(p_story jsonb)
RETURNS boolean LANGUAGE sql AS $$
  SELECT (synaps.restore_archived_story(p_story)->>'restored')::boolean
$$;
