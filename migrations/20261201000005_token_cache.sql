-- Each server process keeps the principals of recently used tokens in memory, and empties
-- that cache when told on this channel that something a token resolves to has changed:
-- a token revoked, its expiry or scopes changed, a token deleted, a membership added or
-- removed. Notifications are sent at commit, so a listener never sees one before the
-- change is visible.
--
-- New tokens need no notification: a lookup that finds no token is never cached. Users
-- and organizations are not part of what a token resolves to, and neither can be deleted
-- while a token or a membership still refers to it (no cascades).

CREATE FUNCTION notify_token_cache() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('refunds_token_cache', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

-- Per statement: a bulk change sends one notification (and PostgreSQL folds identical ones
-- of a transaction into one).
CREATE TRIGGER access_tokens_notify_token_cache
    AFTER UPDATE OR DELETE OR TRUNCATE ON access_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION notify_token_cache();

CREATE TRIGGER memberships_notify_token_cache
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON memberships
    FOR EACH STATEMENT EXECUTE FUNCTION notify_token_cache();
