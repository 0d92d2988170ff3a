-- Scratch tables for the minimal-transaction limit: only what a refund needs, in a schema of
-- their own so that they never meet ours. refunds-bench and scripts/bench-schema-costs.sh
-- both create them from this file.
--
-- orders: the amount columns of our orders and their CHECKs (migrations/20261122000001_initial.sql),
-- without the pending reservations (a refund settled in-process reserves nothing).
-- refunds: the columns of Polar's Refund.
-- A primary key each, one (organization_id, created_at) index on refunds; no triggers, no
-- foreign keys.

DROP SCHEMA IF EXISTS limit_scratch CASCADE;
CREATE SCHEMA limit_scratch;

CREATE TABLE limit_scratch.orders (
    id                  uuid PRIMARY KEY,
    organization_id     uuid NOT NULL,
    customer_id         uuid NOT NULL,
    subscription_id     uuid,
    status              text NOT NULL DEFAULT 'paid'
        CHECK (status IN ('draft', 'pending', 'paid', 'refunded', 'partially_refunded', 'void')),
    currency            text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    net_amount          bigint NOT NULL CHECK (net_amount >= 0),
    tax_amount          bigint NOT NULL CHECK (tax_amount >= 0),
    refunded_amount     bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    refunded_tax_amount bigint NOT NULL DEFAULT 0 CHECK (refunded_tax_amount >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    modified_at         timestamptz,
    CHECK (refunded_amount <= net_amount),
    CHECK (refunded_tax_amount <= tax_amount)
);

CREATE TABLE limit_scratch.refunds (
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz,
    id              uuid PRIMARY KEY,
    metadata        jsonb NOT NULL DEFAULT '{}',
    status          text NOT NULL,
    reason          text NOT NULL,
    amount          bigint NOT NULL,
    tax_amount      bigint NOT NULL,
    currency        text NOT NULL,
    organization_id uuid NOT NULL,
    order_id        uuid NOT NULL,
    subscription_id uuid,
    customer_id     uuid NOT NULL,
    revoke_benefits boolean NOT NULL DEFAULT false,
    dispute_id      uuid
);

CREATE INDEX refunds_org_created_idx ON limit_scratch.refunds (organization_id, created_at);
