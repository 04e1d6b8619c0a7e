-- The JWT deny-list (docs/security.md, "Revocation"). A JWT whose `jti` is listed here is
-- refused by every API process (each keeps the list in memory, reloaded every few seconds).
-- An entry is needed only until the token would expire anyway (`expires_at`, the token's exp);
-- the API deletes entries past it. Written by POST /v1/auth/revocations (installation admins).
CREATE TABLE synaps.revoked_tokens (
  jti         text PRIMARY KEY CHECK (char_length(jti) BETWEEN 1 AND 256),
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz NOT NULL DEFAULT now(),
  revoked_by  text NOT NULL,
  reason      text
);
CREATE INDEX revoked_tokens_expires_at_idx ON synaps.revoked_tokens (expires_at);
