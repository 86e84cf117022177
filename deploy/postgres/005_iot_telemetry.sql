-- OrleansIot schema 005: the analytics sink (rules' timeseries action). One row per (message, rule): the rule's
-- output as jsonb, filed under a thing at the time the gateway accepted the message. Partitioned by day (UTC) so
-- retention drops whole partitions instead of deleting rows; the sink creates each day's partition before it
-- writes into it. The primary key makes a redelivered message store nothing new and serves the queries
-- (one thing, a time range). Idempotent.

CREATE TABLE IF NOT EXISTS iot_telemetry (
    thing_name  text        NOT NULL,
    ts          timestamptz NOT NULL,        -- when the gateway accepted the message
    message_id  uuid        NOT NULL,
    rule_name   text        NOT NULL,
    topic       text        NOT NULL,
    payload     jsonb       NOT NULL,        -- the rule's output
    PRIMARY KEY (thing_name, ts, message_id, rule_name)
) PARTITION BY RANGE (ts);

-- Creates the partition of one UTC day unless it exists; silos that race take turns on a transaction lock.
CREATE OR REPLACE FUNCTION iot_telemetry_ensure_partition(day date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    name text := 'iot_telemetry_' || to_char(day, 'YYYYMMDD');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('iot_telemetry_partitions'));
    IF to_regclass(name) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF iot_telemetry FOR VALUES FROM (%L) TO (%L)',
                       name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
    END IF;
END $$;

-- Retention: drops the partitions of days that ended before the cut-off, deletes older rows of the day it falls
-- in, and returns how many partitions were dropped.
CREATE OR REPLACE FUNCTION iot_telemetry_drop_before(cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'iot_telemetry'::regclass AND c.relname ~ '^iot_telemetry_[0-9]{8}$'
    LOOP
        IF (to_date(substr(part.relname, 15), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= cutoff THEN
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    DELETE FROM iot_telemetry WHERE ts < cutoff;
    RETURN dropped;
END $$;
