-- The asynchronous refund lifecycle: refunds that an outside processor (Stripe) settles later
-- or that are left without an answer, their recovery, and the processor's own events.

-- Why a refund failed, in Polar's terms.
ALTER TABLE refunds ADD CONSTRAINT refunds_failure_reason_known CHECK (
    failure_reason IS NULL OR failure_reason IN ('unknown', 'declined', 'card_expired', 'card_lost',
                                                 'disputed', 'insufficient_funds', 'merchant_request')
);

-- What was asked of the processor, exactly as first asked: asking again with the same
-- idempotency key must send the same parameters.
ALTER TABLE refunds ADD COLUMN processor_request jsonb;
-- When the recovery worker may next take up a refund still waiting for the processor's first
-- answer (pending, no processor id); NULL when there is nothing to recover. Taking one up
-- moves this forward, which is the lease that keeps other instances off it meanwhile.
ALTER TABLE refunds ADD COLUMN recover_after timestamptz;
CREATE INDEX refunds_recover_after_idx ON refunds (recover_after) WHERE recover_after IS NOT NULL;
-- A processor's refund is ours at most once; its events find the refund by this id.
CREATE UNIQUE INDEX refunds_processor_id_idx ON refunds (processor, processor_id)
    WHERE processor_id IS NOT NULL;
-- Pending sandbox refunds that settle by themselves (REFUNDS_SANDBOX_SETTLE_AFTER_MS).
CREATE INDEX refunds_pending_idx ON refunds (created_at) WHERE status = 'pending';

-- What the sandbox processor answers for an order's next refunds (set through the admin API).
ALTER TABLE orders ADD COLUMN sandbox_refund_outcome text NOT NULL DEFAULT 'succeeded'
    CHECK (sandbox_refund_outcome IN ('succeeded', 'pending', 'failed'));

-- A processor's charge is one payment of ours; its events and disputes find it by this id.
ALTER TABLE payments ADD CONSTRAINT payments_processor_known CHECK (processor IN ('sandbox', 'stripe'));
CREATE UNIQUE INDEX payments_processor_id_idx ON payments (processor, processor_id);

-- A processor's dispute is ours at most once.
ALTER TABLE disputes ADD COLUMN processor_id text;
CREATE UNIQUE INDEX disputes_processor_id_idx ON disputes (processor_id) WHERE processor_id IS NOT NULL;

-- Events received from Stripe, so that one delivered twice is handled once. Written in the
-- transaction that handles the event.
CREATE TABLE stripe_events (
    id          text PRIMARY KEY,
    type        text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- The keys of creates cut off before their refund was settled, which recovery completes.
CREATE INDEX idempotency_keys_unanswered_idx ON idempotency_keys (refund_id)
    WHERE response_status IS NULL;
