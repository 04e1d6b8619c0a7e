-- Reading one archived run fetches only its own bytes (issue #18, review).
--
-- A segment's data object holds each run as its own gzip member, but only the manifest (in the
-- object store, which Synaps does not trust) said where; PostgreSQL recorded one checksum for
-- the whole object. So GET /v1/runs/{id}/archive downloaded, checked and kept in memory the
-- whole segment (up to 1000 runs) to answer one run. Each archived run's row now records its
-- member: the byte offset and compressed length in the data object and the SHA-256 of those
-- bytes. A reader fetches exactly that range (an HTTP Range GET on S3), checks it against this
-- checksum, and inflates at most a cap (src/history/archive.h). Rows of archives written before
-- this migration have none of the three: their segment is read whole, as before.

ALTER TABLE synaps.archived_runs
  ADD COLUMN data_offset bigint,
  ADD COLUMN data_length bigint,
  ADD COLUMN sha256 text,
  ADD CONSTRAINT archived_runs_member_check CHECK (
    (data_offset IS NULL AND data_length IS NULL AND sha256 IS NULL)
    OR (data_offset >= 0 AND data_length > 0 AND sha256 ~ '^[0-9a-f]{64}$'));
