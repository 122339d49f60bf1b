import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { BdcError, type KernelServices } from "@bdc/core";
import { PluginTester, testPlugin } from "@bdc/core/testing";
import { ProviderError, type Policy } from "@bdc/policy";
import { policyContract } from "@bdc/policy/testing";
import { closedPort, fakeOllama, type FakeOllama } from "./fake-ollama-server.ts";
import plugin from "./ollama-plugin.ts";

testPlugin(plugin, {
  valid: [{ model: "llama3.2" }, { model: "qwen2.5-coder:7b", host: "http://gpu-box:11434/", keep_alive: "10m", num_ctx: 8192, stream: true }, { model: "m", keep_alive: -1 }],
  invalid: [
    { config: {}, code: "BDC_CONFIG_MISSING_KEY", path: "model" },
    { config: { model: "m", host: 11434 }, code: "BDC_CONFIG_TYPE", path: "host" },
    { config: { model: "m", num_ctx: 0 }, code: "BDC_CONFIG_VALUE", path: "num_ctx" },
    { config: { model: "m", api_key_env: "OLLAMA_KEY" }, code: "BDC_CONFIG_UNKNOWN_KEY" },
  ],
});

const MODEL = "qwen2.5-coder:7b";
const ask = [{ role: "user" as const, content: "Write a function that adds two numbers." }];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-ollama-"));
const tester = new PluginTester(plugin);
let server: FakeOllama;
let n = 0;

before(async () => {
  server = await fakeOllama();
});
after(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  server.requests.length = 0;
});

type Event = { event: string } & Record<string, unknown>;

async function make(config: Record<string, unknown> = {}, kernel: Partial<KernelServices> = {}) {
  const events: Event[] = [];
  const policy = await tester.make<Policy>(
    { model: MODEL, host: server.url, cache_dir: path.join(tmp, `cache-${n++}`), ...config },
    {},
    { instance: "local", baseDir: tmp, emit: (event, data) => void events.push({ event, ...data }), ...kernel },
  );
  return { policy, events };
}

const fails = (code: string, ...texts: string[]) => (e: unknown) => {
  assert.ok(e instanceof BdcError, `expected a BdcError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  for (const t of texts) assert.ok(`${e.message}\n${e.hint}`.includes(t), `"${t}" not in: ${e.message} / hint: ${e.hint}`);
  return true;
};

describe("preflight", () => {
  const preflight = async (host: string) => [...(await plugin.preflight!(tester.decode({ model: MODEL, host }) as never, { instance: "local", baseDir: tmp, env: {} }))];

  test("a host that is not an http(s) URL is BDC_CONFIG_VALUE at host", async () => {
    for (const host of ["localhost:11434", "127.0.0.1:11434", "ftp://box:11434", "not a url"]) {
      const problems = await preflight(host);
      assert.equal(problems.length, 1, host);
      assert.equal(problems[0]!.code, "BDC_CONFIG_VALUE");
      assert.deepEqual(problems[0]!.path, ["host"]);
      assert.match(problems[0]!.hint!, /http:\/\/127\.0\.0\.1:11434/);
    }
  });

  test("a valid host passes without contacting the server", async () => {
    assert.deepEqual(await preflight(server.url), []);
    assert.deepEqual(await preflight(await closedPort()), [], "offline: an unreachable server is not a preflight problem");
    assert.deepEqual(await preflight("https://ollama.example.org/base"), []);
    assert.equal(server.requests.length, 0);
  });

  test("make refuses a bad host too", async () => {
    await assert.rejects(make({ host: "localhost:11434" }), fails("BDC_CONFIG_VALUE", "localhost:11434"));
  });
});

test("a plain completion speaks /api/chat: request body, answer, tokens", async () => {
  server.script({ chat: "def add(a, b):\n    return a + b", promptEvalCount: 31, evalCount: 14 });
  const { policy, events } = await make({ system: "You are a Python expert.", max_tokens: 64, stop: ["\n\n\n"], seed: 7, top_p: 0.9, num_ctx: 4096, keep_alive: "5m" });
  const c = await policy.complete(ask);
  assert.deepEqual(
    [c.text, c.inputTokens, c.outputTokens, c.finishReason, c.model, c.cached, c.retries],
    ["def add(a, b):\n    return a + b", 31, 14, "stop", MODEL, false, 0],
  );
  assert.equal(server.requests.length, 1);
  const r = server.requests[0]!;
  assert.equal(r.method, "POST");
  assert.equal(r.url, "/api/chat");
  assert.match(String(r.headers["content-type"]), /application\/json/);
  assert.match(String(r.headers["user-agent"]), /^ollama-js\//);
  assert.deepEqual(r.body, {
    model: MODEL,
    messages: [{ role: "system", content: "You are a Python expert." }, ...ask],
    stream: false,
    keep_alive: "5m",
    options: { temperature: 0, top_p: 0.9, num_predict: 64, stop: ["\n\n\n"], seed: 7, num_ctx: 4096 },
  });
  assert.equal(events.filter((e) => e.event === "llm.call").length, 1);
  assert.equal(policy.provider, "ollama");
});

test("streaming accumulates the NDJSON chunks; counts and done_reason come from the final chunk", async () => {
  const text = "def add(a, b):\n    return a + b  # ünïcödé 🦙";
  server.script({ chat: text, promptEvalCount: 20, evalCount: 9, doneReason: "length" });
  const { policy } = await make({ stream: true, max_tokens: 9 });
  const c = await policy.complete(ask);
  assert.deepEqual([c.text, c.inputTokens, c.outputTokens, c.finishReason], [text, 20, 9, "length"]);
  assert.equal(server.requests.length, 1);
  assert.equal(server.requests[0]!.body.stream, true);
  assert.equal(server.requests[0]!.body.options.num_predict, 9);
  assert.equal("keep_alive" in server.requests[0]!.body, false, "unset keep_alive is not sent");
});

test("cache: the identical call is answered without a request; num_ctx is part of the key", async () => {
  server.script({ chat: "first" }, { chat: "other context" });
  const { policy } = await make({ cache_dir: path.join(tmp, "shared-cache") });
  const a = await policy.complete(ask);
  const b = await policy.complete(ask);
  assert.deepEqual([a.text, a.cached, b.text, b.cached, b.costUsd], ["first", false, "first", true, 0]);
  assert.equal(server.requests.length, 1, "the second call reached no server");
  const { policy: bigger } = await make({ cache_dir: path.join(tmp, "shared-cache"), num_ctx: 32768 });
  assert.deepEqual([(await bigger.complete(ask)).text, server.requests.length], ["other context", 2]);
  assert.equal(policy.usage().cached, 1);
});

test("a 500 is retried, then the answer counts", async () => {
  server.script({ status: 500, error: "llama runner process has terminated: signal: killed" }, { chat: "recovered" });
  const { policy, events } = await make({ max_retries: 2 });
  const c = await policy.complete(ask);
  assert.deepEqual([c.text, c.retries, server.requests.length], ["recovered", 1, 2]);
  const retry = events.find((e) => e.event === "llm.retry");
  assert.deepEqual([retry?.kind, retry?.status], ["server", 500]);
  assert.match(String(retry?.message), /llama runner process has terminated/);
});

test("429 is a rate limit, retried after Retry-After", async () => {
  server.script({ status: 429, error: "too many requests", headers: { "retry-after": "0" } }, { chat: "fine" });
  const { policy, events } = await make({ max_retries: 1 });
  assert.equal((await policy.complete(ask)).text, "fine");
  const retry = events.find((e) => e.event === "llm.retry");
  assert.deepEqual([retry?.kind, retry?.status, retry?.wait_ms], ["rate_limit", 429, 0]);
});

test("an unknown model fails fast (one request) with BDC_POLICY_NOT_FOUND and the `ollama pull` hint", async () => {
  server.script({ status: 404, error: `model "nope:1b" not found, try pulling it first` });
  const { policy } = await make({ model: "nope:1b" });
  await assert.rejects(policy.complete(ask), fails("BDC_POLICY_NOT_FOUND", `model "nope:1b" not found`, "HTTP 404", "ollama pull nope:1b"));
  assert.equal(server.requests.length, 1);
  assert.equal(policy.usage().failed, 1);
});

test("other 4xx fail fast as BDC_POLICY_REQUEST", async () => {
  server.script({ status: 400, error: "invalid options: num_ctx" });
  const { policy } = await make({ max_retries: 3 });
  await assert.rejects(policy.complete(ask), fails("BDC_POLICY_REQUEST", "invalid options: num_ctx", "HTTP 400"));
  assert.equal(server.requests.length, 1);
});

test("connection refused is retried, then BDC_POLICY_UNAVAILABLE with the `ollama serve` hint", async () => {
  const host = await closedPort();
  const { policy, events } = await make({ host, max_retries: 1 });
  await assert.rejects(policy.complete(ask), fails("BDC_POLICY_UNAVAILABLE", "connection refused", "after 1 retries", `ollama serve\` running at ${host}`));
  assert.deepEqual(
    events.filter((e) => e.event === "llm.retry" || e.event === "llm.error").map((e) => [e.event, e.kind]),
    [["llm.retry", "connection"], ["llm.error", "connection"]],
  );
});

test("a hung connection times out after timeout_ms and is retried", async () => {
  server.script({ hang: true }, { hang: true });
  const { policy, events } = await make({ timeout_ms: 200, max_retries: 1 });
  const t0 = performance.now();
  await assert.rejects(policy.complete(ask), fails("BDC_POLICY_UNAVAILABLE", "within 200 ms", "timeout_ms"));
  assert.ok(performance.now() - t0 >= 400, "two attempts of 200 ms");
  assert.equal(server.requests.length, 2);
  assert.deepEqual(events.filter((e) => e.event === "llm.retry").map((e) => e.kind), ["timeout"]);
});

test("a stream that stalls after its first chunks times out too, and the retry succeeds", async () => {
  server.script({ hang: true, afterChunks: 2 }, { chat: "whole answer" });
  const { policy } = await make({ stream: true, timeout_ms: 200, max_retries: 1 });
  const c = await policy.complete(ask);
  assert.deepEqual([c.text, c.retries, server.requests.length], ["whole answer", 1, 2]);
});

test("aborting the caller's signal stops a call at once, without retrying", async () => {
  server.script({ hang: true });
  const { policy } = await make({ timeout_ms: 10_000, max_retries: 3 });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  await assert.rejects(policy.complete(ask, { signal: controller.signal }), (e: unknown) => e instanceof ProviderError && e.kind === "aborted");
  assert.equal(server.requests.length, 1);
});

describe("malformed answers", () => {
  test("a body that is not JSON is malformed (and retried)", async () => {
    server.script({ status: 200, raw: "{not json" }, { chat: "good" });
    const { policy, events } = await make({ max_retries: 1 });
    assert.equal((await policy.complete(ask)).text, "good");
    assert.deepEqual(events.filter((e) => e.event === "llm.retry").map((e) => e.kind), ["malformed"]);
  });

  test("malformed for good is BDC_POLICY_UNAVAILABLE naming the protocol; nothing is cached", async () => {
    server.script({ status: 200, raw: "<html>proxy login</html>", contentType: "text/html" }, { status: 200, raw: JSON.stringify({ model: MODEL, done: true }) });
    const { policy } = await make({ max_retries: 0 });
    await assert.rejects(policy.complete(ask), fails("BDC_POLICY_UNAVAILABLE", "not JSON", "/api/chat protocol"));
    await assert.rejects(policy.complete(ask), fails("BDC_POLICY_UNAVAILABLE", "without message.content"));
    assert.equal((await policy.complete(ask)).cached, false);
  });

  test("a garbled NDJSON line, a stream without its done chunk, an error line mid-stream", async () => {
    const chunk = (content: string) => JSON.stringify({ model: MODEL, created_at: new Date().toISOString(), message: { role: "assistant", content }, done: false });
    server.script(
      { lines: [chunk("def "), "{garbage", chunk("add")] },
      { lines: [chunk("def "), chunk("add")] },
      { lines: [chunk("def "), JSON.stringify({ error: "an error was encountered while running the model: CUDA error" })] },
    );
    const { policy, events } = await make({ stream: true, max_retries: 0 });
    await assert.rejects(policy.complete(ask), fails("BDC_POLICY_UNAVAILABLE", "not JSON"));
    await assert.rejects(policy.complete(ask), fails("BDC_POLICY_UNAVAILABLE", "done"));
    await assert.rejects(policy.complete(ask), fails("BDC_POLICY_UNAVAILABLE", "CUDA error", "server.log"));
    assert.deepEqual(events.filter((e) => e.event === "llm.error").map((e) => e.kind), ["malformed", "malformed", "server"]);
  });
});

test("token accounting from prompt_eval_count / eval_count, with prices", async () => {
  server.script({ chat: "a", promptEvalCount: 100, evalCount: 40 }, { chat: "b", promptEvalCount: null, evalCount: 10 });
  const { policy, events } = await make({ price_input_per_million: 1, price_output_per_million: 2 });
  const a = await policy.complete(ask);
  const b = await policy.complete([{ role: "user", content: "again" }]);
  assert.deepEqual([a.inputTokens, a.outputTokens, a.costUsd], [100, 40, 0.00018]);
  assert.deepEqual([b.inputTokens, b.outputTokens], [0, 10], "prompt_eval_count is absent when the prompt was cached by the server");
  const usage = policy.usage();
  assert.deepEqual([usage.calls, usage.input_tokens, usage.output_tokens, usage.cost_usd], [2, 100, 50, 0.00020]);
  assert.deepEqual(events.filter((e) => e.event === "llm.call").map((e) => [e.input_tokens, e.output_tokens]), [[100, 40], [0, 10]]);
});

// The policy slot's contract, against a fake server of its own (testPlugin registers its tests
// when this module loads, so the server must be up by then).
const contractServer = await fakeOllama();
after(() => contractServer.close());
testPlugin(plugin, { contract: { config: { model: MODEL, host: contractServer.url, cache_dir: path.join(tmp, "contract-cache") }, slot: policyContract as never } });
