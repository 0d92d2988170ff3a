// @polar-sh/sdk 1.x (npm alias `sdk1`, pinned in package.json) against a live refunds-server.
import { describe } from "node:test";

import { BASE_URL } from "./admin.mjs";
import { loadBuild1 } from "./builds.mjs";
import { defineSuite } from "./suite.mjs";
import { defineWebhookSuite } from "./webhooks.mjs";

describe("@polar-sh/sdk 1.x", () => defineSuite("1", () => loadBuild1(BASE_URL)));
describe("@polar-sh/sdk 1.x webhooks", () => defineWebhookSuite("1", () => loadBuild1(BASE_URL)));
