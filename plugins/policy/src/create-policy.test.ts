import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { Schema } from "effect";
import { BdcError, type KernelServices } from "@bdc/core";
import { PolicyConfig } from "./config.ts";
import { createPolicy } from "./create-policy.ts";
import { ProviderError, type ProviderClient, type ProviderRequest, type ProviderResponse } from "./types.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-policy-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A scripted provider: each call takes the next answer (a response or an error to throw). */
function scripted(answers: Array<ProviderResponse | ProviderError>): ProviderClient & { requests: ProviderRequest[] } {
  const requests: ProviderRequest[] = [];
  return {
    provider: "fake",
    endpoint: "http://fake",
    requests,
    async send(request) {
      requests.push(request);
      const next = answers.shift();
      if (next === undefined) throw new Error("no more scripted answers");
      if (next instanceof ProviderError) throw next;
      return next;
    },
  };
}

const events: Array<{ event: string; data?: Record<string, unknown> }> = [];
const kernel = (instance = "agent"): KernelServices => ({
  instance,
  baseDir: tmp,
  runDir: undefined,
  emit: (event, data) => void events.push({ event, ...(data === undefined ? {} : { data }) }),
  log: () => {},
  warn: () => {},
  signal: new AbortController().signal,
});
let n = 0;
const config = (over: Record<string, unknown> = {}) =>
  Schema.decodeUnknownSync(PolicyConfig)({ model: "m", cache_dir: path.join(tmp, `cache-${n++}`), price_input_per_million: 1, price_output_per_million: 2, ...over });
const ok = (text: string): ProviderResponse => ({ text, inputTokens: 10, outputTokens: 5, finishReason: "stop" });
const fast = { baseMs: 1, maxMs: 50 };
const ask = [{ role: "user" as const, content: "hi" }];

test("a call is accounted; the identical call is served from the cache without a request", async () => {
  const client = scripted([ok("hello")]);
  const cfg = config();
  const p = createPolicy({ client, config: cfg, kernel: kernel(), retry: fast });
  const first = await p.complete(ask);
  assert.deepEqual([first.text, first.cached, first.inputTokens, first.outputTokens, first.costUsd], ["hello", false, 10, 5, 0.00002]);
  const second = await p.complete(ask);
  assert.deepEqual([second.text, second.cached, second.costUsd], ["hello", true, 0]);
  assert.equal(client.requests.length, 1);
  // Another instance (another process, a rerun) with the same config shares the cache.
  const again = createPolicy({ client: scripted([]), config: cfg, kernel: kernel("other"), retry: fast });
  assert.equal((await again.complete(ask)).cached, true);
  assert.deepEqual(p.usage(), { calls: 2, cached: 1, failed: 0, retries: 0, input_tokens: 10, output_tokens: 5, cost_usd: 0.00002, latency_ms_total: p.usage().latency_ms_total });
});

test("every sampling parameter and the system prompt are part of the cache key", async () => {
  const client = scripted([ok("a"), ok("b"), ok("c"), ok("d")]);
  const cfg = config({ system: "be brief" });
  const p = createPolicy({ client, config: cfg, kernel: kernel(), retry: fast });
  await p.complete(ask);
  await p.complete(ask, { sampling: { temperature: 0.7 } });
  await p.complete(ask, { sampling: { stop: ["\n"] } });
  await p.complete([{ role: "user", content: "hi!" }]);
  assert.equal(client.requests.length, 4);
  assert.deepEqual(client.requests[0]!.messages, [{ role: "system", content: "be brief" }, ...ask]);
  assert.equal(client.requests[0]!.sampling.temperature, 0, "greedy by default, as in the paper");
  const other = createPolicy({ client: scripted([ok("e")]), config: { ...cfg, system: "be verbose" }, kernel: kernel(), retry: fast });
  assert.equal((await other.complete(ask)).cached, false);
});

test("read-only cache: a hit replays, a miss is an error naming the request", async () => {
  const cfg = config();
  await createPolicy({ client: scripted([ok("x")]), config: cfg, kernel: kernel(), retry: fast }).complete(ask);
  const replay = createPolicy({ client: scripted([]), config: { ...cfg, cache: "read-only" }, kernel: kernel(), retry: fast });
  assert.equal((await replay.complete(ask)).text, "x");
  await assert.rejects(replay.complete([{ role: "user", content: "never asked" }]), (e: BdcError) => {
    assert.equal(e.code, "BDC_CACHE_MISS");
    assert.match(e.message, /policy instance "agent" \(fake, model m\): no cached response .* last user message "never asked"/);
    return true;
  });
});

test("cache off: every call goes to the provider", async () => {
  const client = scripted([ok("1"), ok("2")]);
  const p = createPolicy({ client, config: config({ cache: "off" }), kernel: kernel(), retry: fast });
  assert.equal((await p.complete(ask)).text, "1");
  assert.equal((await p.complete(ask)).text, "2");
});

test("429, 5xx, timeouts and resets are retried (Retry-After honoured); then it succeeds", async () => {
  const waits: number[] = [];
  const client = scripted([
    new ProviderError("rate_limit", "slow down", 429, 7),
    new ProviderError("server", "oops", 500),
    new ProviderError("timeout", "timed out"),
    new ProviderError("connection", "ECONNRESET"),
    ok("finally"),
  ]);
  const p = createPolicy({ client, config: config(), kernel: kernel(), retry: { ...fast, sleep: async (ms) => void waits.push(ms) } });
  const r = await p.complete(ask);
  assert.equal(r.text, "finally");
  assert.equal(r.retries, 4);
  assert.equal(waits[0], 7, "Retry-After wins over the computed backoff");
  assert.equal(p.usage().retries, 4);
});

test("errors retrying cannot fix fail fast with the instance and what to do", async () => {
  for (const [kind, code] of [["auth", "BDC_POLICY_AUTH"], ["not_found", "BDC_POLICY_NOT_FOUND"], ["bad_request", "BDC_POLICY_REQUEST"]] as const) {
    const client = scripted([new ProviderError(kind, "nope", 401)]);
    const p = createPolicy({ client, config: config(), kernel: kernel("gpt"), retry: fast, explain: (k) => (k === "auth" ? "set OPENAI_API_KEY" : undefined) });
    await assert.rejects(p.complete(ask), (e: BdcError) => {
      assert.equal(e.code, code);
      assert.match(e.message, /^policy instance "gpt" \(fake, model m\): nope \(HTTP 401\)$/);
      if (kind === "auth") assert.equal(e.hint, "set OPENAI_API_KEY");
      return true;
    });
    assert.equal(client.requests.length, 1, `${kind}: no retry`);
    assert.equal(p.usage().failed, 1);
  }
});

test("retries are bounded: the last error is reported with the count", async () => {
  const client = scripted([new ProviderError("server", "down", 503), new ProviderError("server", "down", 503), new ProviderError("server", "down", 503)]);
  const p = createPolicy({ client, config: config({ max_retries: 2 }), kernel: kernel(), retry: fast });
  await assert.rejects(p.complete(ask), (e: BdcError) => e.code === "BDC_POLICY_UNAVAILABLE" && /down \(HTTP 503\) after 2 retries/.test(e.message));
  assert.equal(client.requests.length, 3);
});

test("the concurrency limit holds", async () => {
  let inFlight = 0;
  let max = 0;
  const client: ProviderClient = {
    provider: "fake",
    endpoint: "x",
    async send(req) {
      inFlight++;
      max = Math.max(max, inFlight);
      await new Promise((r) => setTimeout(r, 10));
      inFlight--;
      return ok(req.messages.at(-1)!.content);
    },
  };
  const p = createPolicy({ client, config: config({ concurrency: 2, cache: "off" }), kernel: kernel(), retry: fast });
  await Promise.all(Array.from({ length: 8 }, (_, i) => p.complete([{ role: "user", content: String(i) }])));
  assert.equal(max, 2);
});

test("calls, retries and errors are events of the run", async () => {
  events.length = 0;
  const p = createPolicy({ client: scripted([new ProviderError("server", "x", 500), ok("y")]), config: config(), kernel: kernel(), retry: fast });
  await p.complete(ask);
  assert.deepEqual(events.map((e) => e.event), ["llm.retry", "llm.call"]);
  assert.equal(events[1]!.data!.input_tokens, 10);
  assert.equal(events[1]!.data!.cached, false);
});
