-- Account Removed User and Account Deleted (Segment's B2B spec) are remembered at their
-- call's version, as a user's delete is, so that older calls arriving later do not bring
-- back what they ended; newer ones do. Account audiences are Engage's audiences of
-- accounts. New tables, and one column with a constant default (no table rewrite).

ALTER TABLE accounts ADD COLUMN touched_version text NOT NULL DEFAULT '';  -- newest call naming it

-- The newest Account Removed User for a membership: the membership stands only when a
-- call that made it is newer.
CREATE TABLE account_user_endings (
    workspace_id  bigint NOT NULL,
    account_pk    bigint NOT NULL,
    user_pk       bigint NOT NULL,
    version       text NOT NULL,
    PRIMARY KEY (workspace_id, account_pk, user_pk)
);
CREATE INDEX account_user_endings_user ON account_user_endings (workspace_id, user_pk);

-- The newest Account Deleted of a group: calls older than it take nothing to the account.
CREATE TABLE account_tombstones (
    workspace_id  bigint NOT NULL,
    group_id      text NOT NULL,
    version       text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, group_id)
);

CREATE TABLE account_audience_memberships (
    workspace_id       bigint NOT NULL,
    account_pk         bigint NOT NULL,
    audience_key       text NOT NULL,
    member             boolean NOT NULL,
    computation_class  text,
    computation_id     text,
    space_id           text,
    version            text NOT NULL,
    updated_at         timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, account_pk, audience_key)
);
