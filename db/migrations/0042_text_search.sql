-- The runs list's text search with plans that do not hang on an estimate (issue #14;
-- GET /v1/runs?text=...). src/store/run_list.cpp reads a window of the newest runs first and asks
-- this function for the older ones.
--
-- Left to the planner, `lower(payload::text) LIKE '%words%'` was planned from ANALYZE's sample:
-- words matching a thin spread of old runs ("bench run 99": 1,111 of 100,000) were walked run by
-- run from the newest (627 ms) or found through the trigram index (14 ms) depending on the sample.
--
-- synaps.commands_matching(tenant, text, max): the ids of the commands whose payload, as text,
-- contains `text` (any case, taken literally: LIKE's wildcards and escape are escaped here), of
-- one tenant or of every tenant when `tenant` is NULL; at most `max` of them, in no order. Always read through the trigram index
-- commands_payload_trgm (sequential scans are off for this one statement, and the tenant test
-- can use no other index), so its cost follows the number of matches (up to `max`), never the
-- size of the history. Text without three letters or digits in a row has no trigram to look up (the whole
-- index would be read): callers walk the runs for such text instead.
CREATE FUNCTION synaps.commands_matching(p_tenant text, p_text text, p_max integer)
RETURNS SETOF uuid
LANGUAGE sql STABLE ROWS 100 SET enable_seqscan = off
AS $$
  SELECT c.id FROM synaps.commands c
   WHERE lower(c.payload::text)
         LIKE '%' || replace(replace(replace(lower(p_text), '\', '\\'), '%', '\%'), '_', '\_') || '%'
     AND (p_tenant IS NULL OR c.tenant_id = p_tenant)
   LIMIT p_max
$$;
