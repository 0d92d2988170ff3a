-- The advisory lock that holds an idempotency key while a request uses it. The request made
-- one by one and the batch of creates take the same lock only as long as they compute the
-- same number: both call this.
CREATE FUNCTION idempotency_lock_id(scope text, key text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN hashtextextended(scope || chr(31) || key, 0);
