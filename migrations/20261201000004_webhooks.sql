-- Webhooks as Polar sends them: the endpoints an organization registers, the outbox of
-- events (one row per event and endpoint, written in the transaction of the change that
-- causes it) and every delivery attempt.

CREATE TABLE webhook_endpoints (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz,
    -- Deleted endpoints are kept (their events and deliveries refer to them) but never
    -- shown nor sent to again.
    deleted_at      timestamptz,
    url             text NOT NULL,
    name            text,
    format          text NOT NULL CHECK (format = 'raw'),
    -- A signing key the delivery worker needs in clear; never logged.
    secret          text NOT NULL,
    events          text[] NOT NULL,
    enabled         boolean NOT NULL DEFAULT true,
    api_version     text NOT NULL,
    -- Events that failed every attempt since the last one that succeeded; at 10 the
    -- endpoint is disabled.
    failed_events_in_row integer NOT NULL DEFAULT 0,
    -- The worker that sends this endpoint's first attempts, in creation order, until then.
    first_attempts_leased_until timestamptz,
    first_attempts_lease uuid
);

CREATE INDEX webhook_endpoints_organization
    ON webhook_endpoints (organization_id, created_at DESC)
    WHERE deleted_at IS NULL;

CREATE TABLE webhook_events (
    id              uuid PRIMARY KEY,
    -- Creation order within the whole table: first attempts go out in this order per endpoint.
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    type            text NOT NULL,
    -- The endpoint's API version when the payload was built.
    api_version     text NOT NULL,
    -- The exact bytes sent (compact JSON); NULL once archived.
    payload         text,
    created_at      timestamptz NOT NULL,
    modified_at     timestamptz,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'succeeded', 'failed', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0,
    -- Attempts after which a failing event fails for good (a redelivery allows one more).
    attempts_allowed integer NOT NULL DEFAULT 10,
    next_attempt_at timestamptz NOT NULL,
    -- A worker is sending it (a retry) until then; after a crash another takes it over.
    leased_until    timestamptz,
    last_http_code  integer,
    archived_at     timestamptz
);

-- The queue of first attempts, in order per endpoint.
CREATE INDEX webhook_events_first_attempts ON webhook_events (endpoint_id, seq)
    WHERE state = 'pending' AND attempts = 0;
-- The queue of retries, by when they are due.
CREATE INDEX webhook_events_retries ON webhook_events (next_attempt_at)
    WHERE state = 'pending' AND attempts > 0;
CREATE INDEX webhook_events_organization ON webhook_events (organization_id, created_at);
-- Events are written in creation order: a block-range index finds those to archive.
CREATE INDEX webhook_events_created_at ON webhook_events USING brin (created_at);

CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    succeeded       boolean NOT NULL,
    http_code       integer,
    -- The answer's body (or the error when there was none), at most 2,048 characters.
    response        text
);

CREATE INDEX webhook_deliveries_organization
    ON webhook_deliveries (organization_id, created_at DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
