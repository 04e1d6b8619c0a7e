-- runs gets fillfactor 50 (issue #13, write-ahead log per task).
--
-- A run's row is inserted whole by the submit and updated twice by the drain (the claim that
-- starts it, the completion that ends it). No indexed column changes, so each update can be a
-- HOT update, but only if the row's page has room for the new version, and a claim batch
-- updates many runs of one page in one transaction (their old versions cannot be pruned
-- before it commits). With full pages 41–67% of those updates were HOT, varying from run to
-- run, and every other one wrote an entry into each of the table's four indexes: in
-- bench/wal_probe.sh runs and its indexes cost 900–1,140 B of WAL per task. Measured on the
-- same machine, five runs at 70: 58–77% HOT, 780–980 B; three at 50: 92–94% HOT, 600–623 B.
-- The price is the table's size: about twice the rows' bytes (a run's row is not updated after
-- it ends, so the room stays free). Applies to pages written from now on.

ALTER TABLE synaps.runs SET (fillfactor = 50);
