-- Events and page views belong to the account of their call's context.groupId (Segment's
-- B2B spec). Nullable columns without a default: added without rewriting the tables or
-- holding their locks for longer than the catalog change.

ALTER TABLE events ADD COLUMN account_pk bigint;
ALTER TABLE page_views ADD COLUMN account_pk bigint;
