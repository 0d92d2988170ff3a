// Stripe's own library (npm `stripe`) signs webhook payloads with
// `webhooks.generateTestHeaderString`; the server must accept exactly those signatures and
// refuse a tampered payload, a wrong secret and a stale timestamp. The accepted event is a
// refund made in Stripe's dashboard, which the server imports: the refund shows in the API.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import Stripe from "stripe";

import { BASE_URL, admin } from "./admin.mjs";

const SECRET = process.env.REFUNDS_STRIPE_WEBHOOK_SECRET ?? "";
const stripe = new Stripe("sk_test_unused");

async function deliver(payload, header) {
  const response = await fetch(`${BASE_URL}/v1/integrations/stripe/webhook`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(header ? { "Stripe-Signature": header } : {}) },
    body: payload,
  });
  return response.status;
}

test("the server accepts signatures made by Stripe's library and refuses others", async () => {
  assert.ok(SECRET.startsWith("whsec_"), "scripts/sdk-tests.sh sets REFUNDS_STRIPE_WEBHOOK_SECRET");
  const organizationId = await admin.organization();
  const token = await admin.token(organizationId, ["refunds:read"]);
  const customerId = await admin.customer(organizationId);
  const charge = `ch_${randomUUID().replaceAll("-", "")}`;
  await admin.order(organizationId, customerId, 1000, 250, {
    payment: { processor: "stripe", processor_id: charge },
  });
  const refundId = `re_${randomUUID().replaceAll("-", "")}`;
  const payload = JSON.stringify({
    id: `evt_${randomUUID().replaceAll("-", "")}`,
    object: "event",
    type: "refund.created",
    data: {
      object: {
        id: refundId, object: "refund", amount: 500, charge, currency: "usd",
        status: "succeeded", reason: "requested_by_customer", metadata: {},
      },
    },
  });
  const header = stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET });
  assert.match(header, /^t=\d+,v1=[0-9a-f]{64}$/);

  assert.equal(await deliver(payload.replace('"amount":500', '"amount":900'), header), 401, "tampered payload");
  const wrongSecret = stripe.webhooks.generateTestHeaderString({ payload, secret: "whsec_wrong" });
  assert.equal(await deliver(payload, wrongSecret), 401, "wrong secret");
  const stale = stripe.webhooks.generateTestHeaderString({
    payload, secret: SECRET, timestamp: Math.floor(Date.now() / 1000) - 600,
  });
  assert.equal(await deliver(payload, stale), 401, "stale timestamp");
  assert.equal(await deliver(payload, undefined), 400, "no header");
  assert.equal(await deliver(payload, header), 202);

  const listed = await fetch(`${BASE_URL}/v1/refunds/`, { headers: { Authorization: `Bearer ${token}` } });
  const body = await listed.json();
  assert.equal(body.items.length, 1, JSON.stringify(body));
  assert.equal(body.items[0].amount + body.items[0].tax_amount, 500);
  assert.equal(body.items[0].reason, "customer_request");
  assert.equal(body.items[0].status, "succeeded");
});
