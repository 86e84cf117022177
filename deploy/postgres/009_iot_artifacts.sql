-- OrleansIot schema 009: artifacts' bytes (firmware and other files devices download), in chunks of 1 MiB so a
-- download reads only the chunks of its range and no row is large. The metadata (name, size, SHA-256, downloads) is
-- grain state. An upload replaces the chunks in one transaction: readers see the old bytes or the new, never a mix.
-- Idempotent.

CREATE TABLE IF NOT EXISTS iot_artifact_chunks (
    artifact_id text    NOT NULL,
    chunk       integer NOT NULL,          -- byte offset / 1 MiB
    data        bytea   NOT NULL,
    PRIMARY KEY (artifact_id, chunk)
);
