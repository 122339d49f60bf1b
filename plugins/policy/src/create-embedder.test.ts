/** createEmbedder on a scripted EmbeddingClient: the per-text cache, batching, normalisation, retries, errors, accounting. */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { Schema } from "effect";
import { BdcError, type KernelServices } from "@bdc/core";
import { EmbedderConfig } from "./config.ts";
import { createEmbedder, DIMENSION_PROBE } from "./create-embedder.ts";
import { ProviderError, type EmbeddingClient, type EmbeddingRequest } from "./types.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-embedder-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const events: Array<{ event: string; data?: Record<string, unknown> }> = [];
const kernel: KernelServices = {
  instance: "enc",
  baseDir: tmp,
  runDir: undefined,
  emit: (event, data) => void events.push({ event, ...(data === undefined ? {} : { data }) }),
  log: () => {},
  warn: () => {},
  signal: new AbortController().signal,
};
let n = 0;
const config = (over: Record<string, unknown> = {}) => Schema.decodeUnknownSync(EmbedderConfig)({ model: "emb", cache_dir: path.join(tmp, `cache-${n++}`), price_input_per_million: 2, ...over });
const fast = { baseMs: 1, maxMs: 20 };

/** A vector that says which text it is for: [length, 2, 2]. */
const vectorOf = (text: string) => Float32Array.from([text.length, 2, 2]);
const unitOf = (text: string) => {
  const v = vectorOf(text);
  const norm = Math.hypot(...v);
  return Array.from(v, (x) => Math.fround(x / norm));
};

/** Answers every batch with vectorOf; `script` injects errors or odd answers first. */
function server(script: Array<ProviderError | ((r: EmbeddingRequest) => Float32Array[])> = []): EmbeddingClient & { requests: EmbeddingRequest[] } {
  const requests: EmbeddingRequest[] = [];
  return {
    provider: "fake",
    endpoint: "http://fake",
    requests,
    async embed(request) {
      requests.push(request);
      const next = script.shift();
      if (next instanceof ProviderError) throw next;
      const vectors = next === undefined ? request.input.map(vectorOf) : next(request);
      return { vectors, inputTokens: request.input.length * 3 };
    },
  };
}

test("vectors come back unit-length, in input order; the dimension is probed once", async () => {
  const client = server();
  const enc = await createEmbedder({ client, config: config(), kernel, retry: fast });
  assert.equal(enc.dimension, 3);
  assert.deepEqual(client.requests.map((r) => r.input), [[DIMENSION_PROBE]]);
  const out = await enc.embed(["a", "bbbb", "cc"]);
  assert.deepEqual(out.map((v) => Array.from(v)), [unitOf("a"), unitOf("bbbb"), unitOf("cc")]);
});

test("one cache entry per text: a rerun and a grown list only send the new texts; duplicates are sent once", async () => {
  const cfg = config({ batch_size: 2 });
  const client = server();
  const enc = await createEmbedder({ client, config: cfg, kernel, retry: fast });
  await enc.embed(["x", "yy", "x", "zzz"]);
  assert.deepEqual(client.requests.slice(1).map((r) => r.input), [["x", "yy"], ["zzz"]], "batches of batch_size, duplicates once");
  const again = server();
  const rerun = await createEmbedder({ client: again, config: cfg, kernel, retry: fast });
  const out = await rerun.embed(["zzz", "new", "x"]);
  assert.deepEqual(again.requests.map((r) => r.input), [["new"]], "the probe and the old texts come from the cache");
  assert.deepEqual(Array.from(out[0]!), unitOf("zzz"));
  assert.deepEqual(rerun.stats(), { calls: 1, texts: 1, cached: 3, failed: 0, retries: 0, input_tokens: 3, cost_usd: 0.000006, latency_ms_total: rerun.stats().latency_ms_total });
});

test("the model, the endpoint and dimensions are part of the key", async () => {
  const cfg = config({ dimensions: 3 });
  await (await createEmbedder({ client: server(), config: cfg, kernel, retry: fast })).embed(["t"]);
  const other = server();
  await (await createEmbedder({ client: other, config: { ...cfg, model: "emb-2" }, kernel, retry: fast })).embed(["t"]);
  assert.deepEqual(other.requests.map((r) => r.input), [["t"]], "dimensions set: no probe; another model: a miss");
  assert.equal(other.requests[0]!.dimensions, 3);
});

test("read-only cache: hits replay, a miss names the text", async () => {
  const cfg = config();
  await (await createEmbedder({ client: server(), config: cfg, kernel, retry: fast })).embed(["seen"]);
  const replay = await createEmbedder({ client: server([new ProviderError("connection", "must not be called")]), config: { ...cfg, cache: "read-only" }, kernel, retry: fast });
  assert.deepEqual(Array.from((await replay.embed(["seen"]))[0]!), unitOf("seen"));
  await assert.rejects(replay.embed(["unseen"]), (e: BdcError) => e.code === "BDC_CACHE_MISS" && /encoder instance "enc" \(fake, model emb\).*text "unseen"/.test(e.message));
});

test("429 and 5xx are retried (Retry-After honoured); auth fails fast with the hint", async () => {
  const waits: number[] = [];
  const client = server([new ProviderError("rate_limit", "slow down", 429, 9), new ProviderError("server", "oops", 502)]);
  const enc = await createEmbedder({ client, config: config({ dimensions: 3 }), kernel, retry: { ...fast, sleep: async (ms) => void waits.push(ms) } });
  events.length = 0;
  await enc.embed(["r"]);
  assert.equal(waits[0], 9);
  assert.equal(enc.stats().retries, 2);
  assert.deepEqual(events.map((e) => e.event), ["llm.retry", "llm.retry", "llm.embed"]);
  assert.deepEqual([events[2]!.data!.texts, events[2]!.data!.input_tokens], [1, 3]);

  const denied = await createEmbedder({ client: server([new ProviderError("auth", "bad key", 401)]), config: config({ dimensions: 3 }), kernel, retry: fast, explain: () => "export OPENAI_API_KEY=..." });
  await assert.rejects(denied.embed(["r"]), (e: BdcError) => e.code === "BDC_POLICY_AUTH" && e.hint === "export OPENAI_API_KEY=..." && /^encoder instance "enc" \(fake, model emb\): bad key \(HTTP 401\)$/.test(e.message));
  assert.equal(denied.stats().failed, 1);
});

test("a wrong count, a changed dimension, a zero or non-finite vector are clear errors, and nothing is cached", async () => {
  const cases: Array<[(r: EmbeddingRequest) => Float32Array[], string, RegExp]> = [
    [(r) => r.input.slice(1).map(vectorOf), "BDC_ENCODER_OUTPUT", /asked for 2 embeddings, got 1/],
    [(r) => r.input.map(() => new Float32Array(4).fill(1)), "BDC_ENCODER_DIMENSION", /a vector of 4 values, expected 3/],
    [(r) => r.input.map(() => new Float32Array(3)), "BDC_ENCODER_OUTPUT", /an all-zero vector for "p"/],
    [(r) => r.input.map(() => Float32Array.from([1, Number.NaN, 0])), "BDC_ENCODER_OUTPUT", /non-finite values for "p"/],
  ];
  for (const [answer, code, message] of cases) {
    const cfg = config({ dimensions: 3 });
    const enc = await createEmbedder({ client: server([answer]), config: cfg, kernel, retry: fast });
    await assert.rejects(enc.embed(["p", "q"]), (e: BdcError) => e.code === code && message.test(e.message), code);
    const next = server();
    await (await createEmbedder({ client: next, config: cfg, kernel, retry: fast })).embed(["p", "q"]);
    assert.equal(next.requests.length, 1, "the failed batch left no cache entries");
  }
});

test("batches go out concurrently, held to `concurrency`", async () => {
  let inFlight = 0;
  let max = 0;
  const client: EmbeddingClient = {
    provider: "fake",
    endpoint: "x",
    async embed(r) {
      inFlight++;
      max = Math.max(max, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 10));
      inFlight--;
      return { vectors: r.input.map(vectorOf), inputTokens: 1 };
    },
  };
  const enc = await createEmbedder({ client, config: config({ batch_size: 1, concurrency: 3, cache: "off", dimensions: 3 }), kernel, retry: fast });
  const out = await enc.embed(Array.from({ length: 9 }, (_, i) => "t".repeat(i + 1)));
  assert.equal(max, 3);
  assert.deepEqual(Array.from(out[8]!), unitOf("t".repeat(9)));
});
