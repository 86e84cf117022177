-- OrleansIot schema 003: device shadows, one row per thing and shadow name ('' is the classic shadow).
-- A deleted shadow keeps its row with a NULL document, so its version sequence continues if it is created again.
-- Every write names the revision it replaces (revision = stored + 1), so two activations of one thing can never
-- both advance a shadow. Idempotent.

CREATE TABLE IF NOT EXISTS iot_shadows (
    thing_name      text        NOT NULL,
    shadow_name     text        NOT NULL,        -- '' = classic shadow
    version         bigint      NOT NULL,        -- AWS version: +1 per accepted update, kept by a delete
    revision        bigint      NOT NULL,        -- storage revision: +1 per write (updates and deletes)
    document        jsonb,                       -- {"state":{…},"metadata":{…},"timestamp":T}; NULL while deleted
    deleted_at_ms   bigint,                      -- epoch ms of the delete
    client_tokens   jsonb,                       -- recent accepted updates by client token (effectively once)
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (thing_name, shadow_name)
);
