-- OrleansIot schema 002: retained MQTT messages, shared by all nodes. One row per topic; a cleared topic keeps
-- its row with a NULL payload (a tombstone), so an older set arriving late cannot bring it back. Writes are
-- newest-wins on (modified_at, origin_node). Idempotent.

CREATE TABLE IF NOT EXISTS iot_retained_messages (
    topic            text        PRIMARY KEY,
    payload          bytea,                  -- NULL: cleared
    qos              integer     NOT NULL DEFAULT 0,
    sender_client_id text        NOT NULL DEFAULT '',
    content_type     text,
    response_topic   text,
    correlation_data bytea,
    user_properties  jsonb,                  -- [{"name": "...", "value": "<base64>"}]
    message_expiry   bigint      NOT NULL DEFAULT 0,
    payload_format   integer     NOT NULL DEFAULT 0,
    modified_at      timestamptz NOT NULL,
    origin_node      text        NOT NULL
);
