// @polar-sh/sdk 0.x (npm alias `sdk0`, pinned in package.json) against a live refunds-server.
import { describe } from "node:test";

import { BASE_URL } from "./admin.mjs";
import { loadBuild0 } from "./builds.mjs";
import { defineSuite } from "./suite.mjs";
import { defineWebhookSuite } from "./webhooks.mjs";

describe("@polar-sh/sdk 0.x", () => defineSuite("0", () => loadBuild0(BASE_URL)));
describe("@polar-sh/sdk 0.x webhooks", () => defineWebhookSuite("0", () => loadBuild0(BASE_URL)));
