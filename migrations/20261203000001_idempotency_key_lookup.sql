-- The stored uses of the idempotency keys `(scopes[i], keys[i])`, each found through the
-- primary key whatever the table's size when the lookup was planned. The table starts empty
-- (or is vacuumed down to nearly empty once its keys expire) and then grows by thousands of
-- keys a minute: a plan a connection cached while it held a page or two scanned it whole,
-- and kept doing so on every call until the table was next analyzed. PL/pgSQL keeps the
-- lookup's plan for the session, and with sequential scans off while it is made, that plan
-- is the primary key's. One key at a time: a join of all of them with the table may still be
-- planned as a walk through the whole index.
CREATE FUNCTION stored_idempotency_keys(scopes text[], keys text[])
    RETURNS SETOF idempotency_keys
    LANGUAGE plpgsql STABLE
    SET enable_seqscan = off
AS $$
BEGIN
    FOR i IN 1 .. coalesce(array_length(scopes, 1), 0) LOOP
        RETURN QUERY SELECT * FROM idempotency_keys k
                     WHERE k.scope = scopes[i] AND k.key = keys[i];
    END LOOP;
END
$$;
