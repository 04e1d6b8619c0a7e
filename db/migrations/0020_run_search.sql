-- Runs search at scale (issue #14). GET /v1/runs?text= matches a substring of the command's
-- payload in any case, `lower(payload::text) LIKE '%…%'`; without an index that reads every
-- command of the tenant when few match (about 1 s at 100,000 runs). A trigram index (pg_trgm, a
-- contrib extension shipped with PostgreSQL and trusted since PostgreSQL 13: the database owner
-- may create it without being a superuser) answers such a search from the index for words of
-- three characters or more.
--
-- The index is an acceleration, not a contract: where pg_trgm is not installed or may not be
-- created (a managed PostgreSQL that does not offer it, a role without CREATE on the database),
-- the migration warns and goes on, and search works as before, scanning. An operator who adds
-- the extension later creates the index by hand (docs/console.md, "Budget").
--
-- GET /v1/runs?metadata=key=value is a containment over the command's metadata object, which
-- commands_metadata (jsonb_path_ops) answers. Both indexes are built in this migration's
-- transaction, which holds writes to commands meanwhile: a few seconds per million commands.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
    BEGIN
      CREATE EXTENSION IF NOT EXISTS pg_trgm;
      CREATE INDEX commands_payload_trgm ON synaps.commands
        USING gin (lower(payload::text) gin_trgm_ops);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'runs text search stays unindexed: % (%)', SQLERRM, SQLSTATE;
    END;
  ELSE
    RAISE WARNING 'runs text search stays unindexed: the pg_trgm extension is not available';
  END IF;
END $$;

CREATE INDEX commands_metadata ON synaps.commands USING gin ((payload->'metadata') jsonb_path_ops);
