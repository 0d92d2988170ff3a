-- What Polar's Order and Payment objects show beyond the refund counters: how the order came
-- about (billing reason, product, billing details), its line items, and how it was paid.

-- A product is kept on the order as it was sold (Polar's Order embeds the product).
ALTER TABLE orders
    ADD COLUMN billing_reason text NOT NULL DEFAULT 'purchase'
        CHECK (billing_reason IN ('purchase', 'subscription_create', 'subscription_cycle',
                                  'subscription_update', 'subscription_meter_cycle')),
    ADD COLUMN billing_name text,
    -- Polar's Address: {"country", "line1"?, "line2"?, "postal_code"?, "city"?, "state"?}
    ADD COLUMN billing_address jsonb CHECK (billing_address IS NULL OR jsonb_typeof(billing_address) = 'object'),
    ADD COLUMN product_id uuid,
    ADD COLUMN product_name text,
    ADD COLUMN product_recurring_interval text
        CHECK (product_recurring_interval IN ('day', 'week', 'month', 'year')),
    ADD CONSTRAINT orders_product_named CHECK ((product_id IS NULL) = (product_name IS NULL));

-- Polar's subscription names its product, so a subscription order always has one; orders
-- written before this migration get a monthly product of their own.
UPDATE orders
SET billing_reason = 'subscription_create', product_id = gen_random_uuid(),
    product_name = 'Subscription', product_recurring_interval = 'month'
WHERE subscription_id IS NOT NULL;
ALTER TABLE orders ADD CONSTRAINT orders_subscription_product
    CHECK (subscription_id IS NULL OR product_id IS NOT NULL);

-- The list endpoint always filters by organization and sorts by creation by default.
CREATE INDEX orders_org_created_idx ON orders (organization_id, created_at DESC, id DESC);
CREATE INDEX orders_subscription_idx ON orders (subscription_id) WHERE subscription_id IS NOT NULL;
CREATE INDEX orders_product_idx ON orders (product_id) WHERE product_id IS NOT NULL;

-- The lines an order's amounts are made of: their amounts add up to the order's net and tax.
CREATE TABLE order_items (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    order_id        uuid NOT NULL,
    position        integer NOT NULL,
    label           text NOT NULL,
    amount          bigint NOT NULL,
    tax_amount      bigint NOT NULL CHECK (tax_amount >= 0),
    proration       boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz,
    FOREIGN KEY (organization_id, order_id) REFERENCES orders (organization_id, id),
    UNIQUE (order_id, position)
);

-- Orders written before this migration get one line for their whole amounts.
INSERT INTO order_items (id, organization_id, order_id, position, label, amount, tax_amount, created_at)
SELECT gen_random_uuid(), organization_id, id, 0,
       CASE WHEN subscription_id IS NULL THEN 'Order' ELSE 'Subscription' END,
       net_amount, tax_amount, created_at
FROM orders;

ALTER TABLE payments
    ADD COLUMN method          text NOT NULL DEFAULT 'card' CHECK (length(method) BETWEEN 1 AND 64),
    ADD COLUMN card_brand      text,
    ADD COLUMN card_last4      text,
    ADD COLUMN customer_email  text,
    ADD COLUMN trigger         text CHECK (trigger IN ('purchase', 'subscription_cycle', 'retry_dunning',
                                                       'retry_customer', 'retry_payment_method_update',
                                                       'retry_admin')),
    ADD COLUMN decline_reason  text,
    ADD COLUMN decline_message text,
    ADD COLUMN modified_at     timestamptz;

-- Payments written before this migration were sandbox card charges of the initial purchase.
UPDATE payments p SET card_brand = 'visa', card_last4 = '4242', customer_email = c.email,
                      trigger = 'purchase'
FROM orders o JOIN customers c ON c.id = o.customer_id
WHERE o.id = p.order_id;

-- A card payment carries the card's brand and last digits; no other method does.
ALTER TABLE payments ADD CONSTRAINT payments_card_details CHECK (
    (method = 'card') = (card_brand IS NOT NULL AND card_last4 IS NOT NULL)
);

CREATE INDEX payments_org_created_idx ON payments (organization_id, created_at DESC, id DESC);
