// Medusa's own JavaScript client, @medusajs/medusa-js 6.x (the Medusa v1 line), unmodified,
// refunding payments of this server through `medusa.admin.payments.refundPayment`. Setup goes
// through the server's admin API and Polar's read API with plain fetch: Medusa's client knows
// neither.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import Medusa from "@medusajs/medusa-js";

import { BASE_URL, merchant, randomUUID } from "../../typescript/test/admin.mjs";

/** Polar's read API, with a token that reads payments and refunds. */
async function polar(token, path) {
  const response = await fetch(`${BASE_URL}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200, await response.clone().text());
  return response.json();
}

/** A merchant, a paid order of `net` + `tax` and the id of its payment as Polar lists it. */
async function paidOrder(net, tax) {
  const m = await merchant();
  const orderId = await m.order(net, tax);
  const payments = await polar(m.token, `/v1/payments/?order_id=${orderId}`);
  assert.equal(payments.items.length, 1);
  return { m, orderId, paymentId: payments.items[0].id };
}

/** Medusa's client with an access token as its API key, as Medusa's docs set one up. */
const client = (apiKey, options = {}) => new Medusa({ baseUrl: BASE_URL, maxRetries: 0, apiKey, ...options });

/** The rejection of a refund: the axios error Medusa's client raises, with Medusa's body. */
async function refused(promise) {
  try {
    await promise;
  } catch (error) {
    assert.equal(error.isAxiosError, true, String(error));
    return error;
  }
  assert.fail("the refund was expected to be refused");
}

describe(`@medusajs/medusa-js against ${BASE_URL}`, () => {
  test("refundPayment refunds a gross amount and answers Medusa's Refund", async () => {
    const { m, orderId, paymentId } = await paidOrder(9990, 2498);
    const medusa = client(m.token);

    const { refund, response } = await medusa.admin.payments.refundPayment(paymentId, {
      amount: 1388,
      reason: "return",
      note: "Do not like it",
    });
    assert.equal(response.status, 200);
    assert.equal(typeof refund.id, "string");
    assert.equal(refund.payment_id, paymentId);
    assert.equal(refund.order_id, orderId);
    assert.equal(refund.amount, 1388);
    assert.equal(refund.reason, "return");
    assert.equal(refund.note, "Do not like it");
    assert.equal(refund.idempotency_key, null);
    assert.deepEqual(refund.metadata, {});
    assert.equal(new Date(refund.created_at).toJSON(), refund.created_at);
    assert.equal(refund.updated_at, refund.created_at);

    // The same refund through Polar's API: net and tax add up to Medusa's amount.
    const listed = await polar(m.token, `/v1/refunds/?order_id=${orderId}`);
    assert.equal(listed.items.length, 1);
    const [same] = listed.items;
    assert.equal(same.id, refund.id);
    assert.equal(same.amount + same.tax_amount, 1388);
    assert.deepEqual([same.amount, same.tax_amount, same.reason], [1110, 278, "customer_request"]);

    // Refunding the rest empties the order exactly.
    const rest = await medusa.admin.payments.refundPayment(paymentId, { amount: 12488 - 1388, reason: "other" });
    assert.equal(rest.refund.amount, 11100);
    assert.equal(rest.refund.note, null);
    const order = await polar(m.token, `/v1/orders/${orderId}`);
    assert.deepEqual(
      [order.status, order.refunded_amount, order.refunded_tax_amount],
      ["refunded", 9990, 2498],
    );
  });

  test("a client that retries sends an Idempotency-Key, echoed in the refund", async () => {
    const { m, paymentId } = await paidOrder(1000, 0);
    const { refund } = await client(m.token, { maxRetries: 3 }).admin.payments.refundPayment(paymentId, {
      amount: 100,
      reason: "claim",
    });
    assert.match(refund.idempotency_key, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(refund.reason, "claim");
  });

  test("a bearer token in custom headers works as well", async () => {
    const { m, paymentId } = await paidOrder(1000, 0);
    const { refund } = await new Medusa({ baseUrl: BASE_URL, maxRetries: 0 }).admin.payments.refundPayment(
      paymentId,
      { amount: 10, reason: "discount" },
      { Authorization: `Bearer ${m.token}` },
    );
    assert.equal(refund.amount, 10);
  });

  test("more than is left is a 400 not_allowed", async () => {
    const { m, paymentId } = await paidOrder(1000, 250);
    const error = await refused(client(m.token).admin.payments.refundPayment(paymentId, { amount: 1251, reason: "return" }));
    assert.equal(error.response.status, 400);
    assert.deepEqual(error.response.data, {
      type: "not_allowed",
      message: `Only 1250 can be refunded from Payment ${paymentId}`,
    });
  });

  test("an invalid body is a 400 invalid_data with class-validator's messages", async () => {
    const { m, paymentId } = await paidOrder(1000, 0);
    const error = await refused(client(m.token).admin.payments.refundPayment(paymentId, { amount: 1.5, reason: "gift" }));
    assert.equal(error.response.status, 400);
    assert.deepEqual(error.response.data, {
      type: "invalid_data",
      message:
        "amount must be an integer number, reason must be one of the following values: discount, return, swap, claim, other",
    });
    const zero = await refused(client(m.token).admin.payments.refundPayment(paymentId, { amount: 0, reason: "other" }));
    assert.equal(zero.response.status, 400);
    assert.equal(zero.response.data.message, "amount must be a positive number");
  });

  test("an unknown payment, or another organization's, is a 404 not_found", async () => {
    const { paymentId } = await paidOrder(1000, 0);
    const stranger = await merchant();
    for (const id of [paymentId, randomUUID()]) {
      const error = await refused(client(stranger.token).admin.payments.refundPayment(id, { amount: 10, reason: "other" }));
      assert.equal(error.response.status, 404);
      assert.deepEqual(error.response.data, { type: "not_found", message: `Payment with id ${id} was not found` });
    }
  });

  test("a bad or read-only API key is a 401", async () => {
    const { m, paymentId } = await paidOrder(1000, 0);
    for (const key of ["polar_oat_not-a-token", m.readToken]) {
      const error = await refused(client(key).admin.payments.refundPayment(paymentId, { amount: 10, reason: "other" }));
      assert.equal(error.response.status, 401);
      assert.equal(error.response.data, "Unauthorized");
    }
    const order = await polar(m.token, `/v1/refunds/?order_id=${(await polar(m.token, `/v1/payments/${paymentId}`)).order_id}`);
    assert.equal(order.items.length, 0);
  });
});
