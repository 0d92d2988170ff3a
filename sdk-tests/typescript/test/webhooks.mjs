// `webhooks.*` of an SDK build against a live refunds-server, and real deliveries: a small
// receiver records what the server sends, and the SDK's own `validateEvent` verifies and
// parses every delivery with the endpoint's secret.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, it } from "node:test";

import { admin, merchant, randomUUID } from "./admin.mjs";

const EVENTS = ["refund.created", "refund.updated", "order.updated", "order.refunded"];
const ids = (items) => items.map((item) => item.id);

/** An HTTP receiver on 127.0.0.1 recording each request's headers and raw body. */
async function startReceiver() {
  const received = [];
  const server = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      const headers = Object.fromEntries(
        Object.entries(request.headers).map(([name, value]) => [name, String(value)]),
      );
      received.push({ headers, body: Buffer.concat(chunks) });
      response.writeHead(202).end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/hook`,
    received,
    async waitFor(count, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(received.length >= count, `${received.length} of ${count} deliveries`);
      return [...received];
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

async function hooksMerchant() {
  const m = await merchant();
  m.hooks = await admin.token(m.organizationId, [
    "refunds:read", "refunds:write", "orders:read", "webhooks:read", "webhooks:write",
  ]);
  m.hooksRead = await admin.token(m.organizationId, ["webhooks:read"]);
  return m;
}

/** `build` is "1" or "0"; `loadSdk` resolves to an adapter from builds.mjs. */
export function defineWebhookSuite(build, loadSdk) {
  let sdk;
  let receiver;
  before(async () => {
    sdk = await loadSdk();
    assert.equal(sdk.build, build);
    receiver = await startReceiver();
  });
  after(() => receiver.close());

  describe("webhooks", () => {
    it("endpoints are created, listed, read, updated, reset and deleted", async () => {
      const m = await hooksMerchant();
      const first = await sdk.createEndpoint(m.hooks, {
        url: "https://example.com/first", format: "raw", events: ["refund.created"],
      });
      const second = await sdk.createEndpoint(m.hooks, {
        url: "https://example.com/second", name: "Orders", format: "raw",
        events: ["order.updated", "order.refunded"],
      });
      assert.equal(first.url, "https://example.com/first");
      assert.equal(sdk.field(first, "organization_id"), m.organizationId);
      assert.match(first.secret, /^whsec_/);
      assert.equal(first.enabled, true);
      assert.equal(second.name, "Orders");

      const { items, pagination } = await sdk.listEndpoints(m.hooksRead, { organization_id: m.organizationId });
      assert.deepEqual(ids(items), [second.id, first.id]);
      assert.equal(pagination.total_count, 2);
      const got = await sdk.getEndpoint(m.hooksRead, first.id);
      assert.equal(got.secret, first.secret);

      const updated = await sdk.updateEndpoint(m.hooks, first.id, {
        name: "Refunds", events: ["refund.created", "refund.updated"],
      });
      assert.equal(updated.name, "Refunds");
      assert.deepEqual(updated.events, ["refund.created", "refund.updated"]);
      const reset = await sdk.resetEndpointSecret(m.hooks, first.id);
      assert.match(reset.secret, /^whsec_/);
      assert.notEqual(reset.secret, first.secret);

      await sdk.deleteEndpoint(m.hooks, second.id);
      const err = await sdk.getEndpoint(m.hooks, second.id).then(
        () => assert.fail("the deleted endpoint was found"),
        (error) => error,
      );
      assert.ok(err instanceof sdk.ResourceNotFound, `${err?.name}: ${err?.message}`);
      assert.deepEqual(sdk.notFound(err), ["ResourceNotFound", "Not found"]);
      const left = await sdk.listEndpoints(m.hooks);
      assert.deepEqual(ids(left.items), [first.id]);
    });

    it("every delivery verifies and parses with the SDK's validateEvent", async () => {
      const m = await hooksMerchant();
      const endpoint = await sdk.createEndpoint(m.hooks, { url: receiver.url, format: "raw", events: EVENTS });
      const seen = receiver.received.length;
      const order = await m.order(1000, 250);
      const refund = await sdk.create(m.hooks, { order_id: order, reason: "customer_request", amount: 400 });
      // A dispute the merchant prevents refunds the rest, through the same events.
      await admin.dispute(order, "prevented");

      const deliveries = (await receiver.waitFor(seen + 6)).slice(seen, seen + 6);
      const parsed = [];
      for (const delivery of deliveries) {
        parsed.push(await sdk.validateEvent(delivery.body, delivery.headers, endpoint.secret));
      }
      assert.deepEqual(parsed.map((payload) => payload.type), [
        "refund.created", "order.updated", "order.refunded",
        "refund.created", "order.updated", "order.refunded",
      ]);
      assert.equal(parsed[0].data.id, refund.id);
      assert.equal(parsed[1].data.id, order);
      assert.equal(sdk.field(parsed[2].data, "refunded_amount"), 400);
      assert.equal(sdk.field(parsed[5].data, "refunded_amount"), 1000);
      for (const delivery of deliveries) {
        assert.equal(delivery.headers["user-agent"], "polar.sh webhooks");
        assert.equal(delivery.headers["webhook-signature"].split(" ").length, 2);
      }

      // A tampered body or another endpoint's secret is refused.
      const tampered = Buffer.from(deliveries[0].body.toString().replace("customer_request", "fraudulent"));
      await assert.rejects(async () => sdk.validateEvent(tampered, deliveries[0].headers, endpoint.secret));
      const other = await sdk.createEndpoint(m.hooks, { url: "https://example.com/x", format: "raw", events: EVENTS });
      await assert.rejects(async () => sdk.validateEvent(deliveries[0].body, deliveries[0].headers, other.secret));

      // The deliveries are listed with their events; one is sent again as it was.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const { items, pagination } = await sdk.listDeliveries(m.hooks, { endpoint_id: endpoint.id });
      assert.equal(pagination.total_count, 6);
      assert.ok(items.every((item) => item.succeeded && sdk.field(item, "http_code") === 202));
      const eventIds = new Set(items.map((item) => sdk.field(item, "webhook_event").id));
      assert.deepEqual(eventIds, new Set(deliveries.map((d) => d.headers["webhook-id"])));
      const eventId = deliveries[0].headers["webhook-id"];
      const before = receiver.received.length;
      await sdk.redeliver(m.hooks, eventId);
      const again = await receiver.waitFor(before + 1);
      const resent = again.slice(before).find((d) => d.headers["webhook-id"] === eventId);
      assert.ok(resent, "the event was sent again");
      assert.deepEqual(resent.body, deliveries[0].body);
      const payload = await sdk.validateEvent(resent.body, resent.headers, endpoint.secret);
      assert.equal(payload.data.id, refund.id);
      await assert.rejects(() => sdk.redeliver(m.hooks, randomUUID()), sdk.ResourceNotFound);
    });
  });
}
