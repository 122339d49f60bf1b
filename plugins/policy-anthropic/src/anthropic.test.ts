import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { BdcError } from "@bdc/core";
import { PluginTester, testPlugin } from "@bdc/core/testing";
import { ProviderError, type Policy } from "@bdc/policy";
import { policyContract } from "@bdc/policy/testing";
import plugin from "./anthropic-plugin.ts";
import { startFakeMessagesServer, tokens, type FakeServer } from "./fake-messages-server.ts";

const KEY_ENV = "BDC_TEST_ANTHROPIC_KEY";
const KEY = "sk-ant-test-key";
process.env[KEY_ENV] = KEY;

// The slot's own contract, against a server of its own (started before the cases register).
const contractServer = await startFakeMessagesServer(KEY);
const contractDir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-anthropic-contract-"));
after(async () => {
  await contractServer.close();
  fs.rmSync(contractDir, { recursive: true, force: true });
});

testPlugin(plugin, {
  contract: { config: { model: "claude-test-1", baseURL: contractServer.url, api_key_env: KEY_ENV, cache_dir: path.join(contractDir, "cache") }, baseDir: contractDir, slot: policyContract },
  valid: [{ model: "claude-test-1" }, { model: "claude-test-1", baseURL: "http://127.0.0.1:9", api_key_env: "MY_KEY", anthropic_version: "2023-06-01", stream: true, stop: ["\n\n"] }],
  invalid: [
    { config: {}, code: "BDC_CONFIG_MISSING_KEY", path: "model" },
    { config: { model: "claude-test-1", baseURL: "api.anthropic.com" }, code: "BDC_CONFIG_VALUE", path: "baseURL" },
    { config: { model: "claude-test-1", api_key_env: "not a name" }, code: "BDC_CONFIG_VALUE", path: "api_key_env" },
    { config: { model: "claude-test-1", anthropic_version: "latest" }, code: "BDC_CONFIG_VALUE", path: "anthropic_version" },
    { config: { model: "claude-test-1", organization: "x" }, code: "BDC_CONFIG_UNKNOWN_KEY", path: "organization" },
  ],
});

describe("policy/anthropic against a loopback Messages API", () => {
  let server: FakeServer;
  const dirs: string[] = [];
  before(async () => {
    server = await startFakeMessagesServer(KEY);
  });
  afterEach(() => {
    server.requests.length = 0;
  });
  after(async () => {
    await server.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  async function make(extra: Record<string, unknown> = {}) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-anthropic-"));
    dirs.push(dir);
    const events: Array<{ event: string; data: Record<string, unknown> }> = [];
    const warnings: string[] = [];
    const policy = await new PluginTester(plugin).make<Policy>(
      { model: "claude-test-1", baseURL: server.url, api_key_env: KEY_ENV, cache_dir: path.join(dir, "cache"), ...extra },
      {},
      { instance: "claude", baseDir: dir, emit: (event, data = {}) => void events.push({ event, data }), warn: (m) => void warnings.push(m) },
    );
    return { policy, events, warnings };
  }

  const ask = (content: string) => [{ role: "user" as const, content }];

  async function rejects(p: Promise<unknown>, code: string): Promise<BdcError> {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof BdcError, `expected a BdcError, got ${String(e)}`);
      assert.equal(e.code, code, e.message);
      return e;
    }
    assert.fail(`expected ${code}`);
  }

  test("plain completion: the Messages request and the parsed answer", async () => {
    const { policy, warnings } = await make({ max_tokens: 64, stop: ["END"], seed: 7 });
    const c = await policy.complete(ask("hello there"));
    assert.equal(c.text, "echo: hello there");
    assert.equal(c.inputTokens, 2);
    assert.equal(c.outputTokens, 3);
    assert.equal(c.finishReason, "end_turn");
    assert.equal(c.model, "claude-test-1");
    assert.equal(c.cached, false);
    assert.equal(c.retries, 0);
    assert.equal(policy.provider, "anthropic");
    assert.equal(policy.name, "claude");

    assert.equal(server.requests.length, 1);
    const r = server.requests[0]!;
    assert.equal(r.method, "POST");
    assert.equal(r.url, "/v1/messages");
    assert.equal(r.headers["x-api-key"], KEY);
    assert.equal(r.headers.authorization, `Bearer ${KEY}`);
    assert.equal(r.headers["anthropic-version"], "2026-10-21");
    assert.deepEqual(r.body, { model: "claude-test-1", max_tokens: 64, messages: [{ role: "user", content: "hello there" }], stop_sequences: ["END"] });
    // 2026-10-21 has no temperature and Anthropic no seed: said once, not sent.
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /"claude".*does not take temperature=0, seed=7: not sent/);
    await policy.complete(ask("again"));
    assert.equal(warnings.length, 1);
  });

  test("anthropic_version 2023-06-01 sends temperature and top_p", async () => {
    const { policy, warnings } = await make({ anthropic_version: "2023-06-01", temperature: 0.3, top_p: 0.9 });
    await policy.complete(ask("sample"));
    const r = server.requests[0]!;
    assert.equal(r.headers["anthropic-version"], "2023-06-01");
    assert.equal(r.body["temperature"], 0.3);
    assert.equal(r.body["top_p"], 0.9);
    assert.deepEqual(warnings, []);
  });

  test("per-call sampling overrides reach the request", async () => {
    const { policy } = await make({ anthropic_version: "2023-06-01" });
    await policy.complete(ask("x"), { sampling: { temperature: 1, max_tokens: 5, stop: ["a", "b"] } });
    const body = server.requests[0]!.body;
    assert.equal(body["temperature"], 1);
    assert.equal(body["max_tokens"], 5);
    assert.deepEqual(body["stop_sequences"], ["a", "b"]);
  });

  test("system prompts go to the top-level system parameter, joined", async () => {
    const { policy } = await make({ system: "You are terse." });
    const c = await policy.complete([
      { role: "system", content: "Answer in Python." },
      { role: "user", content: "sum a list" },
      { role: "assistant", content: "sum(xs)" },
      { role: "user", content: "and the product?" },
    ]);
    const body = server.requests[0]!.body;
    assert.equal(body["system"], "You are terse.\n\nAnswer in Python.");
    assert.deepEqual(body["messages"], [
      { role: "user", content: "sum a list" },
      { role: "assistant", content: "sum(xs)" },
      { role: "user", content: "and the product?" },
    ]);
    assert.equal(c.text, "echo: and the product?");
    assert.equal(c.inputTokens, tokens("You are terse.\n\nAnswer in Python. sum a list sum(xs) and the product?"));
  });

  test("streaming: the SSE events accumulate into the same result", async () => {
    const { policy } = await make({ stream: true });
    const c = await policy.complete(ask("stream this please"));
    assert.equal(server.requests[0]!.body["stream"], true);
    assert.equal(c.text, "echo: stream this please");
    assert.equal(c.inputTokens, 3); // from message_start
    assert.equal(c.outputTokens, 4); // from message_delta
    assert.equal(c.finishReason, "end_turn");
    assert.equal(c.model, "claude-test-1");
  });

  test("streaming: max_tokens stop reason and a long multi-delta text", async () => {
    const { policy } = await make({ stream: true });
    const long = "def f(x):\n    return x * 2\n".repeat(20);
    server.script({ kind: "reply", text: long, stopReason: "max_tokens" });
    const c = await policy.complete(ask("long"));
    assert.equal(c.text, long);
    assert.equal(c.finishReason, "max_tokens");
  });

  test("cache: an identical second call makes no request", async () => {
    const { policy, events } = await make({ price_input_per_million: 3, price_output_per_million: 15 });
    const first = await policy.complete(ask("cache me"));
    const second = await policy.complete(ask("cache me"));
    assert.equal(server.requests.length, 1);
    assert.equal(second.cached, true);
    assert.equal(second.text, first.text);
    assert.equal(second.costUsd, 0);
    assert.deepEqual(
      events.filter((e) => e.event === "llm.call").map((e) => e.data["cached"]),
      [false, true],
    );
    await policy.complete(ask("cache me too"));
    assert.equal(server.requests.length, 2);
    assert.equal(policy.usage().cached, 1);
  });

  test("429 with retry-after is retried after the server's wait", async () => {
    const { policy, events } = await make();
    server.script({ kind: "error", status: 429, type: "rate_limit_error", message: "Number of requests has exceeded your rate limit", headers: { "retry-after": "0.02" } });
    const c = await policy.complete(ask("busy?"));
    assert.equal(c.text, "echo: busy?");
    assert.equal(c.retries, 1);
    assert.equal(server.requests.length, 2);
    const retry = events.find((e) => e.event === "llm.retry")!;
    assert.equal(retry.data["kind"], "rate_limit");
    assert.equal(retry.data["status"], 429);
    assert.equal(retry.data["wait_ms"], 20);
  });

  test("529 overloaded_error is retried", async () => {
    const { policy, events } = await make();
    server.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
    const c = await policy.complete(ask("overloaded?"));
    assert.equal(c.retries, 1);
    assert.equal(server.requests.length, 2);
    const retry = events.find((e) => e.event === "llm.retry")!;
    assert.equal(retry.data["kind"], "server");
    assert.equal(retry.data["status"], 529);
    assert.match(String(retry.data["message"]), /overloaded_error: Overloaded/);
  });

  test("500 api_error is retried", async () => {
    const { policy } = await make();
    server.script({ kind: "error", status: 500, type: "api_error", message: "Internal server error" });
    const c = await policy.complete(ask("flaky"));
    assert.equal(c.retries, 1);
    assert.equal(server.requests.length, 2);
  });

  test("401 fails fast: one request, BDC_POLICY_AUTH naming the instance and the variable", async () => {
    process.env["BDC_TEST_WRONG_KEY"] = "sk-ant-wrong";
    const wrong = await new PluginTester(plugin).make<Policy>(
      { model: "claude-test-1", baseURL: server.url, api_key_env: "BDC_TEST_WRONG_KEY", cache: "off" },
      {},
      { instance: "claude", baseDir: os.tmpdir() },
    );
    const e = await rejects(wrong.complete(ask("let me in")), "BDC_POLICY_AUTH");
    assert.equal(server.requests.length, 1);
    assert.match(e.message, /policy instance "claude" \(anthropic, model claude-test-1\)/);
    assert.match(e.message, /authentication_error: invalid x-api-key/);
    assert.match(e.message, /HTTP 401/);
    assert.match(e.hint ?? "", /BDC_TEST_WRONG_KEY/);
    assert.equal(wrong.usage().failed, 1);
  });

  test("403 permission_error is auth too", async () => {
    const { policy } = await make();
    server.script({ kind: "error", status: 403, type: "permission_error", message: "Your API key does not have permission to use the specified resource." });
    await rejects(policy.complete(ask("forbidden")), "BDC_POLICY_AUTH");
    assert.equal(server.requests.length, 1);
  });

  test("an unset key fails with BDC_POLICY_AUTH without a request", async () => {
    delete process.env["BDC_TEST_UNSET_KEY"];
    const policy = await new PluginTester(plugin).make<Policy>(
      { model: "claude-test-1", baseURL: server.url, api_key_env: "BDC_TEST_UNSET_KEY", cache: "off" },
      {},
      { instance: "claude", baseDir: os.tmpdir() },
    );
    const e = await rejects(policy.complete(ask("hi")), "BDC_POLICY_AUTH");
    assert.match(e.message, /BDC_TEST_UNSET_KEY is not set/);
    assert.equal(server.requests.length, 0);
  });

  test("404 for an unknown model: BDC_POLICY_NOT_FOUND telling the model name", async () => {
    const { policy } = await make({ model: "claude-nonexistent" });
    const e = await rejects(policy.complete(ask("who?")), "BDC_POLICY_NOT_FOUND");
    assert.equal(server.requests.length, 1);
    assert.match(e.message, /not_found_error: model: claude-nonexistent/);
    assert.match(e.hint ?? "", /"claude-nonexistent".*baseURL/);
  });

  test("a wrong baseURL path answers 404 too", async () => {
    const { policy } = await make({ baseURL: `${server.url}/v1` });
    await rejects(policy.complete(ask("where?")), "BDC_POLICY_NOT_FOUND");
    assert.equal(server.requests[0]!.url, "/v1/v1/messages");
  });

  test("400 invalid_request_error fails fast with BDC_POLICY_REQUEST", async () => {
    const { policy } = await make({ anthropic_version: "2026-10-21" });
    server.script({ kind: "error", status: 400, type: "invalid_request_error", message: "max_tokens: 999999 > 64000, which is the maximum allowed" });
    const e = await rejects(policy.complete(ask("too much")), "BDC_POLICY_REQUEST");
    assert.equal(server.requests.length, 1);
    assert.match(e.message, /invalid_request_error: max_tokens/);
    assert.match(e.hint ?? "", /max_tokens/);
  });

  test("a hung connection times out, is retried, then BDC_POLICY_UNAVAILABLE", async () => {
    const { policy, events } = await make({ timeout_ms: 200, max_retries: 1 });
    server.script({ kind: "hang" }, { kind: "hang" });
    const t0 = Date.now();
    const e = await rejects(policy.complete(ask("anyone?")), "BDC_POLICY_UNAVAILABLE");
    assert.ok(Date.now() - t0 >= 400, "two timeouts of 200 ms");
    assert.equal(server.requests.length, 2);
    assert.match(e.message, /no response within 200 ms after 1 retries/);
    assert.match(e.hint ?? "", /timeout_ms/);
    assert.equal(events.find((x) => x.event === "llm.retry")!.data["kind"], "timeout");
    assert.equal(events.find((x) => x.event === "llm.error")!.data["kind"], "timeout");
  });

  test("a body that stalls after the headers times out and is retried", async () => {
    const { policy, events } = await make({ timeout_ms: 200, max_retries: 1 });
    server.script({ kind: "stall-body" });
    const c = await policy.complete(ask("half"));
    assert.equal(c.text, "echo: half");
    assert.equal(c.retries, 1);
    assert.equal(events.find((x) => x.event === "llm.retry")!.data["kind"], "timeout");
  });

  test("a stream that stalls times out and is retried", async () => {
    const { policy, events } = await make({ stream: true, timeout_ms: 200, max_retries: 1 });
    server.script({ kind: "stall-stream" });
    const c = await policy.complete(ask("stall"));
    assert.equal(c.text, "echo: stall");
    assert.equal(c.retries, 1);
    assert.equal(events.find((x) => x.event === "llm.retry")!.data["kind"], "timeout");
  });

  test("malformed JSON in a 200 is retried", async () => {
    const { policy, events } = await make();
    server.script({ kind: "raw", body: '{"id": "msg_1", "content": [' });
    const c = await policy.complete(ask("broken"));
    assert.equal(c.text, "echo: broken");
    assert.equal(c.retries, 1);
    assert.equal(events.find((x) => x.event === "llm.retry")!.data["kind"], "malformed");
  });

  for (const [name, behaviour] of [
    ["a 200 JSON body that is not a message", { kind: "raw", body: '{"completion": "hi"}' }],
    ["a 200 plain-text body", { kind: "raw", body: "hello", contentType: "text/plain" }],
    ["a stream event that is not JSON", { kind: "raw-stream", frames: ["event: message_start\ndata: {not json\n\n"] }],
    ["a stream out of protocol order", { kind: "raw-stream", frames: ['event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}\n\n'] }],
    ["a stream cut off before message_stop", { kind: "raw-stream", frames: ['event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"claude-test-1","content":[],"stop_reason":null,"usage":{"input_tokens":1,"output_tokens":1}}}\n\n'] }],
  ] as const) {
    test(`${name} is malformed, and retried`, async () => {
      const { policy, events } = await make({ stream: behaviour.kind === "raw-stream", max_retries: 1 });
      server.script(behaviour);
      const c = await policy.complete(ask("shape"));
      assert.equal(c.text, "echo: shape");
      assert.equal(c.retries, 1);
      assert.equal(events.find((x) => x.event === "llm.retry")!.data["kind"], "malformed");
    });
  }

  test("an error event inside a stream is mapped by its type, and retried", async () => {
    const { policy, events } = await make({ stream: true, max_retries: 1 });
    server.script({ kind: "raw-stream", frames: ['event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'] });
    const c = await policy.complete(ask("streams"));
    assert.equal(c.text, "echo: streams");
    const retry = events.find((x) => x.event === "llm.retry")!;
    assert.equal(retry.data["kind"], "server");
    assert.match(String(retry.data["message"]), /overloaded_error: Overloaded \(in the stream\)/);
  });

  test("a refused connection is a connection error", async () => {
    const { policy, events } = await make({ baseURL: "http://127.0.0.1:9", max_retries: 0 });
    const e = await rejects(policy.complete(ask("nobody home")), "BDC_POLICY_UNAVAILABLE");
    assert.match(e.message, /connection failed/);
    assert.equal(events.find((x) => x.event === "llm.error")!.data["kind"], "connection");
  });

  test("the caller's abort is not retried", async () => {
    const { policy } = await make({ timeout_ms: 5000 });
    server.script({ kind: "hang" });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(policy.complete(ask("stop"), { signal: controller.signal }), (e: unknown) => e instanceof ProviderError && e.kind === "aborted");
    assert.equal(server.requests.length, 1);
  });

  test("usage() and cost accounting with prices", async () => {
    const { policy } = await make({ price_input_per_million: 3, price_output_per_million: 15 });
    const a = await policy.complete(ask("one two three"));
    const b = await policy.complete(ask("four five"));
    await policy.complete(ask("one two three")); // cached: free
    assert.equal(a.costUsd, (a.inputTokens * 3 + a.outputTokens * 15) / 1e6);
    const u = policy.usage();
    assert.equal(u.calls, 3);
    assert.equal(u.cached, 1);
    assert.equal(u.failed, 0);
    assert.equal(u.input_tokens, a.inputTokens + b.inputTokens);
    assert.equal(u.output_tokens, a.outputTokens + b.outputTokens);
    assert.equal(u.cost_usd, Math.round((a.costUsd + b.costUsd) * 1e6) / 1e6);
    assert.ok(u.cost_usd > 0);
  });
});

describe("policy/anthropic preflight", () => {
  const config = (extra: Record<string, unknown> = {}) => new PluginTester(plugin).decode({ model: "claude-test-1", ...extra });
  const ctx = (env: Record<string, string | undefined>) => ({ instance: "claude", baseDir: os.tmpdir(), env });

  test("a missing key is BDC_POLICY_MISSING_KEY naming the variable", async () => {
    const problems = [...(await plugin.preflight!(config() as never, ctx({})))];
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.code, "BDC_POLICY_MISSING_KEY");
    assert.deepEqual(problems[0]!.path, ["api_key_env"]);
    assert.match(problems[0]!.message, /ANTHROPIC_API_KEY is not set: Anthropic needs an API key/);
  });

  test("api_key_env names the variable checked", async () => {
    assert.equal([...(await plugin.preflight!(config({ api_key_env: "CLAUDE_KEY" }) as never, ctx({ ANTHROPIC_API_KEY: "x" })))][0]!.code, "BDC_POLICY_MISSING_KEY");
    assert.deepEqual([...(await plugin.preflight!(config({ api_key_env: "CLAUDE_KEY" }) as never, ctx({ CLAUDE_KEY: "x" })))], []);
  });

  test("a replay from a read-only cache needs no key", async () => {
    assert.deepEqual([...(await plugin.preflight!(config({ cache: "read-only" }) as never, ctx({})))], []);
  });
});
