-- OrleansIot schema 006: durable named queues (the rules' queue action; our SQS). A message stays until a consumer
-- deletes it with the receipt of its latest receive; receiving hides it until visible_at, after which it is
-- delivered again (at least once). message_id makes a resent message (a redelivered stream message) land once.
-- Idempotent.

CREATE TABLE IF NOT EXISTS iot_queue_messages (
    queue_name     text        NOT NULL,
    message_id     uuid        NOT NULL,
    seq            bigserial   NOT NULL,          -- send order
    body           bytea       NOT NULL,
    sent_at        timestamptz NOT NULL DEFAULT now(),
    visible_at     timestamptz NOT NULL DEFAULT now(),
    receive_count  integer     NOT NULL DEFAULT 0,
    receipt        uuid,                          -- of the latest receive; deleting needs it
    PRIMARY KEY (queue_name, message_id)
);

CREATE INDEX IF NOT EXISTS iot_queue_messages_next ON iot_queue_messages (queue_name, seq);
