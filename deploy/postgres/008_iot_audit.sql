-- OrleansIot schema 008: the audit log of control-plane calls (who, operation, target, time, source, outcome).
-- Append-only; queried newest first by time, optionally by operation or principal. Idempotent.

CREATE TABLE IF NOT EXISTS iot_audit (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL,
    principal   text        NOT NULL,
    operation   text        NOT NULL,
    target      text        NOT NULL,
    source      text        NOT NULL,
    status      integer     NOT NULL
);

CREATE INDEX IF NOT EXISTS iot_audit_at ON iot_audit (at);
