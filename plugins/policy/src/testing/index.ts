/**
 * The `policy` slot's contract, for provider plugins' tests:
 *
 *   testPlugin(plugin, { contract: { config: { model: "m", baseURL: server.url, cache_dir: tmp }, slot: policyContract } });
 *
 * The instance must reach a server that answers (a loopback fake speaking the provider's
 * protocol); the cases check what every search plugin relies on.
 */
import * as assert from "node:assert/strict";
import { defineContract } from "@bdc/core/testing";
import type { Policy } from "../types.ts";

export const policyContract = defineContract<Policy>({
  slot: "policy",
  cases: [
    {
      name: "answers with text and non-negative token counts, named after its instance",
      async check(policy) {
        const r = await policy.complete([{ role: "user", content: "Say hello." }]);
        assert.equal(typeof r.text, "string");
        assert.ok(r.inputTokens >= 0 && r.outputTokens >= 0, "token counts");
        assert.equal(typeof policy.name, "string");
        assert.ok(policy.model.length > 0);
      },
    },
    {
      name: "the identical request again is served from the cache, and accounted",
      async check(policy) {
        const messages = [{ role: "user" as const, content: `cache probe ${Math.random()}` }];
        const first = await policy.complete(messages);
        const second = await policy.complete(messages);
        assert.equal(first.cached, false);
        assert.equal(second.cached, true);
        assert.equal(second.text, first.text);
        const u = policy.usage();
        assert.ok(u.calls >= 2 && u.cached >= 1, JSON.stringify(u));
      },
    },
  ],
});
