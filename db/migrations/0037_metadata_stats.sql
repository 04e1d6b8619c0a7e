-- Statistics on the metadata the runs list searches (issue #14; GET /v1/runs?metadata=k=v).
--
-- 0032 made commands_metadata a partial index (only commands that have metadata). PostgreSQL's
-- planner does not read the statistics of a partial index's expression, so it estimated every
-- metadata containment at its default selectivity (~1% of the tenant's runs) and walked the
-- newest runs checking each one: a key matching one old run among 100,000 took 1.0 s (was 40 ms
-- with 0020's full index). Extended statistics on the expression (PostgreSQL 14+) give the
-- planner the values back: the same search takes 67 ms through the index, one matching nothing
-- 25 ms. They cost ANALYZE time only, nothing per submit.
CREATE STATISTICS synaps.commands_metadata_stats ON (payload->'metadata') FROM synaps.commands;
ANALYZE synaps.commands;
