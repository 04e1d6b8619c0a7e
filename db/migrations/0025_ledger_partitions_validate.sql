-- Partitioning the ledger by time, step 2 of 3 (see 0024): validates the legacy bound. This scans
-- the ledger once, under a SHARE UPDATE EXCLUSIVE lock: reads and appends go on meanwhile.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'ledger_events_legacy_bound'
                                           AND conrelid = 'synaps.ledger_events'::regclass) THEN
    ALTER TABLE synaps.ledger_events VALIDATE CONSTRAINT ledger_events_legacy_bound;
  END IF;
END $$;
