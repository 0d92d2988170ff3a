-- The whole refunds schema. Every table a request touches carries organization_id so that
-- each query can be scoped by the caller's organisations (and the tables sharded by it).

CREATE TABLE organizations (
    id              uuid PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    slug            text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    refunds_blocked boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz
);

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    email       text NOT NULL UNIQUE CHECK (position('@' in email) > 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    modified_at timestamptz
);

CREATE TABLE memberships (
    user_id         uuid NOT NULL REFERENCES users (id),
    organization_id uuid NOT NULL REFERENCES organizations (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, organization_id)
);

-- Tokens are stored only as the SHA-256 of the full token string.
-- An organization token (polar_oat_) belongs to one organization; a personal token
-- (polar_pat_) belongs to a user and sees the organizations the user is a member of.
CREATE TABLE access_tokens (
    id              uuid PRIMARY KEY,
    token_hash      bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    kind            text NOT NULL CHECK (kind IN ('organization', 'personal')),
    organization_id uuid REFERENCES organizations (id),
    user_id         uuid REFERENCES users (id),
    scopes          text[] NOT NULL,
    expires_at      timestamptz,
    revoked_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (
        (kind = 'organization' AND organization_id IS NOT NULL AND user_id IS NULL)
        OR (kind = 'personal' AND user_id IS NOT NULL AND organization_id IS NULL)
    )
);

CREATE TABLE customers (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    email           text NOT NULL,
    name            text,
    external_id     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz,
    UNIQUE (organization_id, external_id),
    -- lets orders reference (organization_id, id) so an order cannot point at a foreign customer
    UNIQUE (organization_id, id)
);

-- pending_amount / pending_tax_amount hold what pending refunds reserve, so that what is
-- refunded plus what is reserved can never pass what was paid, whatever runs concurrently.
CREATE TABLE orders (
    id                     uuid PRIMARY KEY,
    organization_id        uuid NOT NULL REFERENCES organizations (id),
    customer_id            uuid NOT NULL,
    subscription_id        uuid,
    status                 text NOT NULL DEFAULT 'paid'
        CHECK (status IN ('draft', 'pending', 'paid', 'refunded', 'partially_refunded', 'void')),
    currency               text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    net_amount             bigint NOT NULL CHECK (net_amount >= 0),
    tax_amount             bigint NOT NULL CHECK (tax_amount >= 0),
    applied_balance_amount bigint NOT NULL DEFAULT 0,
    refunded_amount        bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    refunded_tax_amount    bigint NOT NULL DEFAULT 0 CHECK (refunded_tax_amount >= 0),
    pending_amount         bigint NOT NULL DEFAULT 0 CHECK (pending_amount >= 0),
    pending_tax_amount     bigint NOT NULL DEFAULT 0 CHECK (pending_tax_amount >= 0),
    refunds_blocked        boolean NOT NULL DEFAULT false,
    metadata               jsonb NOT NULL DEFAULT '{}',
    created_at             timestamptz NOT NULL DEFAULT now(),
    modified_at            timestamptz,
    FOREIGN KEY (organization_id, customer_id) REFERENCES customers (organization_id, id),
    UNIQUE (organization_id, id),
    CONSTRAINT orders_no_over_refund CHECK (
        refunded_amount + pending_amount <= GREATEST(0, net_amount + applied_balance_amount)
    ),
    CONSTRAINT orders_no_over_refund_tax CHECK (
        refunded_tax_amount + pending_tax_amount <= tax_amount
    )
);
CREATE INDEX orders_customer_idx ON orders (customer_id);

CREATE TABLE payments (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    order_id        uuid NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    processor       text NOT NULL,
    processor_id    text NOT NULL,
    amount          bigint NOT NULL CHECK (amount >= 0),
    currency        text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, order_id) REFERENCES orders (organization_id, id)
);
CREATE INDEX payments_order_idx ON payments (order_id);

CREATE TABLE disputes (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    order_id        uuid NOT NULL,
    payment_id      uuid NOT NULL REFERENCES payments (id),
    status          text NOT NULL
        CHECK (status IN ('prevented', 'early_warning', 'needs_response', 'under_review', 'lost', 'won')),
    amount          bigint NOT NULL CHECK (amount >= 0),
    tax_amount      bigint NOT NULL CHECK (tax_amount >= 0),
    currency        text NOT NULL,
    reason          text,
    evidence_due_by timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz,
    FOREIGN KEY (organization_id, order_id) REFERENCES orders (organization_id, id)
);
CREATE INDEX disputes_order_idx ON disputes (order_id);

CREATE TABLE refunds (
    id                uuid PRIMARY KEY,
    organization_id   uuid NOT NULL,
    order_id          uuid NOT NULL,
    customer_id       uuid NOT NULL,
    subscription_id   uuid,
    payment_id        uuid REFERENCES payments (id),
    dispute_id        uuid REFERENCES disputes (id),
    status            text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'canceled')),
    reason            text NOT NULL CHECK (reason IN ('duplicate', 'fraudulent', 'customer_request',
                          'service_disruption', 'satisfaction_guarantee', 'dispute_prevention', 'other')),
    amount            bigint NOT NULL CHECK (amount >= 0),
    tax_amount        bigint NOT NULL CHECK (tax_amount >= 0),
    currency          text NOT NULL,
    comment           text,
    failure_reason    text,
    processor         text NOT NULL,
    processor_id      text,
    revoke_benefits   boolean NOT NULL DEFAULT false,
    metadata          jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    modified_at       timestamptz,
    CHECK (amount + tax_amount > 0),
    FOREIGN KEY (organization_id, order_id) REFERENCES orders (organization_id, id)
);
-- The list endpoint always filters by organization; these serve its sort orders and filters.
CREATE INDEX refunds_org_created_idx ON refunds (organization_id, created_at DESC, id DESC);
CREATE INDEX refunds_org_amount_idx ON refunds (organization_id, amount, id);
CREATE INDEX refunds_order_idx ON refunds (order_id);
CREATE INDEX refunds_customer_idx ON refunds (customer_id);
CREATE INDEX refunds_subscription_idx ON refunds (subscription_id) WHERE subscription_id IS NOT NULL;
