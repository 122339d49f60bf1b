/**
 * encoder/openai on the wire: the encoder contract and exact vectors against the dev echo
 * server (base64 and float), and against a scripted loopback server the request body, retries
 * on 429 / 5xx, error mapping with hints, out-of-order and malformed answers, preflight.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, afterEach, describe, test } from "node:test";
import { BdcError } from "@bdc/core";
import { PluginTester, testPlugin } from "@bdc/core/testing";
import type { EmbedderUsage, Encoder } from "@bdc/policy";
import { encoderContract } from "@bdc/policy/testing";
import { echoEmbedding, startEchoServer } from "./dev/echo-server.ts";
import plugin from "./openai-encoder.ts";
import { apiError, json, raw, wireServer, type Handler, type Json, type Wire } from "./testing/wire-server.ts";

const KEY_VAR = "BDC_TEST_OPENAI_EMBED_KEY";
process.env[KEY_VAR] = "sk-embed-1";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-openai-encoder-"));
const echo = await startEchoServer();
after(async () => {
  await echo.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});
const cacheDir = () => fs.mkdtempSync(path.join(tmp, "cache-"));

testPlugin(plugin, { contract: { config: { model: "echo-embed", baseURL: `${echo.url}/v1`, cache_dir: cacheDir() }, slot: encoderContract } });

const unit = (v: Float32Array) => {
  const n = Math.hypot(...v);
  return Array.from(v, (x) => Math.fround(x / n));
};

type Built = Encoder & { stats(): EmbedderUsage };

async function make(config: Json, events: Array<Json & { event: string }> = []): Promise<Built> {
  return new PluginTester(plugin).make<Built>({ model: "emb", api_key_env: KEY_VAR, cache_dir: cacheDir(), max_retries: 2, ...config }, {}, { instance: "enc", baseDir: tmp, emit: (event, data) => events.push({ event, ...data }) });
}

describe("against the dev echo server", () => {
  for (const encoding_format of ["base64", "float"] as const) {
    test(`${encoding_format}: the server's vectors, normalised, with the probed dimension`, async () => {
      const enc = await make({ baseURL: `${echo.url}/v1`, encoding_format });
      assert.equal(enc.dimension, 64);
      const texts = ["two pointers over a sorted array", "dynamic programming on subsets"];
      const out = await enc.embed(texts);
      out.forEach((v, i) => assert.deepEqual(Array.from(v), unit(echoEmbedding(texts[i]!))));
    });
  }

  test("dimensions is sent and honoured", async () => {
    const enc = await make({ baseURL: `${echo.url}/v1`, dimensions: 16 });
    assert.equal(enc.dimension, 16);
    assert.deepEqual(Array.from((await enc.embed(["abc"]))[0]!), unit(echoEmbedding("abc", 16)));
  });
});

describe("on the wire", () => {
  let servers: Wire[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
  });

  /** OpenAI's answer for the request: index-tagged base64 vectors [len, 1, 0] (in `order`), usage. */
  const embeddings = (order: "same" | "reversed" = "same"): Handler => (_req, res, body) => {
    const data = (body.input as string[]).map((t, index) => ({ object: "embedding", index, embedding: Buffer.from(Float32Array.from([t.length, 1, 0]).buffer).toString("base64") }));
    json(res, 200, { object: "list", model: `${String(body.model)}-v1`, data: order === "same" ? data : data.reverse(), usage: { prompt_tokens: 5, total_tokens: 5 } });
  };

  async function wired(script: Handler[], config: Json = {}, events?: Array<Json & { event: string }>) {
    const wire = await wireServer("/v1/embeddings", script, embeddings());
    servers.push(wire);
    const enc = await make({ baseURL: `${wire.url}/v1`, dimensions: 3, ...config }, events);
    return { wire, enc };
  }

  test("the request: model, input list, dimensions, encoding_format, bearer key", async () => {
    const { wire, enc } = await wired([]);
    await enc.embed(["a", "bb"]);
    assert.deepEqual(wire.seen[0]!.body, { model: "emb", input: ["a", "bb"], dimensions: 3, encoding_format: "base64" });
    assert.equal(wire.seen[0]!.headers.authorization, "Bearer sk-embed-1");
  });

  test("data in another order is put back by index", async () => {
    const { enc } = await wired([embeddings("reversed")]);
    const [a, bb] = await enc.embed(["a", "bb"]);
    assert.ok(a![0]! < bb![0]!, "a is [1,1,0]/norm, bb is [2,1,0]/norm");
  });

  test("429 (Retry-After) and 503 are retried, then the vectors are used", async () => {
    const events: Array<Json & { event: string }> = [];
    const { wire, enc } = await wired([apiError(429, "Rate limit reached", "requests", "rate_limit_exceeded", { "retry-after-ms": "5" }), apiError(503, "overloaded", "server_error", null)], {}, events);
    await enc.embed(["x"]);
    assert.equal(wire.seen.length, 3);
    assert.deepEqual(events.map((e) => e.event), ["llm.retry", "llm.retry", "llm.embed"]);
    assert.equal(enc.stats().input_tokens, 5);
  });

  test("401, 404 and 400 fail fast with what to do", async () => {
    const cases: Array<[Handler, string, RegExp]> = [
      [apiError(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key"), "BDC_POLICY_AUTH", new RegExp(`refused the key in ${KEY_VAR}`)],
      [apiError(404, "The model `emb` does not exist", "invalid_request_error", "model_not_found"), "BDC_POLICY_NOT_FOUND", /does not serve model "emb"/],
      [apiError(400, "This model does not support specifying dimensions.", "invalid_request_error", null), "BDC_POLICY_REQUEST", /does it support dimensions \(3\)/],
    ];
    for (const [handler, code, hint] of cases) {
      const { wire, enc } = await wired([handler]);
      await assert.rejects(enc.embed(["x"]), (e: BdcError) => e.code === code && hint.test(e.hint ?? "") && /^encoder instance "enc" \(openai, model emb\)/.test(e.message));
      assert.equal(wire.seen.length, 1, `${code}: not retried`);
    }
  });

  test("a body that is not an embedding list is retried, then reported", async () => {
    const bad = raw(200, "application/json", '{"object": "list", "data": [{"index": 0, "embedding": {"oops": 1}}]}');
    const { wire, enc } = await wired([bad, bad, bad]);
    await assert.rejects(enc.embed(["x"]), (e: BdcError) => e.code === "BDC_POLICY_UNAVAILABLE" && /neither a list of numbers nor base64/.test(e.message) && /not an Embeddings response/.test(e.hint ?? ""));
    assert.equal(wire.seen.length, 3);
  });

  test("preflight: api.openai.com needs the key; another server does not", async () => {
    const tester = new PluginTester(plugin);
    const preflight = async (config: Json) => [...(await plugin.preflight!(tester.decode(config) as never, { instance: "enc", baseDir: tmp, env: {} }))].map((p) => p.code);
    assert.deepEqual(await preflight({ model: "text-embedding-3-small" }), ["BDC_POLICY_MISSING_KEY"]);
    assert.deepEqual(await preflight({ model: "nomic-embed-text", baseURL: "http://127.0.0.1:11434/v1" }), []);
  });
});
