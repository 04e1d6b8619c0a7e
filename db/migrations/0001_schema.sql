-- Synaps data model (see docs/architecture.md). Every table of the design lives in schema
-- `synaps`; later migrations add columns and functions, never rewrite this file.

CREATE SCHEMA IF NOT EXISTS synaps;

-- A conversation. Later commands on the same thread see its earlier turns.
CREATE TABLE synaps.threads (
  id          uuid PRIMARY KEY,
  tenant_id   text NOT NULL,
  title       text,
  metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX threads_tenant_idx ON synaps.threads (tenant_id, created_at DESC);

-- What a client asked for. `response` is the submit answer replayed for a repeated
-- Idempotency-Key; `request_hash` detects the same key sent with another body.
CREATE TABLE synaps.commands (
  id               uuid PRIMARY KEY,
  tenant_id        text NOT NULL,
  thread_id        uuid NOT NULL REFERENCES synaps.threads (id),
  kind             text NOT NULL,
  payload          jsonb NOT NULL,
  idempotency_key  text,
  request_hash     text NOT NULL,
  response         jsonb,
  submitted_by     text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT commands_idempotency_key_uq UNIQUE (tenant_id, idempotency_key)
);

CREATE TABLE synaps.runs (
  id           uuid PRIMARY KEY,
  command_id   uuid NOT NULL REFERENCES synaps.commands (id),
  thread_id    uuid NOT NULL REFERENCES synaps.threads (id),
  tenant_id    text NOT NULL,
  status       text NOT NULL DEFAULT 'queued'
               CHECK (status IN ('queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'cancelled')),
  error        jsonb,
  -- Last ledger sequence number handed out for this run (see synaps.append_event).
  last_seq     bigint NOT NULL DEFAULT 0,
  created_at   timestamptz NOT NULL DEFAULT now(),
  started_at   timestamptz,
  finished_at  timestamptz
);
CREATE INDEX runs_tenant_created_idx ON synaps.runs (tenant_id, created_at DESC, id DESC);
CREATE INDEX runs_thread_idx ON synaps.runs (thread_id, created_at);
CREATE INDEX runs_command_idx ON synaps.runs (command_id);

CREATE TABLE synaps.tasks (
  id            uuid PRIMARY KEY,
  run_id        uuid NOT NULL REFERENCES synaps.runs (id),
  tenant_id     text NOT NULL,
  name          text NOT NULL,
  kind          text NOT NULL,
  spec          jsonb NOT NULL,           -- the execution plan
  status        text NOT NULL DEFAULT 'queued'
                CHECK (status IN ('waiting', 'queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'cancelled')),
  attempt       integer NOT NULL DEFAULT 0,
  max_attempts  integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
  depends_on    text[] NOT NULL DEFAULT '{}',
  output        jsonb,
  error         jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  finished_at   timestamptz,
  CONSTRAINT tasks_run_name_uq UNIQUE (run_id, name)
);

-- The hot table. Only unfinished work lives here: a completed item is deleted in the same
-- transaction that records its completion, so the claim path never walks history.
CREATE TABLE synaps.queue_items (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id           uuid NOT NULL UNIQUE REFERENCES synaps.tasks (id),
  run_id            uuid NOT NULL,
  tenant_id         text NOT NULL,
  queue             text NOT NULL DEFAULT 'default',
  priority          integer NOT NULL DEFAULT 0,
  -- When the item can next be claimed: for a ready item its (possibly delayed) start, for a
  -- leased item the moment its lease expires. One column, one index, for both.
  available_at      timestamptz NOT NULL DEFAULT now(),
  status            text NOT NULL DEFAULT 'ready' CHECK (status IN ('waiting', 'ready', 'leased', 'cancelled', 'dead')),
  lease_owner       text,
  lease_epoch       bigint NOT NULL DEFAULT 0,
  lease_expires_at  timestamptz,
  attempts          integer NOT NULL DEFAULT 0,
  max_attempts      integer NOT NULL DEFAULT 3,
  last_error        jsonb,
  created_at        timestamptz NOT NULL DEFAULT now()
) WITH (
  fillfactor = 70,
  autovacuum_vacuum_scale_factor = 0.0,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_vacuum_cost_delay = 0,
  autovacuum_analyze_scale_factor = 0.0,
  autovacuum_analyze_threshold = 1000
);
CREATE INDEX queue_items_claim_idx ON synaps.queue_items (queue, priority DESC, available_at, id)
  WHERE status IN ('ready', 'leased');
CREATE INDEX queue_items_run_idx ON synaps.queue_items (run_id);

-- Append-only history of a run. `seq` is dense per run.
CREATE TABLE synaps.ledger_events (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id      uuid NOT NULL REFERENCES synaps.runs (id),
  task_id     uuid REFERENCES synaps.tasks (id),
  seq         bigint NOT NULL,
  type        text NOT NULL,
  attempt     integer,
  data        jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT ledger_events_run_seq_uq UNIQUE (run_id, seq)
);
-- A task attempt completes at most once, whatever the workers do.
CREATE UNIQUE INDEX ledger_events_task_completed_uq ON synaps.ledger_events (task_id, attempt)
  WHERE type = 'task.completed';

CREATE FUNCTION synaps.refuse_ledger_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'synaps.ledger_events is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER ledger_events_append_only
  BEFORE UPDATE OR DELETE ON synaps.ledger_events
  FOR EACH ROW EXECUTE FUNCTION synaps.refuse_ledger_change();
CREATE TRIGGER ledger_events_no_truncate
  BEFORE TRUNCATE ON synaps.ledger_events
  FOR EACH STATEMENT EXECUTE FUNCTION synaps.refuse_ledger_change();

-- Named outputs, versioned per (thread, name).
CREATE TABLE synaps.artifacts (
  id            uuid PRIMARY KEY,
  tenant_id     text NOT NULL,
  run_id        uuid NOT NULL REFERENCES synaps.runs (id),
  task_id       uuid REFERENCES synaps.tasks (id),
  thread_id     uuid NOT NULL REFERENCES synaps.threads (id),
  name          text NOT NULL,
  content_type  text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT artifacts_thread_name_uq UNIQUE (thread_id, name)
);
CREATE INDEX artifacts_run_idx ON synaps.artifacts (run_id);

CREATE TABLE synaps.artifact_versions (
  artifact_id  uuid NOT NULL REFERENCES synaps.artifacts (id),
  version      integer NOT NULL,
  run_id       uuid NOT NULL REFERENCES synaps.runs (id),
  task_id      uuid REFERENCES synaps.tasks (id),
  object_key   text NOT NULL,
  size         bigint NOT NULL,
  sha256       text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (artifact_id, version)
);
CREATE INDEX artifact_versions_run_idx ON synaps.artifact_versions (run_id);

-- Messages to publish on NATS, written in the transaction that caused them.
CREATE TABLE synaps.outbox (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subject       text NOT NULL,
  payload       jsonb NOT NULL,
  msg_id        text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  published_at  timestamptz
) WITH (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 1000);
CREATE INDEX outbox_unpublished_idx ON synaps.outbox (id) WHERE published_at IS NULL;

-- Control registry: every change is a new version of an item and one control_change row,
-- whose id is the snapshot version.
CREATE TABLE synaps.control_items (
  kind        text NOT NULL CHECK (kind IN ('prompts', 'skills', 'tools', 'routes', 'arbiters')),
  name        text NOT NULL,
  version     integer NOT NULL,
  spec        jsonb,
  deleted     boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kind, name, version)
);

CREATE TABLE synaps.control_change (
  id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind     text NOT NULL,
  name     text NOT NULL,
  version  integer NOT NULL,
  action   text NOT NULL CHECK (action IN ('put', 'delete', 'rollback')),
  actor    text NOT NULL,
  reason   text NOT NULL,
  at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE synaps.api_keys (
  id          uuid PRIMARY KEY,
  tenant_id   text NOT NULL,
  role        text NOT NULL CHECK (role IN ('admin', 'operator', 'worker', 'viewer')),
  name        text,
  hash        text NOT NULL UNIQUE,   -- hex SHA-256 of the token; the token itself is never stored
  created_by  text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

CREATE TABLE synaps.audit_log (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id  text NOT NULL,
  actor      text NOT NULL,
  action     text NOT NULL,
  target     text NOT NULL,
  data       jsonb NOT NULL DEFAULT '{}'::jsonb,
  at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE synaps.workers (
  id            uuid PRIMARY KEY,
  name          text NOT NULL,
  pod           text,
  namespace     text,
  queues        text[] NOT NULL,
  version       text NOT NULL,
  concurrency   integer NOT NULL,
  in_flight     integer NOT NULL DEFAULT 0,
  started_at    timestamptz NOT NULL DEFAULT now(),
  heartbeat_at  timestamptz NOT NULL DEFAULT now(),
  stopped_at    timestamptz
);
