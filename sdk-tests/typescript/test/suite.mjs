// The compatibility suite, run once per SDK build (sdk1.test.mjs, sdk0.test.mjs): every call
// goes through the SDK, every seed through the admin API.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import { admin, merchant, randomUUID } from "./admin.mjs";

const isUuid4 = (value) =>
  /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(value);
const ids = (items) => items.map((r) => r.id);

/** Runs `fn` and asserts it throws an instance of `cls`; returns the error. */
async function rejects(fn, cls) {
  try {
    await fn();
  } catch (err) {
    if (cls) assert.ok(err instanceof cls, `expected ${cls.name}, got ${err?.name}: ${err?.message}`);
    return err;
  }
  assert.fail(`expected ${cls ? cls.name : "an error"}, but the call succeeded`);
}

/** Everything an error says: message, and a validation error's pretty report. */
const describeError = (err) =>
  [err?.message, typeof err?.pretty === "function" ? err.pretty() : ""].join("\n");

/**
 * Marks a test that fails because of a known server bug, as pytest's xfail(strict=True) does
 * (use it in place of `it`, name the bug in `reason`). The test passes only while `fn`
 * fails in the way `expected` (a RegExp over the error's text) describes; it FAILS as soon as
 * `fn` passes, so the marker cannot outlive the server bug it names, and it fails on any other
 * error, so the marker cannot hide a new one.
 */
export function xfail(name, reason, expected, fn) {
  it(`${name} [XFAIL: ${reason}]`, async (t) => {
    try {
      await fn(t);
    } catch (err) {
      const text = describeError(err);
      assert.match(text, expected, `failed, but not as expected: ${text}`);
      t.diagnostic(`expected failure: ${text.replace(/\s+/g, " ").slice(0, 400)}`);
      return;
    }
    assert.fail(`XPASS(strict): "${name}" now passes; remove its xfail marker`);
  });
}

function theError(sdk, err, loc) {
  const details = sdk.validationErrors(err);
  assert.ok(Array.isArray(details), `detail is not a list: ${JSON.stringify(details)}`);
  const matching = details.filter((d) => JSON.stringify(d.loc) === JSON.stringify(loc));
  assert.equal(matching.length, 1, `no single error at ${JSON.stringify(loc)}: ${JSON.stringify(details)}`);
  return matching[0];
}

/** `build` is "1" or "0"; `loadSdk` resolves to an adapter from builds.mjs. */
export function defineSuite(build, loadSdk) {
  let sdk;
  before(async () => {
    sdk = await loadSdk();
    assert.equal(sdk.build, build);
  });

  describe("create", () => {
    it("a retried create with an Idempotency-Key refunds once", async () => {
      const m = await merchant();
      const order = await m.order(1000, 250);
      const key = `sdk-retry-${randomUUID()}`;
      const body = { order_id: order, reason: "other", amount: 400 };
      const first = sdk.view(await sdk.createWithKey(m.token, key, body));
      const retried = sdk.view(await sdk.createWithKey(m.token, key, body));
      assert.deepEqual(retried, first);
      assert.deepEqual([retried.amount, retried.tax_amount], [400, 100]);
      const { items, pagination } = await sdk.list(m.token, { order_id: order });
      assert.deepEqual(ids(items), [first.id]);
      assert.equal(pagination.total_count, 1);

      const err = await rejects(
        () => sdk.createWithKey(m.token, key, { ...body, amount: 401 }),
        sdk.HTTPValidationError,
      );
      assert.equal(theError(sdk, err, ["header", "Idempotency-Key"]).type, "idempotency_key_reused");
    });

    it("a full refund returns the Refund with every field", async () => {
      const m = await merchant();
      const order = await m.order(1000, 250);
      const refund = sdk.view(
        await sdk.create(m.token, { order_id: order, reason: "customer_request", amount: 1000 }),
      );
      assert.ok(isUuid4(refund.id), refund.id);
      sdk.timestamp(refund.created_at);
      assert.equal(refund.modified_at, null);
      assert.deepEqual(refund.metadata, {});
      assert.equal(refund.status, "succeeded");
      assert.equal(refund.reason, "customer_request");
      assert.deepEqual([refund.amount, refund.tax_amount], [1000, 250]);
      assert.ok(Number.isInteger(refund.amount) && Number.isInteger(refund.tax_amount));
      assert.equal(refund.currency, "usd");
      assert.equal(refund.organization_id, m.organizationId);
      assert.equal(refund.order_id, order);
      assert.equal(refund.subscription_id, null);
      assert.equal(refund.customer_id, m.customerId);
      assert.equal(refund.revoke_benefits, false);
      assert.equal(refund.dispute, null);

      const stored = await admin.getOrder(order);
      assert.deepEqual(
        [stored.status, stored.refunded_amount, stored.refunded_tax_amount],
        ["refunded", 1000, 250],
      );
    });

    it("a refund of a subscription order in another currency", async () => {
      const m = await merchant();
      const subscription = randomUUID();
      const order = await m.order(1000, 0, { currency: "eur", subscriptionId: subscription });
      const refund = sdk.view(await sdk.create(m.token, { order_id: order, reason: "duplicate", amount: 400 }));
      assert.deepEqual([refund.amount, refund.tax_amount, refund.currency], [400, 0, "eur"]);
      assert.equal(refund.subscription_id, subscription);
      assert.equal(refund.reason, "duplicate");
    });

    it("partial refunds up to full, then RefundedAlready", async () => {
      const m = await merchant();
      const order = await m.order(9990, 2498);
      for (const [amount, tax] of [[1110, 278], [993, 248], [5887, 1472]]) {
        const refund = sdk.view(await sdk.create(m.token, { order_id: order, reason: "other", amount }));
        assert.deepEqual([refund.amount, refund.tax_amount, refund.status], [amount, tax, "succeeded"]);
      }
      assert.equal((await admin.getOrder(order)).status, "partially_refunded");

      const over = await rejects(
        () => sdk.create(m.token, { order_id: order, reason: "other", amount: 2001 }),
        sdk.HTTPValidationError,
      );
      assert.equal(theError(sdk, over, ["body", "amount"]).msg, "Refund amount exceeds refundable amount");

      const last = sdk.view(await sdk.create(m.token, { order_id: order, reason: "other", amount: 2000 }));
      assert.deepEqual([last.amount, last.tax_amount], [2000, 500]);
      assert.equal((await admin.getOrder(order)).status, "refunded");

      for (const amount of [1, 2000, 1_000_000_000]) {
        const err = await rejects(
          () => sdk.create(m.token, { order_id: order, reason: "other", amount }),
          sdk.RefundedAlready,
        );
        assert.equal(sdk.statusOf(err), 403);
        assert.deepEqual(sdk.refundedAlready(err), [
          "RefundedAlready",
          `Order is already fully refunded: ${order}`,
        ]);
      }
    });

    it("an over-refund is the typed HTTPValidationError at body.amount", async () => {
      const m = await merchant();
      const order = await m.order(1000, 250);
      const err = await rejects(
        () => sdk.create(m.token, { order_id: order, reason: "other", amount: 1001 }),
        sdk.HTTPValidationError,
      );
      assert.equal(sdk.statusOf(err), 422);
      const e = theError(sdk, err, ["body", "amount"]);
      assert.deepEqual([e.type, e.msg, e.input], ["value_error", "Refund amount exceeds refundable amount", 1001]);
      assert.equal(sdk.validationErrors(err).length, 1);
      assert.equal((await admin.getOrder(order)).refunded_amount, 0);
    });

    for (const amount of [0, -5]) {
      it(`amount ${amount} is the typed HTTPValidationError (greater_than)`, async () => {
        const m = await merchant();
        const order = await m.order(1000, 0);
        const err = await rejects(
          () => sdk.create(m.token, { order_id: order, reason: "other", amount }),
          sdk.HTTPValidationError,
        );
        const e = theError(sdk, err, ["body", "amount"]);
        assert.deepEqual([e.type, e.msg, e.input], ["greater_than", "Input should be greater than 0", amount]);
      });
    }

    for (const reason of ["dispute_prevention", "because"]) {
      it(`an invalid reason (${reason})`, async () => {
        const m = await merchant();
        const order = await m.order(1000, 0);
        if (sdk.InputError) {
          // 0.x: zod refuses the body before anything is sent
          const err = await rejects(
            () => sdk.create(m.token, { order_id: order, reason, amount: 100 }),
            sdk.InputError,
          );
          assert.match(err.message, /reason|Input validation failed/);
        } else {
          // 1.x sends it; the server answers 422 literal_error
          const err = await rejects(
            () => sdk.create(m.token, { order_id: order, reason, amount: 100 }),
            sdk.HTTPValidationError,
          );
          const e = theError(sdk, err, ["body", "reason"]);
          assert.equal(e.type, "literal_error");
          assert.equal(e.input, reason);
          assert.match(e.msg, /'customer_request'/);
        }
        assert.equal((await admin.getOrder(order)).refunded_amount, 0);
      });
    }

    it("a malformed order_id is the typed HTTPValidationError (uuid_parsing)", async () => {
      const m = await merchant();
      const err = await rejects(
        () => sdk.create(m.token, { order_id: "abc", reason: "other", amount: 100 }),
        sdk.HTTPValidationError,
      );
      const e = theError(sdk, err, ["body", "order_id"]);
      assert.deepEqual([e.type, e.input], ["uuid_parsing", "abc"]);
    });

    it("an unknown order is the typed HTTPValidationError 'Order not found'", async () => {
      const m = await merchant();
      const missing = randomUUID();
      const err = await rejects(
        () => sdk.create(m.token, { order_id: missing, reason: "other", amount: 100 }),
        sdk.HTTPValidationError,
      );
      const e = theError(sdk, err, ["body", "order_id"]);
      assert.deepEqual([e.type, e.msg, e.input], ["value_error", "Order not found", missing]);
    });

    it("comment and revoke_benefits are accepted", async () => {
      const m = await merchant();
      const order = await m.order(1000, 100);
      const refund = sdk.view(
        await sdk.create(m.token, {
          order_id: order,
          reason: "satisfaction_guarantee",
          amount: 500,
          comment: "goodwill, ticket #42",
          revoke_benefits: true,
        }),
      );
      assert.deepEqual([refund.amount, refund.tax_amount, refund.revoke_benefits], [500, 50, true]);
      assert.equal(refund.reason, "satisfaction_guarantee");
      assert.ok(!("comment" in refund), "comment is internal, never returned");

      // an explicit null comment, as the SDKs send it when told to
      const again = sdk.view(await sdk.create(m.token, { order_id: order, reason: "other", amount: 100, comment: null }));
      assert.deepEqual([again.amount, again.tax_amount, again.revoke_benefits], [100, 10, false]);
    });

    it("revoke_benefits on a subscription order is the SDK's plain 400 client error", async () => {
      const m = await merchant();
      const order = await m.order(1000, 0, { subscriptionId: randomUUID() });
      const err = await rejects(
        () => sdk.create(m.token, { order_id: order, reason: "other", amount: 100, revoke_benefits: true }),
        sdk.ClientError,
      );
      assert.ok(!(err instanceof sdk.RefundedAlready) && !(err instanceof sdk.HTTPValidationError));
      assert.equal(sdk.statusOf(err), 400);
      assert.match(sdk.rawBodyOf(err), /"RevokeSubscriptionBenefitsProhibited"/);
    });

    it("metadata round-trips (string, int, float, bool)", async () => {
      const m = await merchant();
      const order = await m.order(1000, 0);
      const metadata = { note: "vip customer", ticket: 42, ratio: 0.25, manual: true, no: false };
      const refund = await sdk.create(m.token, { order_id: order, reason: "other", amount: 10, metadata });
      const { items } = await sdk.list(m.token, { id: refund.id });
      for (const got of [refund.metadata, items[0].metadata]) {
        assert.deepEqual(got, metadata);
      }
    });
  });

  describe("list", () => {
    // customer A (ext-a): o1 one-time 1000/250 -> r0=100, r1=300; o2 subscription s1 2000/0 -> r2=500
    // customer B (ext-b): o3 subscription s2 3000/300 -> r3=700, r4=50; created in order r0..r4
    const amounts = [100, 300, 500, 700, 50];
    const w = {};
    before(async () => {
      w.m = await merchant();
      const org = w.m.organizationId;
      w.extA = `ext-a-${randomUUID().slice(0, 8)}`;
      w.extB = `ext-b-${randomUUID().slice(0, 8)}`;
      w.customerA = await admin.customer(org, w.extA);
      w.customerB = await admin.customer(org, w.extB);
      w.subscriptions = [randomUUID(), randomUUID()];
      w.orders = [
        await admin.order(org, w.customerA, 1000, 250),
        await admin.order(org, w.customerA, 2000, 0, { subscriptionId: w.subscriptions[0] }),
        await admin.order(org, w.customerB, 3000, 300, { subscriptionId: w.subscriptions[1] }),
      ];
      w.refunds = [];
      for (const [o, amount] of [[0, 100], [0, 300], [1, 500], [2, 700], [2, 50]]) {
        w.refunds.push(await sdk.create(w.m.token, { order_id: w.orders[o], reason: "customer_request", amount }));
      }
    });
    const pick = (indexes) => indexes.map((i) => w.refunds[i].id);

    const filters = {
      "id (one)": () => [{ id: w.refunds[3].id }, [3]],
      "id (several)": () => [{ id: [w.refunds[0].id, w.refunds[4].id] }, [0, 4]],
      organization_id: () => [{ organization_id: w.m.organizationId }, [0, 1, 2, 3, 4]],
      "organization_id (unknown)": () => [{ organization_id: randomUUID() }, []],
      order_id: () => [{ order_id: w.orders[0] }, [0, 1]],
      "order_id (several)": () => [{ order_id: [w.orders[1], w.orders[2]] }, [2, 3, 4]],
      subscription_id: () => [{ subscription_id: w.subscriptions[1] }, [3, 4]],
      customer_id: () => [{ customer_id: w.customerB }, [3, 4]],
      external_customer_id: () => [{ external_customer_id: w.extA }, [0, 1, 2]],
      "external_customer_id (several)": () => [{ external_customer_id: [w.extA, w.extB] }, [0, 1, 2, 3, 4]],
      "succeeded=true": () => [{ succeeded: true }, [0, 1, 2, 3, 4]],
      "succeeded=false": () => [{ succeeded: false }, []],
      "customer_id and order_id": () => [{ customer_id: w.customerA, order_id: w.orders[1] }, [2]],
    };
    for (const [name, make] of Object.entries(filters)) {
      it(`filter: ${name}`, async () => {
        const [query, expected] = make();
        const { items, pagination } = await sdk.list(w.m.token, { limit: 100, ...query });
        assert.deepEqual(ids(items).sort(), pick(expected).sort());
        assert.equal(pagination.total_count, expected.length);
        assert.equal(pagination.max_page, expected.length ? 1 : 0);
      });
    }

    for (const [sorting, order] of [
      ["created_at", [0, 1, 2, 3, 4]],
      ["-created_at", [4, 3, 2, 1, 0]],
      ["amount", [4, 0, 1, 2, 3]],
      ["-amount", [3, 2, 1, 0, 4]],
    ]) {
      it(`sorting: ${sorting}`, async () => {
        const { items } = await sdk.list(w.m.token, { sorting: [sorting] });
        assert.deepEqual(ids(items), pick(order));
        assert.deepEqual(items.map((r) => r.amount), order.map((i) => amounts[i]));
      });
    }

    it("the default order is newest first", async () => {
      const { items, pagination } = await sdk.list(w.m.token);
      assert.deepEqual(ids(items), pick([4, 3, 2, 1, 0]));
      assert.deepEqual([pagination.total_count, pagination.max_page], [5, 1]);
    });

    it("listed refunds equal the created ones", async () => {
      const { items } = await sdk.list(w.m.token, { sorting: ["created_at"] });
      assert.deepEqual(items, w.refunds);
    });

    for (const limit of [1, 2, 3, 5, 7]) {
      it(`the SDK's own pager walks every page (limit ${limit})`, async () => {
        const { pagination } = await sdk.list(w.m.token, { limit });
        const { items, pages } = await sdk.iterate(w.m.token, { limit, sorting: ["amount"] });
        assert.equal(items.length, pagination.total_count);
        assert.equal(items.length, 5);
        assert.deepEqual(ids(items), pick([4, 0, 1, 2, 3]));
        if (pages !== null) assert.equal(pages, Math.max(1, Math.ceil(5 / limit)));
      });
    }

    it("the SDK's own pager on an empty result", async () => {
      const { items, pages } = await sdk.iterate(w.m.token, { limit: 2, succeeded: false });
      assert.deepEqual(items, []);
      if (pages !== null) assert.equal(pages, 1);
    });

    it("a page past the end is empty", async () => {
      const { items, pagination } = await sdk.list(w.m.token, { page: 4, limit: 2 });
      assert.deepEqual(items, []);
      assert.deepEqual([pagination.total_count, pagination.max_page], [5, 3]);
    });

    it("limit over 100 is clamped", async () => {
      const { items, pagination } = await sdk.list(w.m.token, { limit: 500 });
      assert.equal(items.length, 5);
      assert.equal(pagination.max_page, 1);
    });

    for (const param of ["page", "limit"]) {
      it(`${param}=0 is the typed HTTPValidationError`, async () => {
        const err = await rejects(() => sdk.list(w.m.token, { [param]: 0 }), sdk.HTTPValidationError);
        assert.equal(theError(sdk, err, ["query", param]).type, "greater_than");
      });
    }

    it("another organization sees nothing and cannot refund", async () => {
      const other = await merchant();
      for (const query of [{}, { organization_id: w.m.organizationId }, { order_id: w.orders[0] }]) {
        const { items, pagination } = await sdk.list(other.token, query);
        assert.deepEqual(items, []);
        assert.equal(pagination.total_count, 0);
        assert.equal(pagination.max_page, 0);
      }
      const err = await rejects(
        () => sdk.create(other.token, { order_id: w.orders[0], reason: "other", amount: 1 }),
        sdk.HTTPValidationError,
      );
      const e = theError(sdk, err, ["body", "order_id"]);
      assert.deepEqual([e.msg, e.input], ["Order not found", w.orders[0]]);
    });
  });

  describe("auth", () => {
    it("a read-only token lists but cannot create", async () => {
      const m = await merchant();
      const order = await m.order(1000, 0);
      const made = await sdk.create(m.token, { order_id: order, reason: "other", amount: 100 });
      const { items, pagination } = await sdk.list(m.readToken);
      assert.deepEqual(ids(items), [made.id]);
      assert.equal(pagination.total_count, 1);

      // The SDKs declare 403 on create as RefundedAlready only; the scope
      // error is an OAuth2 body, as it is against Polar.
      const err = await rejects(() => sdk.create(m.readToken, { order_id: order, reason: "other", amount: 100 }));
      if (sdk.build === "1") {
        // 1.x: mis-typed as RefundedAlready, the OAuth2 body parsed into `.error`
        assert.ok(err instanceof sdk.RefundedAlready, `${err.name}: ${err.message}`);
        assert.equal(sdk.statusOf(err), 403);
        assert.equal(err.error.error, "insufficient_scope");
        assert.equal(err.error.detail, undefined);
      } else {
        // 0.x: RefundedAlready's schema refuses the body -> ResponseValidationError (raw body kept)
        assert.ok(err instanceof sdk.ResponseValidationError, `${err.name}: ${err.message}`);
        assert.ok(!(err instanceof sdk.RefundedAlready));
        assert.equal(sdk.statusOf(err), 403);
        assert.match(sdk.rawBodyOf(err), /"error":"insufficient_scope"/);
      }
      assert.equal((await admin.getOrder(order)).refunded_amount, 100);
    });

    it("a bad token is the SDK's 401 client error", async () => {
      const m = await merchant();
      const order = await m.order(1000, 0);
      for (const call of [
        () => sdk.list("polar_oat_not-a-real-token"),
        () => sdk.create("polar_oat_not-a-real-token", { order_id: order, reason: "other", amount: 1 }),
        () => sdk.list("garbage"),
      ]) {
        const err = await rejects(call, sdk.ClientError);
        assert.ok(!(err instanceof sdk.RefundedAlready) && !(err instanceof sdk.HTTPValidationError));
        assert.equal(sdk.statusOf(err), 401);
        assert.match(sdk.rawBodyOf(err), /"invalid_token"/);
      }
    });

    it("other 403s on create are mis-typed exactly as against Polar", async () => {
      const m = await merchant();
      const blocked = await m.order(1000, 0);
      await admin.blockOrder(blocked, true);
      const disputed = await m.order(1000, 0);
      await admin.dispute(disputed, "needs_response");
      for (const [order, name] of [[blocked, "RefundsBlocked"], [disputed, "RefundDisputedPayment"]]) {
        const err = await rejects(() => sdk.create(m.token, { order_id: order, reason: "other", amount: 1 }));
        assert.equal(sdk.statusOf(err), 403);
        if (sdk.build === "1") {
          assert.ok(err instanceof sdk.RefundedAlready);
          assert.equal(err.error.error, name);
        } else {
          assert.ok(err instanceof sdk.ResponseValidationError, `${err.name}: ${err.message}`);
          assert.match(sdk.rawBodyOf(err), new RegExp(`"error":"${name}"`));
        }
      }
    });
  });

  describe("disputes", () => {
    it("a dispute-prevention refund lists with its dispute embedded", async () => {
      const m = await merchant();
      const order = await m.order(1000, 250);
      const manual = await sdk.create(m.token, { order_id: order, reason: "other", amount: 200 });
      const dispute = await admin.dispute(order, "early_warning");
      assert.equal(dispute.status, "prevented");

      const { items, pagination } = await sdk.list(m.token, { order_id: order, sorting: ["-amount"] });
      assert.equal(pagination.total_count, 2);
      const [prevention, other] = items.map((r) => sdk.view(r));
      assert.equal(other.id, manual.id);
      assert.equal(other.dispute, null);
      assert.equal(prevention.reason, "dispute_prevention");
      assert.equal(prevention.status, "succeeded");
      assert.deepEqual([prevention.amount, prevention.tax_amount], [800, 200]);
      assert.equal(prevention.revoke_benefits, true);
      assert.equal(prevention.subscription_id, null);

      const embedded = sdk.viewDispute(prevention.dispute);
      assert.equal(embedded.id, dispute.id);
      assert.equal(embedded.status, "prevented");
      assert.deepEqual([embedded.resolved, embedded.closed], [false, true]);
      assert.deepEqual([embedded.amount, embedded.tax_amount, embedded.currency], [800, 200, "usd"]);
      assert.equal(embedded.order_id, order);
      assert.ok(isUuid4(embedded.payment_id));
      sdk.timestamp(embedded.created_at);
      assert.equal(embedded.reason, null);
      assert.equal(embedded.evidence_due_by, null);
      assert.equal(embedded.past_due, false);
    });
  });

  describe("client configuration", () => {
    const only1x = build === "1" ? false : "@polar-sh/sdk 0.x has a single API version";
    it("every API-version client of the build (2026-04, 2026-10, 2027-01)", { skip: only1x }, async () => {
      const m = await merchant();
      for (const apiVersion of sdk.apiVersions) {
        const client = sdk.client(m.token, { apiVersion });
        const order = await m.order(1000, 250);
        const refund = await client.refunds.create({ order_id: order, reason: "other", amount: 100 });
        assert.deepEqual([refund.amount, refund.tax_amount], [100, 25]);
        const listed = await client.refunds.list({ order_id: order });
        assert.deepEqual(ids(listed.items), [refund.id]);
      }
    });

    it("a client bound to an organization (Polar-Organization header)", { skip: only1x }, async () => {
      const m = await merchant();
      const client = sdk.client(m.token, { organizationId: m.organizationId });
      const order = await m.order(1000, 0);
      const refund = await client.refunds.create({ order_id: order, reason: "other", amount: 100 });
      assert.deepEqual(ids((await client.refunds.list()).items), [refund.id]);
    });

    it("a base URL with a trailing slash", async () => {
      const m = await merchant();
      const order = await m.order(1000, 0);
      const client = sdk.client(m.token, { baseUrl: `${sdk.baseUrl}/` });
      const body = { order_id: order, reason: "other", amount: 100 };
      if (sdk.build === "1") {
        // 1.x concatenates: this requests //v1/refunds/
        const refund = await client.refunds.create(body);
        assert.deepEqual(ids((await client.refunds.list()).items), [refund.id]);
      } else {
        const refund = await client.refunds.create({ orderId: order, reason: "other", amount: 100 });
        assert.deepEqual(ids((await client.refunds.list({})).result.items), [refund.id]);
      }
    });
  });

  describe("orders and payments", () => {
    let shop;
    const f = (object, name) => sdk.field(object, name);
    before(async () => {
      const m = await merchant();
      const other = await admin.customer(m.organizationId, undefined, "Bob");
      const subscriptionId = randomUUID();
      const productId = randomUUID();
      const taxed = await m.order(1000, 250, { metadata: { plan: "basic", seats: 2, vip: true } });
      const subscription = await m.order(3000, 300, {
        subscriptionId,
        product_id: productId,
        product_name: "Gold",
        product_recurring_interval: "year",
        items: [
          { label: "Gold", amount: 2500, tax_amount: 250 },
          { label: "Seat", amount: 500, tax_amount: 50 },
        ],
        billing_name: "Acme Ltd",
        billing_address: { country: "DE", city: "Berlin" },
      });
      const untaxed = await admin.order(m.organizationId, other, 2000, 0, { payment_method: "paypal" });
      shop = { m, other, taxed, subscription, untaxed, subscriptionId, productId };
    });

    it("orders.get parses a taxed order with metadata", async () => {
      const order = await sdk.getOrder(shop.m.token, shop.taxed);
      assert.equal(order.id, shop.taxed);
      assert.equal(order.status, "paid");
      assert.deepEqual(
        ["net_amount", "tax_amount", "total_amount", "refundable_amount", "refundable_tax_amount"].map((k) => f(order, k)),
        [1000, 250, 1250, 1000, 250],
      );
      assert.deepEqual(order.metadata, { plan: "basic", seats: 2, vip: true });
      assert.equal(f(order, "billing_reason"), "purchase");
      assert.equal(order.product, null);
      assert.equal(order.subscription, null);
      assert.equal(f(order.customer, "external_id"), shop.m.externalId);
      assert.equal(order.items.length, 1);
      assert.deepEqual([order.items[0].amount, f(order.items[0], "tax_amount")], [1000, 250]);
      sdk.timestamp(f(order, "created_at"));
    });

    it("orders.get parses a subscription order with its product and lines", async () => {
      const order = await sdk.getOrder(shop.m.token, shop.subscription);
      assert.equal(f(order, "billing_reason"), "subscription_create");
      assert.equal(order.subscription.id, shop.subscriptionId);
      assert.equal(order.subscription.status, "active");
      assert.equal(f(order.subscription, "recurring_interval"), "year");
      assert.equal(f(order.subscription, "product_id"), shop.productId);
      assert.equal(order.product.name, "Gold");
      assert.equal(f(order.product, "is_recurring"), true);
      assert.deepEqual(order.items.map((i) => [i.label, i.amount, f(i, "tax_amount")]), [
        ["Gold", 2500, 250],
        ["Seat", 500, 50],
      ]);
      assert.equal(f(order, "billing_name"), "Acme Ltd");
      assert.equal(f(order, "billing_address").country, "DE");
    });

    it("orders.list filters and sorts", async () => {
      const newestFirst = [shop.untaxed, shop.subscription, shop.taxed];
      const all = await sdk.listOrders(shop.m.token);
      assert.deepEqual(ids(all.items), newestFirst);
      assert.deepEqual([all.pagination.total_count, all.pagination.max_page], [3, 1]);
      const cases = [
        [{ customer_id: shop.m.customerId }, [shop.subscription, shop.taxed]],
        [{ customer_id: [shop.m.customerId, shop.other] }, newestFirst],
        [{ external_customer_id: shop.m.externalId }, [shop.subscription, shop.taxed]],
        [{ subscription_id: shop.subscriptionId }, [shop.subscription]],
        [{ product_id: shop.productId }, [shop.subscription]],
        [{ product_billing_type: "recurring" }, [shop.subscription]],
        [{ organization_id: randomUUID() }, []],
        [{ metadata: { plan: "basic" } }, [shop.taxed]],
        [{ sorting: ["net_amount"] }, [shop.taxed, shop.untaxed, shop.subscription]],
        [{ sorting: ["created_at"] }, [...newestFirst].reverse()],
      ];
      for (const [query, expected] of cases) {
        const { items, pagination } = await sdk.listOrders(shop.m.token, query);
        assert.deepEqual(ids(items), expected, JSON.stringify(query));
        assert.equal(pagination.total_count, expected.length, JSON.stringify(query));
      }
    });

    for (const limit of [1, 2]) {
      it(`the orders pager walks every page (limit ${limit})`, async () => {
        const { items, pages } = await sdk.iterateOrders(shop.m.token, { limit });
        assert.deepEqual(ids(items), [shop.untaxed, shop.subscription, shop.taxed]);
        if (pages !== null) assert.equal(pages, Math.ceil(3 / limit));
      });
    }

    it("an order or payment of another organization is the typed ResourceNotFound", async () => {
      const stranger = await merchant();
      const err = await rejects(() => sdk.getOrder(stranger.token, shop.taxed), sdk.ResourceNotFound);
      assert.deepEqual(sdk.notFound(err), ["ResourceNotFound", "Not found"]);
      const { items } = await sdk.listPayments(shop.m.token, { order_id: shop.taxed });
      await rejects(() => sdk.getPayment(stranger.token, items[0].id), sdk.ResourceNotFound);
      assert.deepEqual(ids((await sdk.listOrders(stranger.token)).items), []);
    });

    it("payments.get and payments.list parse card and generic payments", async () => {
      const { items, pagination } = await sdk.listPayments(shop.m.token);
      assert.equal(pagination.total_count, 3);
      const byOrder = Object.fromEntries(items.map((p) => [f(p, "order_id"), p]));
      const card = byOrder[shop.taxed];
      assert.equal(card.method, "card");
      assert.deepEqual(f(card, "method_metadata"), { brand: "visa", last4: "4242" });
      assert.equal(card.amount, 1250);
      assert.equal(card.processor, "stripe");
      assert.equal(card.status, "succeeded");
      const paypal = byOrder[shop.untaxed];
      assert.equal(paypal.method, "paypal");
      assert.equal(f(paypal, "method_metadata"), undefined);
      const fetched = await sdk.getPayment(shop.m.token, card.id);
      assert.deepEqual([fetched.id, fetched.amount, f(fetched, "order_id")], [card.id, 1250, shop.taxed]);
      const cases = [
        [{ order_id: shop.subscription }, [shop.subscription]],
        [{ customer_id: shop.other }, [shop.untaxed]],
        [{ method: "paypal" }, [shop.untaxed]],
        [{ status: "failed" }, []],
        [{ sorting: ["amount"] }, [shop.taxed, shop.untaxed, shop.subscription]],
      ];
      for (const [query, expected] of cases) {
        const listed = await sdk.listPayments(shop.m.token, query);
        assert.deepEqual(listed.items.map((p) => f(p, "order_id")), expected, JSON.stringify(query));
      }
    });

    it("orders follow refunds", async () => {
      await sdk.create(shop.m.token, { order_id: shop.taxed, reason: "customer_request", amount: 400 });
      const order = await sdk.getOrder(shop.m.token, shop.taxed);
      assert.equal(order.status, "partially_refunded");
      assert.deepEqual(
        ["refunded_amount", "refunded_tax_amount", "refundable_amount", "refundable_tax_amount"].map((k) => f(order, k)),
        [400, 100, 600, 150],
      );
    });
  });
}
