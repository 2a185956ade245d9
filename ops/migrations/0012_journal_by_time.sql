-- migrate: without a transaction
-- What was applied in a span of time (`call_journal.applied_at`), found without reading
-- the whole journal. BRIN: rows arrive in time order, so a summary per range of pages
-- finds them, at next to no cost per insert. Built CONCURRENTLY: writers are not held
-- while it builds. A failed build leaves an invalid index, dropped by the next attempt.
DROP INDEX CONCURRENTLY IF EXISTS call_journal_applied;
CREATE INDEX CONCURRENTLY call_journal_applied ON call_journal USING brin (applied_at);
