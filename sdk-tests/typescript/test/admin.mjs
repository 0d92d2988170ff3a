// Seeding through the server's admin API (`/admin/...`) with plain fetch. Never through an
// SDK: the SDKs know nothing of these routes.
import { randomUUID } from "node:crypto";

export const BASE_URL = process.env.REFUNDS_BASE_URL ?? "";
const ADMIN_TOKEN = process.env.REFUNDS_ADMIN_TOKEN ?? "";
if (!BASE_URL || !ADMIN_TOKEN) {
  throw new Error(
    "set REFUNDS_BASE_URL and REFUNDS_ADMIN_TOKEN (scripts/sdk-tests.sh does it for you)",
  );
}

const short = () => randomUUID().replaceAll("-", "").slice(0, 10);

async function call(method, path, body, expect = 201) {
  const response = await fetch(`${BASE_URL}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${ADMIN_TOKEN}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status !== expect) {
    throw new Error(`admin ${method} ${path} ${JSON.stringify(body)}: ${response.status} ${text}`);
  }
  return JSON.parse(text);
}

export const admin = {
  organization: async () =>
    (await call("POST", "/admin/organizations", { name: `SDK test org ${short()}` })).id,
  token: async (organizationId, scopes) =>
    (await call("POST", `/admin/organizations/${organizationId}/access-tokens`, { scopes })).token,
  customer: async (organizationId, externalId, name) =>
    (
      await call("POST", "/admin/customers", {
        organization_id: organizationId,
        email: `${short()}@example.com`,
        ...(externalId === undefined ? {} : { external_id: externalId }),
        ...(name === undefined ? {} : { name }),
      })
    ).id,
  /** `details`: any other field of the admin order body (product, items, metadata…). */
  order: async (organizationId, customerId, net, tax, { currency = "usd", subscriptionId, ...details } = {}) =>
    (
      await call("POST", "/admin/orders", {
        organization_id: organizationId,
        customer_id: customerId,
        net_amount: net,
        tax_amount: tax,
        currency,
        ...(subscriptionId === undefined ? {} : { subscription_id: subscriptionId }),
        ...details,
      })
    ).id,
  getOrder: (orderId) => call("GET", `/admin/orders/${orderId}`, undefined, 200),
  blockOrder: (orderId, blocked) =>
    call("PATCH", `/admin/orders/${orderId}`, { refunds_blocked: blocked }, 200),
  dispute: (orderId, status, amounts = {}) =>
    call("POST", `/admin/orders/${orderId}/disputes`, { status, ...amounts }),
};

/** One organization with a read-write token, a read-only token and one customer. */
export async function merchant() {
  const organizationId = await admin.organization();
  const externalId = `ext_${short()}`;
  const m = {
    organizationId,
    externalId,
    token: await admin.token(organizationId, ["refunds:read", "refunds:write", "orders:read", "payments:read"]),
    readToken: await admin.token(organizationId, ["refunds:read"]),
    customerId: await admin.customer(organizationId, externalId),
  };
  m.order = (net, tax, options) => admin.order(organizationId, m.customerId, net, tax, options);
  return m;
}

export { randomUUID, short };
