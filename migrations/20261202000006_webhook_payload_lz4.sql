-- Event payloads compressed with lz4 instead of pglz. An order's payload is over the 2 kB at
-- which PostgreSQL compresses a row, and a create with order webhooks writes up to two of
-- them: pglz was about a twentieth of the database's CPU under a create load with one
-- endpoint subscribed, and lz4 costs a small part of that for a little more space. Rows
-- written before keep pglz. A server built without lz4 keeps pglz for all.
DO $$
BEGIN
    ALTER TABLE webhook_events ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'webhook payloads stay compressed with pglz: %', SQLERRM;
END;
$$;
