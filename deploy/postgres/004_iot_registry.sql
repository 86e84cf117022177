-- OrleansIot schema 004: the registry (things, thing types, static thing groups and their members), queryable for
-- AWS's list operations. Records are written by the thing, thing-type and thing-group grains; things and groups carry
-- a version, and every update is conditional on the version it replaces. Names compare and sort in "C" collation
-- (byte order), as the page tokens do. Idempotent.

CREATE TABLE IF NOT EXISTS iot_things (
    thing_name       text        PRIMARY KEY,
    thing_id         text        NOT NULL,
    thing_type_name  text,
    attributes       jsonb       NOT NULL DEFAULT '{}',
    version          bigint      NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS iot_things_type ON iot_things (thing_type_name, thing_name COLLATE "C");
CREATE INDEX IF NOT EXISTS iot_things_attributes ON iot_things USING gin (attributes);

CREATE TABLE IF NOT EXISTS iot_thing_types (
    thing_type_name       text        PRIMARY KEY,
    thing_type_id         text        NOT NULL,
    description           text,
    searchable_attributes text[]      NOT NULL DEFAULT '{}',
    deprecated            boolean     NOT NULL DEFAULT false,
    deprecated_at         timestamptz,
    created_at            timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS iot_thing_groups (
    thing_group_name  text        PRIMARY KEY,
    thing_group_id    text        NOT NULL,
    ancestors         text[]      NOT NULL DEFAULT '{}',   -- root first, down to the parent
    parent_group_name text,                                -- the last ancestor (indexed for "children of")
    description       text,
    attributes        jsonb       NOT NULL DEFAULT '{}',
    version           bigint      NOT NULL,
    created_at        timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS iot_thing_groups_parent ON iot_thing_groups (parent_group_name);
CREATE INDEX IF NOT EXISTS iot_thing_groups_ancestors ON iot_thing_groups USING gin (ancestors);

CREATE TABLE IF NOT EXISTS iot_thing_group_members (
    thing_group_name text NOT NULL REFERENCES iot_thing_groups (thing_group_name) ON DELETE CASCADE,
    thing_name       text NOT NULL REFERENCES iot_things (thing_name) ON DELETE CASCADE,
    PRIMARY KEY (thing_group_name, thing_name)
);
CREATE INDEX IF NOT EXISTS iot_thing_group_members_thing ON iot_thing_group_members (thing_name);
