-- migrate: without a transaction
-- An account's events and page views, found without reading the whole table when an
-- Account Deleted lets go of them. Built CONCURRENTLY: writers are not held while it builds
-- (a plain CREATE INDEX would block every insert for as long as the build takes). A failed
-- build leaves an invalid index, dropped by the next attempt.
DROP INDEX CONCURRENTLY IF EXISTS events_account;
CREATE INDEX CONCURRENTLY events_account ON events (workspace_id, account_pk)
    WHERE account_pk IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS page_views_account;
CREATE INDEX CONCURRENTLY page_views_account ON page_views (workspace_id, account_pk)
    WHERE account_pk IS NOT NULL;
