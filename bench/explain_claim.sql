-- One probe claim on a kept history database (BENCH_KEEP=1, bench/notes/history.md), explained
-- with its nested statements (auto_explain, sent to the client as NOTICEs), rolled back:
--   psql -h 127.0.0.1 -p PORT -U postgres DB -f bench/explain_claim.sql
\set ON_ERROR_STOP on
\timing on
SELECT count(*) AS queue_rows FROM synaps.queue_items;
SELECT n_live_tup, n_dead_tup, last_vacuum, last_autovacuum FROM pg_stat_user_tables
 WHERE schemaname = 'synaps' AND relname = 'queue_items';
BEGIN;
SELECT count(synaps.submit_command('bench', 'bench', NULL, 'x' || g,
  jsonb_build_object('kind', 'prompt',
   'payload', jsonb_build_object('kind', 'prompt', 'input', jsonb_build_object('text', 'n' || g)),
   'queue', 'probe', 'priority', 0, 'maxAttempts', 3,
   'tasks', jsonb_build_array(jsonb_build_object('name', 'main', 'kind', 'prompt',
    'spec', jsonb_build_object('kind', 'prompt', 'input', jsonb_build_object('text', 'n' || g)),
    'dependsOn', '[]'::jsonb)))))
 FROM generate_series(1, 2) g;
-- warm-up claim (plans cached, as the benchmark's 300 probes are)
SELECT item_id FROM synaps.claim_queue_items('probe', ARRAY['probe'], 1, 300);
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_timing = on;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;
EXPLAIN (ANALYZE, BUFFERS) SELECT item_id FROM synaps.claim_queue_items('probe', ARRAY['probe'], 1, 300);
ROLLBACK;
