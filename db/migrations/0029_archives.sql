-- Archives of expired runs in the object store (docs/storage.md, "Archives"; src/history/archive.h).
-- A segment (one batch of one tenant's runs of one UTC day, a gzip JSON Lines object and its
-- manifest) is recorded here only after its manifest is stored: a row means "done", and the runs
-- it names may leave the other tables. synaps gc keeps every object named in object_keys.

CREATE TABLE synaps.archives (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id       text NOT NULL,
  day             date NOT NULL,
  segment         text NOT NULL CHECK (segment ~ '^[0-9a-f]{16}$'),
  data_key        text NOT NULL,
  manifest_key    text NOT NULL,
  schema_version  integer NOT NULL,
  runs            bigint NOT NULL,
  tasks           bigint NOT NULL,
  events          bigint NOT NULL,
  artifacts       bigint NOT NULL,
  bytes           bigint NOT NULL,     -- the data object's size (compressed)
  sha256          text NOT NULL,       -- of the data object
  first_at        timestamptz,         -- earliest created_at among the runs
  last_at         timestamptz,         -- latest finished_at among the runs
  object_keys     text[] NOT NULL DEFAULT '{}',  -- artifact objects the archived runs name
  archived_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, day, segment)
);
CREATE INDEX archives_object_keys_idx ON synaps.archives USING gin (object_keys);

-- Which segment holds a run (the latest one, when a run was archived again after a restore).
CREATE TABLE synaps.archived_runs (
  run_id      uuid PRIMARY KEY,
  tenant_id   text NOT NULL,
  archive_id  bigint NOT NULL REFERENCES synaps.archives (id) ON DELETE CASCADE
);
CREATE INDEX archived_runs_archive_idx ON synaps.archived_runs (archive_id);

-- Inserts archived rows (a JSON array of rows as to_jsonb rendered them) back into one of the
-- tables a run's story spans, with their original ids; rows that exist are left alone. Only the
-- columns present in the archive are written, so columns added after it was written take their
-- defaults. Returns the number of rows inserted.
CREATE FUNCTION synaps.restore_archived_rows(p_table text, p_rows jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_columns text;
  v_count   bigint;
BEGIN
  IF p_table NOT IN ('threads', 'commands', 'runs', 'tasks', 'queue_items', 'ledger_events',
                     'artifacts', 'artifact_versions') THEN
    RAISE EXCEPTION 'restore_archived_rows: table % is not part of an archive', p_table
      USING ERRCODE = '22023';
  END IF;
  IF p_rows IS NULL OR jsonb_typeof(p_rows) <> 'array' OR jsonb_array_length(p_rows) = 0 THEN
    RETURN 0;
  END IF;
  SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO v_columns
    FROM pg_attribute a
   WHERE a.attrelid = format('synaps.%I', p_table)::regclass
     AND a.attnum > 0 AND NOT a.attisdropped
     AND EXISTS (SELECT 1 FROM jsonb_array_elements(p_rows) r WHERE r ? a.attname);
  IF v_columns IS NULL THEN
    RETURN 0;
  END IF;
  EXECUTE format('INSERT INTO synaps.%I (%s) OVERRIDING SYSTEM VALUE SELECT %s'
                 ' FROM jsonb_populate_recordset(NULL::synaps.%I, $1) ON CONFLICT DO NOTHING',
                 p_table, v_columns, v_columns, p_table)
    USING p_rows;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END $$;

-- Inserts one archived run's story ({"thread": row, "command": row, "run": row, "tasks": [rows],
-- "queueItems", "artifacts", "artifactVersions", "events": [rows]}) in the order foreign keys
-- need. True when the run row itself was new.
CREATE FUNCTION synaps.restore_archived_run(p_story jsonb)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_new   boolean;
  v_part  record;
BEGIN
  IF jsonb_typeof(p_story) <> 'object' OR jsonb_typeof(p_story->'run') <> 'object' THEN
    RAISE EXCEPTION 'restore_archived_run: not an archived run' USING ERRCODE = '22023';
  END IF;
  FOR v_part IN SELECT * FROM (VALUES (1, 'thread', 'threads'), (2, 'command', 'commands'),
                                      (3, 'run', 'runs'), (4, 'tasks', 'tasks'),
                                      (5, 'queueItems', 'queue_items'),
                                      (6, 'artifacts', 'artifacts'),
                                      (7, 'artifactVersions', 'artifact_versions'),
                                      (8, 'events', 'ledger_events')) p(n, key, tbl) ORDER BY n
  LOOP
    IF v_part.key = 'run' THEN
      v_new := synaps.restore_archived_rows('runs', jsonb_build_array(p_story->'run')) > 0;
    ELSIF jsonb_typeof(p_story->v_part.key) = 'object' THEN
      PERFORM synaps.restore_archived_rows(v_part.tbl, jsonb_build_array(p_story->v_part.key));
    ELSIF jsonb_typeof(p_story->v_part.key) = 'array' THEN
      PERFORM synaps.restore_archived_rows(v_part.tbl, p_story->v_part.key);
    END IF;
  END LOOP;
  RETURN v_new;
END $$;
