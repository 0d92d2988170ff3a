// The two official TypeScript SDK builds behind one small interface, installed side by side as
// npm aliases (package.json): `sdk1` = @polar-sh/sdk 1.x, `sdk0` = @polar-sh/sdk 0.x.
//
// The adapter only papers over call shapes (client construction, camelCase vs snake_case
// names, where a typed error keeps its parsed body, how the SDK's own pager is driven). Every
// value the tests look at comes from the SDK's own objects.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

/** The installed version of an alias (1.x does not export its package.json). */
const installedVersion = (alias) =>
  JSON.parse(readFileSync(new URL(`../node_modules/${alias}/package.json`, import.meta.url), "utf8")).version;

const REFUND_FIELDS = [
  "created_at", "modified_at", "id", "metadata", "status", "reason", "amount", "tax_amount",
  "currency", "organization_id", "order_id", "subscription_id", "customer_id",
  "revoke_benefits", "dispute",
];
const DISPUTE_FIELDS = [
  "created_at", "modified_at", "id", "status", "resolved", "closed", "amount", "tax_amount",
  "currency", "reason", "evidence_due_by", "past_due", "order_id", "payment_id",
];
const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
const camelKeys = (object) =>
  Object.fromEntries(Object.entries(object).map(([k, v]) => [camel(k), v]));

// ---------------------------------------------------------------------------------------------
// @polar-sh/sdk 1.x: `createPolar` per API version; returns the JSON as sent (no response
// validation); typed errors carry the parsed JSON body in `.error`.
export async function loadBuild1(baseUrl) {
  const version = installedVersion("sdk1");
  const apiVersions = ["2026-04", "2026-10", "2027-01"];
  const modules = Object.fromEntries(
    await Promise.all(apiVersions.map(async (v) => [v, await import(`sdk1/${v}`)])),
  );
  const base = await import("sdk1");
  const refundsService = await import("sdk1/2026-10/services/refunds");
  const { errors } = modules["2026-10"];
  const clients = new Map();

  const build = {
    build: "1",
    label: `@polar-sh/sdk ${version} (import { createPolar } from "@polar-sh/sdk/2026-10")`,
    version,
    baseUrl,
    apiVersions,
    RefundedAlready: errors.RefundedAlready,
    HTTPValidationError: errors.HTTPValidationError,
    ClientError: base.PolarClientError, // any undeclared 4xx, raw text in `.error`
    ServerError: base.PolarServerError,
    InputError: null, // 1.x sends whatever it is given

    client(token, { apiVersion = "2026-10", baseUrl: url = baseUrl, organizationId } = {}) {
      const key = `${token}|${apiVersion}|${url}|${organizationId}`;
      if (!clients.has(key)) {
        clients.set(
          key,
          modules[apiVersion].createPolar({ accessToken: token, baseUrl: url, timeout: 10, organizationId }),
        );
      }
      return clients.get(key);
    },
    create: (token, body) => build.client(token).refunds.create(body),
    /** A create that also sends `Idempotency-Key`. 1.x has no per-call headers; its services
     * take any core, so a core whose requests carry the header is handed to the SDK's own
     * refunds service. */
    createWithKey(token, key, body) {
      const core = modules["2026-10"].createPolarCore({ accessToken: token, baseUrl, timeout: 10 });
      const buildRequest = core.buildRequest.bind(core);
      core.buildRequest = (...args) => {
        const [url, init] = buildRequest(...args);
        init.headers.set("Idempotency-Key", key);
        return [url, init];
      };
      return refundsService.createRefunds(core)(body);
    },
    async list(token, query = {}) {
      const res = await build.client(token).refunds.list(query);
      return { items: res.items, pagination: res.pagination };
    },
    /** Every item through the SDK's own pager (`iterList` yields items and stops at max_page):
     * the page count is not observable, so `pages` is null. */
    async iterate(token, query = {}) {
      const items = [];
      for await (const item of build.client(token).refunds.iterList(query)) {
        items.push(item);
        assert.ok(items.length < 10_000, "the SDK pager does not stop");
      }
      return { items, pages: null };
    },
    /** The Refund as the SDK returned it (already snake_case). */
    view(refund) {
      assert.deepEqual(Object.keys(refund), REFUND_FIELDS);
      return refund;
    },
    viewDispute(dispute) {
      assert.deepEqual(Object.keys(dispute), DISPUTE_FIELDS);
      return dispute;
    },
    timestamp(value) {
      assert.equal(typeof value, "string");
      assert.match(value, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
      return new Date(value);
    },
    validationErrors: (err) => err.error.detail,
    refundedAlready: (err) => [err.error.error, err.error.detail],
    statusOf: (err) => err.statusCode,
    rawBodyOf: (err) => err.error,

    // orders and payments, read under their wire names
    ResourceNotFound: errors.ResourceNotFound,
    notFound: (err) => [err.error.error, err.error.detail],
    getOrder: (token, id) => build.client(token).orders.get(id),
    async listOrders(token, query = {}) {
      const res = await build.client(token).orders.list(query);
      return { items: res.items, pagination: res.pagination };
    },
    async iterateOrders(token, query = {}) {
      const items = [];
      for await (const item of build.client(token).orders.iterList(query)) {
        items.push(item);
        assert.ok(items.length < 10_000, "the SDK pager does not stop");
      }
      return { items, pages: null };
    },
    getPayment: (token, id) => build.client(token).payments.get(id),
    async listPayments(token, query = {}) {
      const res = await build.client(token).payments.list(query);
      return { items: res.items, pagination: res.pagination };
    },
    /** A field of an SDK object by its wire name. */
    field: (object, name) => object[name],

    // webhooks
    createEndpoint: (token, body) => build.client(token).webhooks.createWebhookEndpoint(body),
    async listEndpoints(token, query = {}) {
      const res = await build.client(token).webhooks.listWebhookEndpoints(query);
      return { items: res.items, pagination: res.pagination };
    },
    getEndpoint: (token, id) => build.client(token).webhooks.getWebhookEndpoint(id),
    updateEndpoint: (token, id, body) => build.client(token).webhooks.updateWebhookEndpoint(id, body),
    resetEndpointSecret: (token, id) => build.client(token).webhooks.resetWebhookEndpointSecret(id),
    deleteEndpoint: (token, id) => build.client(token).webhooks.deleteWebhookEndpoint(id),
    async listDeliveries(token, query = {}) {
      const res = await build.client(token).webhooks.listWebhookDeliveries(query);
      return { items: res.items, pagination: res.pagination };
    },
    redeliver: (token, id) => build.client(token).webhooks.redeliverWebhookEvent(id),
    /** The SDK's own verification and parsing of a delivery. */
    validateEvent: (body, headers, secret) =>
      modules["2026-10"].webhooks.validateEvent(body, headers, secret),
  };
  return build;
}

// ---------------------------------------------------------------------------------------------
// @polar-sh/sdk 0.x (Speakeasy): `new Polar`, camelCase models validated with zod both ways.
export async function loadBuild0(baseUrl) {
  const version = installedVersion("sdk0");
  const { Polar } = await import("sdk0");
  const { RefundedAlready } = await import("sdk0/models/errors/refundedalready.js");
  const { HTTPValidationError } = await import("sdk0/models/errors/httpvalidationerror.js");
  const { SDKError } = await import("sdk0/models/errors/sdkerror.js");
  const { ResponseValidationError } = await import("sdk0/models/errors/responsevalidationerror.js");
  const { SDKValidationError } = await import("sdk0/models/errors/sdkvalidationerror.js");
  const { ResourceNotFound } = await import("sdk0/models/errors/resourcenotfound.js");
  const clients = new Map();

  const build = {
    build: "0",
    label: `@polar-sh/sdk ${version} (import { Polar } from "@polar-sh/sdk")`,
    version,
    baseUrl,
    apiVersions: [],
    RefundedAlready,
    HTTPValidationError,
    ClientError: SDKError, // any undeclared 4xx/5xx, raw text in `.body`
    ResponseValidationError,
    InputError: SDKValidationError, // zod refused the request before sending

    client(token, { baseUrl: url = baseUrl } = {}) {
      const key = `${token}|${url}`;
      if (!clients.has(key)) {
        clients.set(key, new Polar({ accessToken: token, serverURL: url, timeoutMs: 10_000 }));
      }
      return clients.get(key);
    },
    create: (token, body) => build.client(token).refunds.create(camelKeys(body)),
    /** A create that also sends `Idempotency-Key`, through the SDK's request options. */
    createWithKey: (token, key, body) =>
      build.client(token).refunds.create(camelKeys(body), { headers: { "Idempotency-Key": key } }),
    async list(token, query = {}) {
      const page = await build.client(token).refunds.list(camelKeys(query));
      return { items: page.result.items, pagination: build.viewPagination(page.result.pagination) };
    },
    /** Every item through the SDK's own pager: `for await (const page of result)`. */
    async iterate(token, query = {}) {
      const items = [];
      let pages = 0;
      const result = await build.client(token).refunds.list(camelKeys(query));
      for await (const page of result) {
        pages += 1;
        assert.ok(pages < 1000, "the SDK pager does not stop");
        items.push(...page.result.items);
      }
      return { items, pages };
    },
    viewPagination(p) {
      assert.deepEqual(Object.keys(p).sort(), ["maxPage", "totalCount"]);
      return { total_count: p.totalCount, max_page: p.maxPage };
    },
    /** The SDK's camelCase Refund read back under the wire names. */
    view(refund) {
      assert.deepEqual(Object.keys(refund).sort(), REFUND_FIELDS.map(camel).sort());
      return Object.fromEntries(REFUND_FIELDS.map((f) => [f, refund[camel(f)]]));
    },
    viewDispute(dispute) {
      assert.deepEqual(Object.keys(dispute).sort(), DISPUTE_FIELDS.map(camel).sort());
      return Object.fromEntries(DISPUTE_FIELDS.map((f) => [f, dispute[camel(f)]]));
    },
    timestamp(value) {
      assert.ok(value instanceof Date && !Number.isNaN(value.getTime()), `not a Date: ${value}`);
      return value;
    },
    validationErrors: (err) => err.detail,
    refundedAlready: (err) => [err.error, err.detail],
    statusOf: (err) => err.statusCode,
    rawBodyOf: (err) => err.body,

    // orders and payments: camelCase models, read by their wire names through `field`
    ResourceNotFound,
    notFound: (err) => [err.error, err.detail],
    getOrder: (token, id) => build.client(token).orders.get({ id }),
    async listOrders(token, query = {}) {
      const page = await build.client(token).orders.list(camelKeys(query));
      return { items: page.result.items, pagination: build.viewPagination(page.result.pagination) };
    },
    async iterateOrders(token, query = {}) {
      const items = [];
      let pages = 0;
      const result = await build.client(token).orders.list(camelKeys(query));
      for await (const page of result) {
        pages += 1;
        assert.ok(pages < 1000, "the SDK pager does not stop");
        items.push(...page.result.items);
      }
      return { items, pages };
    },
    getPayment: (token, id) => build.client(token).payments.get({ id }),
    async listPayments(token, query = {}) {
      const page = await build.client(token).payments.list(camelKeys(query));
      return { items: page.result.items, pagination: build.viewPagination(page.result.pagination) };
    },
    field: (object, name) => object[camel(name)],

    // webhooks
    createEndpoint: (token, body) => build.client(token).webhooks.createWebhookEndpoint(camelKeys(body)),
    async listEndpoints(token, query = {}) {
      const page = await build.client(token).webhooks.listWebhookEndpoints(camelKeys(query));
      return { items: page.result.items, pagination: build.viewPagination(page.result.pagination) };
    },
    getEndpoint: (token, id) => build.client(token).webhooks.getWebhookEndpoint({ id }),
    updateEndpoint: (token, id, body) =>
      build.client(token).webhooks.updateWebhookEndpoint({ id, webhookEndpointUpdate: camelKeys(body) }),
    resetEndpointSecret: (token, id) => build.client(token).webhooks.resetWebhookEndpointSecret({ id }),
    deleteEndpoint: (token, id) => build.client(token).webhooks.deleteWebhookEndpoint({ id }),
    async listDeliveries(token, query = {}) {
      const page = await build.client(token).webhooks.listWebhookDeliveries(camelKeys(query));
      return { items: page.result.items, pagination: build.viewPagination(page.result.pagination) };
    },
    redeliver: (token, id) => build.client(token).webhooks.redeliverWebhookEvent({ id }),
    /** The SDK's own verification and parsing of a delivery. */
    async validateEvent(body, headers, secret) {
      const { validateEvent } = await import("sdk0/webhooks");
      return validateEvent(body, headers, secret);
    },
  };
  return build;
}
