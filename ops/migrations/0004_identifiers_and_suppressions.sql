-- A workspace's own unusable identifier values (on top of the built-in list), and the
-- userIds whose calls receivers skip. Values are kept as compared: trimmed, case folded.

CREATE TABLE blocked_identifiers (
    workspace_id  bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    value         text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, value)
);

CREATE TABLE suppressions (
    workspace_id  bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id       text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, user_id)
);
