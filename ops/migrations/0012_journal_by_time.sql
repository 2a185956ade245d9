-- migrate: without a transaction
-- What was applied in a span of time (`call_journal.applied_at`: `sextant`'s lag bench,
-- an operator asking what a worker wrote in the last minute), found without reading the
-- whole journal. A btree: times only grow, so each insert lands on the index's last page.
-- (A BRIN index was tried: until autovacuum summarises the newest pages, every query
-- read them all, tens of milliseconds a query on a journal a minute old.) Built
-- CONCURRENTLY: writers are not held while it builds. A failed build leaves an invalid
-- index, dropped by the next attempt.
DROP INDEX CONCURRENTLY IF EXISTS call_journal_applied;
CREATE INDEX CONCURRENTLY call_journal_applied ON call_journal (applied_at);
