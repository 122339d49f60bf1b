/**
 * The `policy` and `encoder` slots' contracts, for provider plugins' tests:
 *
 *   testPlugin(plugin, { contract: { config: { model: "m", baseURL: server.url, cache_dir: tmp }, slot: policyContract } });
 *
 * The instance must reach a server that answers (a loopback fake speaking the provider's
 * protocol); the cases check what every search plugin relies on.
 */
import * as assert from "node:assert/strict";
import { defineContract } from "@bdc/core/testing";
import type { Encoder, Policy } from "../types.ts";

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

/**
 * The `encoder` slot's contract (encoder/local, encoder/onnx, encoder/openai, ...): what
 * step/embed and the clustering rely on.
 */
export const encoderContract = defineContract<Encoder>({
  slot: "encoder",
  cases: [
    {
      name: "one unit-length vector of `dimension` finite values per text, in input order",
      async check(encoder) {
        const texts = ["def add(a, b): return a + b", "Sort the list in place.", "", "print(sum(map(int, input().split())))"];
        const vectors = await encoder.embed(texts);
        assert.equal(vectors.length, texts.length);
        assert.ok(Number.isInteger(encoder.dimension) && encoder.dimension > 0, `dimension ${encoder.dimension}`);
        for (const v of vectors) {
          assert.ok(v instanceof Float32Array && v.length === encoder.dimension, `a Float32Array of ${encoder.dimension}`);
          assert.ok(v.every(Number.isFinite), "finite values");
          const norm = Math.hypot(...v);
          assert.ok(Math.abs(norm - 1) < 1e-4, `unit length (got ${norm})`);
        }
        assert.ok(encoder.model.length > 0);
      },
    },
    {
      name: "a text's vector does not depend on its batch",
      async check(encoder) {
        const [alone] = await encoder.embed(["binary search over the answer"]);
        const batch = await encoder.embed(["a much longer text that pads the batch differently: " + "x ".repeat(40), "binary search over the answer"]);
        let dot = 0;
        for (let i = 0; i < alone!.length; i++) dot += alone![i]! * batch[1]![i]!;
        assert.ok(dot > 1 - 1e-4, `cosine ${dot}`);
      },
    },
  ],
});
