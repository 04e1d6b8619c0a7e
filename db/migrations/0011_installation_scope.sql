-- The installation scope (docs/security.md, "Tenancy and the control registry"). The control
-- registry is installation-wide: a route matching tenant `ta` steers tenant `ta`'s prompts, so
-- writing it is not a tenant's business. A key with `installation` set may write the registry
-- and act across tenants; every other key acts inside its own tenant only. Only the bootstrap
-- token or another installation key may create one (src/api/handlers_queue.cpp).
ALTER TABLE synaps.api_keys ADD COLUMN installation boolean NOT NULL DEFAULT false;
