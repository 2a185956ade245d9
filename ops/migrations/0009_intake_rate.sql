-- A workspace's own intake rate in calls per second (contract 7.8); NULL follows the
-- receivers' WORKSPACE_CALLS_PER_SECOND. Adding a nullable column without a default
-- only touches the catalog, so it takes its lock for milliseconds on a live database.

ALTER TABLE workspaces
    ADD COLUMN calls_per_second integer CHECK (calls_per_second > 0);

-- Live receivers, each writing its row as it reloads keys: a receiver enforces its share
-- of each rate, the rate divided by how many wrote in the last few seconds. Operational,
-- not a workspace's data: the one table besides workspaces without workspace_id.
CREATE TABLE receivers (
    id       uuid PRIMARY KEY,
    seen_at  timestamptz NOT NULL
);
