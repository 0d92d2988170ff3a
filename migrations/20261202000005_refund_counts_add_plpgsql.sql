-- refund_counts_add in PL/pgSQL instead of SQL. PostgreSQL keeps no plan of a SQL function
-- between the statements that call it: every count trigger parsed, analysed and planned the
-- function's INSERT again, which came to about a twentieth of the database's CPU under the
-- create load. A PL/pgSQL function keeps the plan of its statement for the session.
CREATE OR REPLACE FUNCTION refund_counts_add(organization uuid, succeeded_delta bigint, not_succeeded_delta bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO refund_counts AS c (organization_id, slot, succeeded, not_succeeded)
    VALUES (organization, pg_backend_pid() % 64, succeeded_delta, not_succeeded_delta)
    ON CONFLICT (organization_id, slot) DO UPDATE
    SET succeeded = c.succeeded + EXCLUDED.succeeded,
        not_succeeded = c.not_succeeded + EXCLUDED.not_succeeded;
END;
$$;
