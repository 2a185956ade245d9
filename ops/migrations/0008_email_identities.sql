-- Engage's emails as identities (an Engage call for an email-only profile; an identify
-- with a userId and an email joins them): kept as anonymous ids are, in a table of their
-- own so that anonymous_ids keeps meaning anonymous ids. Tombstones and free-email blocks
-- may name an email. The checks are replaced NOT VALID (no scan of the rows: the old
-- ones hold for every row already).

CREATE TABLE email_identities (
    workspace_id  bigint NOT NULL,
    email         text NOT NULL,
    user_pk       bigint NOT NULL,
    version       text NOT NULL DEFAULT '',
    PRIMARY KEY (workspace_id, email)
);
CREATE INDEX email_identities_user ON email_identities (workspace_id, user_pk);

ALTER TABLE tombstones DROP CONSTRAINT tombstones_kind_check,
    ADD CONSTRAINT tombstones_kind_check
        CHECK (kind IN ('user_id', 'anonymous_id', 'email')) NOT VALID;
ALTER TABLE blocked_identities DROP CONSTRAINT blocked_identities_kind_check,
    ADD CONSTRAINT blocked_identities_kind_check
        CHECK (kind IN ('user_id', 'anonymous_id', 'email')) NOT VALID;
