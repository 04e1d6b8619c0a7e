-- Control registry (see docs/control.md): writes through synaps.control_write(), snapshots
-- through synaps.control_snapshot().
--
-- Every change is one synaps.control_change row, whose id is the snapshot version, and one new
-- version of the item in synaps.control_items, written in one transaction together with an
-- outbox row `synaps.ctrl.<kind>`. Writers serialize on one transaction-scoped advisory lock,
-- so change ids become visible in id order: once version N can be read, no change with a lower
-- id can commit later, and the snapshot at N never changes again.

-- The tenant of the token that made the change (the registry itself is installation-wide).
ALTER TABLE synaps.control_change ADD COLUMN actor_tenant text;

-- One change per item version; the history of one item, and of one actor, newest first.
ALTER TABLE synaps.control_change
  ADD CONSTRAINT control_change_item_version_uq UNIQUE (kind, name, version);
CREATE INDEX control_change_item_idx ON synaps.control_change (kind, name, id);
CREATE INDEX control_change_actor_idx ON synaps.control_change (actor, id);

-- A tombstone carries no spec; every other version does.
ALTER TABLE synaps.control_items
  ADD CONSTRAINT control_items_spec_ck CHECK (deleted OR spec IS NOT NULL);

-- History is the point of the registry: both tables refuse UPDATE, DELETE and TRUNCATE.
CREATE FUNCTION synaps.refuse_control_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'synaps.% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER control_items_append_only
  BEFORE UPDATE OR DELETE ON synaps.control_items
  FOR EACH ROW EXECUTE FUNCTION synaps.refuse_control_change();
CREATE TRIGGER control_items_no_truncate
  BEFORE TRUNCATE ON synaps.control_items
  FOR EACH STATEMENT EXECUTE FUNCTION synaps.refuse_control_change();
CREATE TRIGGER control_change_append_only
  BEFORE UPDATE OR DELETE ON synaps.control_change
  FOR EACH ROW EXECUTE FUNCTION synaps.refuse_control_change();
CREATE TRIGGER control_change_no_truncate
  BEFORE TRUNCATE ON synaps.control_change
  FOR EACH STATEMENT EXECUTE FUNCTION synaps.refuse_control_change();

-- The latest snapshot version (0 before the first change).
CREATE FUNCTION synaps.control_version() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT coalesce(max(id), 0) FROM synaps.control_change
$$;

-- The effective snapshot at version p_version: for every item, its latest version whose change
-- id is <= p_version, unless that version is a tombstone.
CREATE FUNCTION synaps.control_snapshot(p_version bigint)
RETURNS TABLE (kind text, name text, version integer, spec jsonb, change_id bigint)
LANGUAGE sql STABLE AS $$
  SELECT l.kind, l.name, l.version, i.spec, l.id
    FROM (SELECT DISTINCT ON (c.kind, c.name) c.kind, c.name, c.version, c.id
            FROM synaps.control_change c
           WHERE c.id <= p_version
           ORDER BY c.kind, c.name, c.id DESC) l
    JOIN synaps.control_items i ON (i.kind, i.name, i.version) = (l.kind, l.name, l.version)
   WHERE NOT i.deleted
   ORDER BY l.kind, l.name
$$;

-- Writes one change. p_action:
--   'put'      stores p_spec as the next version; a spec equal (as jsonb) to the current one
--              writes nothing and answers the current version with changed = false;
--   'delete'   stores a tombstone; refused when the item does not exist or is deleted;
--   'rollback' stores a copy of version p_to_version's spec as the next version (also when the
--              item is deleted, which restores it); a copy equal to the current spec writes
--              nothing, like a put.
-- The spec is validated by the caller (src/control/spec.h) before it gets here.
-- Returns {kind, name, version, snapshotVersion, changed, created, outbox?: {id, subject,
-- payload, msgId}} or {error: not_found | version_not_found | version_deleted, ...}.
CREATE FUNCTION synaps.control_write(p_kind text, p_name text, p_action text, p_spec jsonb,
                                     p_to_version integer, p_actor text, p_actor_tenant text,
                                     p_reason text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_current  synaps.control_items;
  v_old      synaps.control_items;
  v_spec     jsonb := p_spec;
  v_deleted  boolean := false;
  v_version  integer;
  v_change   bigint;
  v_payload  jsonb;
  v_outbox   jsonb;
BEGIN
  -- Serializes all control writes until commit (see the top of this file). The key is an
  -- arbitrary constant naming "Synaps control registry" among advisory locks.
  PERFORM pg_advisory_xact_lock(7340032018);

  SELECT * INTO v_current FROM synaps.control_items
   WHERE kind = p_kind AND name = p_name ORDER BY version DESC LIMIT 1;

  IF p_action = 'delete' THEN
    IF v_current.version IS NULL OR v_current.deleted THEN
      RETURN jsonb_build_object('error', 'not_found');
    END IF;
    v_spec := NULL;
    v_deleted := true;
  ELSIF p_action = 'rollback' THEN
    SELECT * INTO v_old FROM synaps.control_items
     WHERE kind = p_kind AND name = p_name AND version = p_to_version;
    IF NOT FOUND THEN
      RETURN jsonb_build_object('error', 'version_not_found',
                                'latest', coalesce(v_current.version, 0));
    END IF;
    IF v_old.deleted THEN
      RETURN jsonb_build_object('error', 'version_deleted');
    END IF;
    v_spec := v_old.spec;
  ELSIF p_action <> 'put' THEN
    RAISE EXCEPTION 'control_write: unknown action %', p_action USING ERRCODE = 'invalid_parameter_value';
  END IF;

  IF NOT v_deleted AND v_current.version IS NOT NULL AND NOT v_current.deleted
     AND v_current.spec = v_spec THEN
    RETURN jsonb_build_object('kind', p_kind, 'name', p_name, 'version', v_current.version,
                              'snapshotVersion', synaps.control_version(),
                              'changed', false, 'created', false);
  END IF;

  v_version := coalesce(v_current.version, 0) + 1;
  INSERT INTO synaps.control_change (kind, name, version, action, actor, actor_tenant, reason)
  VALUES (p_kind, p_name, v_version, p_action, p_actor, p_actor_tenant, p_reason)
  RETURNING id INTO v_change;
  INSERT INTO synaps.control_items (kind, name, version, spec, deleted)
  VALUES (p_kind, p_name, v_version, v_spec, v_deleted);

  v_payload := jsonb_build_object('kind', p_kind, 'name', p_name, 'version', v_version,
                                  'snapshotVersion', v_change);
  INSERT INTO synaps.outbox (subject, payload)
  VALUES ('synaps.ctrl.' || p_kind, v_payload)
  RETURNING jsonb_build_object('id', id, 'subject', subject, 'payload', payload, 'msgId', msg_id)
    INTO v_outbox;

  RETURN v_payload || jsonb_build_object(
    'changed', true,
    'created', v_current.version IS NULL OR v_current.deleted,
    'outbox', v_outbox);
END $$;
