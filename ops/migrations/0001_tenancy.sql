-- Workspaces, their connectors (one per Segment destination instance) and API keys.
-- Every key of a tenant table starts with workspace_id so the schema can be
-- distributed by workspace (Citus) when one Postgres is outgrown.

CREATE TABLE workspaces (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE connectors (
    id                      bigint GENERATED ALWAYS AS IDENTITY,
    workspace_id            bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                    text NOT NULL CHECK (name <> ''),
    block_free_email_users  boolean NOT NULL DEFAULT false,
    trusted_domains         text[] NOT NULL DEFAULT '{}',
    shared_secret           text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, name)
);

CREATE TABLE api_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY,
    workspace_id  bigint NOT NULL,
    connector_id  bigint NOT NULL,
    key_prefix    text NOT NULL,
    key_hash      text NOT NULL,           -- sha256 hex of the whole key; the key itself is never stored
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, key_hash),
    FOREIGN KEY (workspace_id, connector_id) REFERENCES connectors (workspace_id, id) ON DELETE CASCADE
);

CREATE INDEX api_keys_key_prefix ON api_keys (key_prefix);
