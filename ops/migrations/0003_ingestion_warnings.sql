-- Ingestion warnings: what the receivers and workers dropped or changed in calls they
-- still applied, for a person to read (`sextant warnings`). Kept 30 days.

CREATE TABLE ingestion_warnings (
    id            bigint GENERATED ALWAYS AS IDENTITY,
    workspace_id  bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind          text NOT NULL,
    message_id    text,
    user_id       text,
    anonymous_id  text,
    detail        jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, id)
);
-- Newest first, for a workspace and optionally a kind; and by age, for retention.
CREATE INDEX ingestion_warnings_newest ON ingestion_warnings (workspace_id, created_at DESC, id DESC);
CREATE INDEX ingestion_warnings_kind ON ingestion_warnings (workspace_id, kind, created_at DESC, id DESC);
CREATE INDEX ingestion_warnings_age ON ingestion_warnings (created_at);

-- How many warnings of each kind a workspace's calls received in a minute caused. Only
-- the first 100 of each become rows above; every one is counted here.
CREATE TABLE ingestion_warning_tallies (
    workspace_id  bigint NOT NULL,
    kind          text NOT NULL,
    minute        timestamptz NOT NULL,
    seen          bigint NOT NULL,
    PRIMARY KEY (workspace_id, kind, minute)
);
CREATE INDEX ingestion_warning_tallies_age ON ingestion_warning_tallies (minute);
