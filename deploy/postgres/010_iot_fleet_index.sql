-- OrleansIot schema 010: the fleet index (AWS fleet indexing, the AWS_Things index) and dynamic thing groups.
-- A registered thing has a row in each of three tables, one per part of its entry, each written by what changes it:
-- iot_fleet_index (registry), iot_fleet_index_shadow, iot_fleet_index_connectivity. Separate tables, so a shadow
-- update rewrites one small row and its own indexes only (in one table, every update re-inserted the row into all
-- six indexes: 30% of shadow throughput). Each row has its document (what a search returns, NULL while the part is
-- empty) and its fields: {"path":[values…]} with text in lower case, arrays flattened and the values an unqualified
-- term searches under the key "". GIN (jsonb_ops) answers containment (field:value) and key existence (field:*);
-- wildcards and ranges test the field's elements. Only things with a registry document are returned. Names are in
-- "C" collation: pages go in code-point order along the primary keys, and the tables merge-join on them. Idempotent.

CREATE TABLE IF NOT EXISTS iot_fleet_index (
    thing_name  text COLLATE "C" PRIMARY KEY,
    document    jsonb,
    fields      jsonb       NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Name prefixes (thingName:abc*): lower(thing_name) equals the indexed thingName value (thing names are ASCII).
CREATE INDEX IF NOT EXISTS iot_fleet_index_lower_name ON iot_fleet_index (lower(thing_name) text_pattern_ops);
CREATE INDEX IF NOT EXISTS iot_fleet_index_fields ON iot_fleet_index USING gin (fields);

CREATE TABLE IF NOT EXISTS iot_fleet_index_shadow (
    thing_name  text COLLATE "C" PRIMARY KEY,
    document    jsonb,
    fields      jsonb       NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS iot_fleet_index_shadow_fields ON iot_fleet_index_shadow USING gin (fields);

CREATE TABLE IF NOT EXISTS iot_fleet_index_connectivity (
    thing_name  text COLLATE "C" PRIMARY KEY,
    document    jsonb,
    fields      jsonb       NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS iot_fleet_index_connectivity_fields ON iot_fleet_index_connectivity USING gin (fields);

-- A dynamic thing group keeps its query; its members are rows of iot_thing_group_members like a static group's.
ALTER TABLE iot_thing_groups ADD COLUMN IF NOT EXISTS query_string text;
