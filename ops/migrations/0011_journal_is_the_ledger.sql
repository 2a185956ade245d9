-- The call journal becomes the record of what was applied: a worker claims a call by
-- writing its journal row (the first to insert a (workspace, messageId) applies it), one
-- insert and one primary key per call where there were two. It keeps messageIds for good,
-- where processed_messages kept them 8 days, so a replay of any age applies nothing twice.
--
-- messageIds applied before the journal began (migration 10) and still in
-- processed_messages are carried over as rows that name no identity, which no rebuild
-- reads (found by processed_at: every later call is in the journal already). Workers of
-- this release no longer read or write processed_messages; workers of the release before
-- still do during a roll, and journal every call they apply as well, so nothing is
-- applied twice. (If a call a new worker applied is delivered again to an old one, the
-- old one's journal insert conflicts; after its retries the call goes to the dead-letter
-- topic, and replaying it from there is a duplicate that changes nothing.) The table is
-- dropped by a later release.
INSERT INTO call_journal (workspace_id, message_id, identities, version, body)
SELECT workspace_id, message_id, '{}', '', ''
  FROM processed_messages
 WHERE processed_at < (SELECT applied_at FROM schema_migrations WHERE version = 10)
ON CONFLICT DO NOTHING;

-- When each call was applied (rows journaled before this migration get its time). A
-- default that is not volatile only touches the catalog: the table's lock is held for
-- milliseconds. Last, so that it is held only until the commit just after.
ALTER TABLE call_journal ADD COLUMN applied_at timestamptz NOT NULL DEFAULT now();
