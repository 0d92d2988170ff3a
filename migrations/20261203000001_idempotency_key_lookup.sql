-- The stored use of an idempotency key, found through the primary key whatever the table's
-- size when the lookup was planned. The table starts empty (or is vacuumed down to nearly
-- empty once its keys expire) and then grows by thousands of keys a minute: a plan a
-- connection cached while it held a page or two scanned it whole, and kept doing so on every
-- call until the table was next analyzed. PL/pgSQL keeps the lookup's plan for the session,
-- and with sequential scans off while it is made, that plan is the primary key's.
CREATE FUNCTION stored_idempotency_key(wanted_scope text, wanted_key text)
    RETURNS SETOF idempotency_keys
    LANGUAGE plpgsql STABLE
    SET enable_seqscan = off
AS $$
BEGIN
    RETURN QUERY SELECT * FROM idempotency_keys k
                 WHERE k.scope = wanted_scope AND k.key = wanted_key;
END
$$;
