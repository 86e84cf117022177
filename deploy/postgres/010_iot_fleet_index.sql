-- OrleansIot schema 010: the fleet index (AWS fleet indexing, the AWS_Things index) and dynamic thing groups.
-- One row per thing, written by the thing's grain as it changes, in three parts: registry, shadows, connectivity.
-- Each part has its document (what a search returns) and its fields: {"path":[values…]} with text in lower case,
-- arrays flattened and the values an unqualified term searches under the key "". GIN (jsonb_ops) answers
-- containment (field:value) and key existence (field:*); wildcards and ranges test the field's elements.
-- A row without a registry part (a shadow of an unregistered thing) is never returned. Idempotent.

CREATE TABLE IF NOT EXISTS iot_fleet_index (
    thing_name           text        PRIMARY KEY,
    registry             jsonb,
    registry_fields      jsonb       NOT NULL DEFAULT '{}',
    shadow               jsonb,
    shadow_fields        jsonb       NOT NULL DEFAULT '{}',
    connectivity         jsonb,
    connectivity_fields  jsonb       NOT NULL DEFAULT '{}',
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS iot_fleet_index_name ON iot_fleet_index (thing_name COLLATE "C");
CREATE INDEX IF NOT EXISTS iot_fleet_index_registry ON iot_fleet_index USING gin (registry_fields);
CREATE INDEX IF NOT EXISTS iot_fleet_index_shadow ON iot_fleet_index USING gin (shadow_fields);
CREATE INDEX IF NOT EXISTS iot_fleet_index_connectivity ON iot_fleet_index USING gin (connectivity_fields);

-- A dynamic thing group keeps its query; its members are rows of iot_thing_group_members like a static group's.
ALTER TABLE iot_thing_groups ADD COLUMN IF NOT EXISTS query_string text;
