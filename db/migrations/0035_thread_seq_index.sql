-- Thread turns look a run up by its place in its thread (issue #15; review of 0027): the
-- release trigger on every run's finish, thread_history inside every claim of a threaded task,
-- and the busy check at submit all filter runs by (thread_id, thread_seq). Until now they used
-- runs_thread_idx (thread_id, created_at) and scanned every run of the thread, so a thread's
-- cost grew with its length on each claim. This index replaces it: the runs list filtered by
-- thread (ordered by created_at) sorts that thread's runs instead, and a submit still maintains
-- one index on runs for threads (no more write-ahead log per submit).
--
-- Not CONCURRENTLY (migrations run in a transaction): runs is locked against writes while the
-- index builds, about a second per million runs.
CREATE INDEX runs_thread_seq_idx ON synaps.runs (thread_id, thread_seq);
DROP INDEX synaps.runs_thread_idx;
