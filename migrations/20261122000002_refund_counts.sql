-- Exact refund counts per organization, so that the list's total_count does not have to
-- count every refund of a large organization. Statement triggers keep them exact whoever
-- writes refunds (the API, disputes, seeding, a manual fix). The counts are split across
-- slots chosen by the writing connection, so concurrent transactions rarely wait on one
-- row; a reader sums an organization's slots.

CREATE TABLE refund_counts (
    organization_id uuid NOT NULL,
    slot            smallint NOT NULL,
    succeeded       bigint NOT NULL DEFAULT 0,
    not_succeeded   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, slot)
);

CREATE FUNCTION refund_counts_add(organization uuid, succeeded_delta bigint, not_succeeded_delta bigint)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO refund_counts AS c (organization_id, slot, succeeded, not_succeeded)
    VALUES (organization, pg_backend_pid() % 64, succeeded_delta, not_succeeded_delta)
    ON CONFLICT (organization_id, slot) DO UPDATE
    SET succeeded = c.succeeded + EXCLUDED.succeeded,
        not_succeeded = c.not_succeeded + EXCLUDED.not_succeeded;
$$;

CREATE FUNCTION refund_counts_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refund_counts_add(organization_id,
                              count(*) FILTER (WHERE status = 'succeeded'),
                              count(*) FILTER (WHERE status <> 'succeeded'))
    FROM inserted
    GROUP BY organization_id;
    RETURN NULL;
END;
$$;

CREATE FUNCTION refund_counts_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refund_counts_add(organization_id, sum(succeeded)::bigint, sum(not_succeeded)::bigint)
    FROM (SELECT organization_id, (status = 'succeeded')::int AS succeeded,
                 (status <> 'succeeded')::int AS not_succeeded
          FROM after_rows
          UNION ALL
          SELECT organization_id, -(status = 'succeeded')::int, -(status <> 'succeeded')::int
          FROM before_rows) AS delta
    GROUP BY organization_id
    HAVING sum(succeeded) <> 0 OR sum(not_succeeded) <> 0;
    RETURN NULL;
END;
$$;

CREATE FUNCTION refund_counts_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refund_counts_add(organization_id,
                              -count(*) FILTER (WHERE status = 'succeeded'),
                              -count(*) FILTER (WHERE status <> 'succeeded'))
    FROM deleted
    GROUP BY organization_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER refund_counts_insert AFTER INSERT ON refunds
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION refund_counts_after_insert();
CREATE TRIGGER refund_counts_update AFTER UPDATE ON refunds
    REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows
    FOR EACH STATEMENT EXECUTE FUNCTION refund_counts_after_update();
CREATE TRIGGER refund_counts_delete AFTER DELETE ON refunds
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION refund_counts_after_delete();

-- Refunds written before this migration.
INSERT INTO refund_counts (organization_id, slot, succeeded, not_succeeded)
SELECT organization_id, 0, count(*) FILTER (WHERE status = 'succeeded'),
       count(*) FILTER (WHERE status <> 'succeeded')
FROM refunds
GROUP BY organization_id;
