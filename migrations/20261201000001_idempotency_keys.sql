-- Idempotency keys of creating requests. A key belongs to the caller's scope (an
-- organization, or the user of a personal token) and remembers which request it was first
-- used for (method, route and a digest of the body) and the answer it got, so that a retry
-- is answered with the same bytes instead of running again. The answer is written in the
-- transaction that makes the change, so a rolled-back change leaves no key behind.
CREATE TABLE idempotency_keys (
    scope           text NOT NULL,
    key             text NOT NULL,
    method          text NOT NULL,
    route           text NOT NULL,
    fingerprint     bytea NOT NULL,
    -- The refund the request created, once it has one.
    refund_id       uuid,
    -- Empty while an outside processor is still being asked: a retry then waits.
    response_status smallint,
    response_body   bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (scope, key),
    CHECK ((response_status IS NULL) = (response_body IS NULL))
);

-- Keys are written in expiry order, so a block-range index finds the expired ones for the
-- purge at a fraction of a B-tree's cost on every insert.
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys USING brin (expires_at);
