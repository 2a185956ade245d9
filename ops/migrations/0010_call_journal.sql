-- Every call a worker claims, as it decoded it. Most calls apply where they stand: their
-- effects commute (last-writer-wins, sets, counters). A few decide what other calls mean:
-- a delete, an anonymous id claimed by two userIds, a free or work email. When one of
-- those arrives after calls newer than itself, the users it touches are rebuilt from
-- their calls here, in call-time order, so the rows never depend on arrival order.
-- `identities` holds 'kind:value' for each identity a call names (kind: user_id,
-- anonymous_id, email); a deleted user's calls keep only what names them.
CREATE TABLE call_journal (
    workspace_id  bigint NOT NULL,
    message_id    text NOT NULL,
    identities    text[] NOT NULL,
    version       text NOT NULL,
    body          bytea NOT NULL,
    PRIMARY KEY (workspace_id, message_id)
);
CREATE INDEX call_journal_identities ON call_journal USING gin (identities);

-- A delete removes what the receivers accepted before it, whatever time those carry.
ALTER TABLE tombstones ADD COLUMN received_at timestamptz;

-- A free-email status is kept once lifted (blocked false), from the identify that set it
-- (version), with the newest call it ignored (newest): a call older than either arriving
-- late is judged again in call-time order.
ALTER TABLE blocked_identities
    ADD COLUMN blocked boolean NOT NULL DEFAULT true,
    ADD COLUMN newest text NOT NULL DEFAULT '';

-- A rebuild may find a warning for a call applied before (a claim it lost, a block it now
-- falls under): it records those the call does not have yet.
CREATE INDEX ingestion_warnings_message ON ingestion_warnings (workspace_id, message_id);
