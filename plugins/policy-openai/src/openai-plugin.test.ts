/**
 * policy/openai against a loopback server that speaks the real Chat Completions wire protocol
 * (request JSON checked; completions, SSE chunks ending in `data: [DONE]`, OpenAI error
 * bodies), scripted per test: retries, the cache, timeouts, error mapping, accounting, preflight.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, afterEach, describe, test } from "node:test";
import { BdcError } from "@bdc/core";
import { PluginTester, testPlugin } from "@bdc/core/testing";
import { ProviderError, type Policy, type Usage } from "@bdc/policy";
import plugin from "./openai-plugin.ts";
import { isOpenAIHost } from "./openai-client.ts";
import { apiError, json, raw, wireServer as testWire, type Handler, type Json, type Wire } from "./testing/wire-server.ts";

const KEY_VAR = "BDC_TEST_OPENAI_KEY";
const UNSET_VAR = "BDC_TEST_OPENAI_KEY_UNSET";
process.env[KEY_VAR] = "sk-test-123";
delete process.env[UNSET_VAR];

// ---- the wire server -------------------------------------------------------------------

const wireServer = (script: Handler[], fallback: Handler = completion("fallback")) => testWire("/v1/chat/completions", script, fallback);

const usageOf = (prompt: number, completionTokens: number) => ({ prompt_tokens: prompt, completion_tokens: completionTokens, total_tokens: prompt + completionTokens });

function completion(text: string, usage = usageOf(11, 3), finish = "stop"): Handler {
  return (_req, res, body) =>
    json(res, 200, {
      id: "chatcmpl-1",
      object: "chat.completion",
      created: 1_700_000_000,
      model: `${String(body.model)}-2025-01-01`,
      choices: [{ index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason: finish }],
      usage,
      system_fingerprint: "fp_test",
    });
}

function sse(pieces: string[], usage = usageOf(11, pieces.length)): Handler {
  return (_req, res, body) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    const base = { id: "chatcmpl-2", object: "chat.completion.chunk", created: 1_700_000_000, model: String(body.model), system_fingerprint: "fp_test" };
    const send = (o: Json) => res.write(`data: ${JSON.stringify({ ...base, ...o })}\n\n`);
    send({ choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }], usage: null });
    for (const p of pieces) send({ choices: [{ index: 0, delta: { content: p }, logprobs: null, finish_reason: null }], usage: null });
    send({ choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }], usage: null });
    send({ choices: [], usage });
    res.end("data: [DONE]\n\n");
  };
}

/** Never answers. */
const hang: Handler = () => {};

/** Sends the headers and part of the body, then stalls. */
const stall: Handler = (_req, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.write('{"id": "chatcmpl-3", "object": "chat.com');
};

// ---- instances -------------------------------------------------------------------------

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-openai-test-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let servers: Wire[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

interface Built {
  readonly policy: Policy;
  readonly wire: Wire;
  readonly events: Array<Json & { event: string }>;
}

async function build(script: Handler[], config: Json = {}, fallback?: Handler): Promise<Built> {
  const wire = await wireServer(script, fallback);
  servers.push(wire);
  const events: Built["events"] = [];
  const policy = await new PluginTester(plugin).make<Policy>(
    { model: "gpt-test", baseURL: `${wire.url}/v1`, api_key_env: KEY_VAR, cache_dir: fs.mkdtempSync(path.join(tmp, "cache-")), max_retries: 2, ...config },
    {},
    { instance: "gpt", baseDir: tmp, emit: (event, data) => events.push({ event, ...data }) },
  );
  return { policy, wire, events };
}

async function rejection(p: Promise<unknown>): Promise<BdcError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof BdcError, `expected a BdcError, got ${String(e)}`);
    return e;
  }
  assert.fail("expected the call to fail");
}

const ask = (text: string) => [{ role: "user" as const, content: text }];

// ---- tests -----------------------------------------------------------------------------

testPlugin(plugin, {
  valid: [
    { model: "gpt-4o-mini" },
    { model: "Qwen/Qwen2.5-Coder-7B-Instruct", baseURL: "http://127.0.0.1:8000/v1", stream: true, max_tokens_param: "max_tokens" },
    { model: "o3-mini", max_tokens_param: "max_completion_tokens", api_key_env: "MY_KEY", organization: "org-1", project: "proj-1", seed: 3, stop: ["\n"] },
  ],
  invalid: [
    { config: {}, code: "BDC_CONFIG_MISSING_KEY", path: "model" },
    { config: { model: "m", baseURL: "localhost:8000" }, code: "BDC_CONFIG_VALUE", path: "baseURL" },
    { config: { model: "m", max_tokens_param: "max_new_tokens" }, code: "BDC_CONFIG_VALUE", path: "max_tokens_param" },
    { config: { model: "m", api_key: "sk-..." }, code: "BDC_CONFIG_UNKNOWN_KEY", path: "api_key" },
  ],
});

describe("policy/openai over the Chat Completions wire protocol", () => {
  test("a plain completion: the request JSON, the key, text and tokens", async () => {
    const { policy, wire, events } = await build([completion("def f(): pass", usageOf(21, 5))], { system: "You are a coder.", max_tokens: 64, stop: ["\n\n"], seed: 7, top_p: 0.9 });
    const r = await policy.complete(ask("Write f."));
    assert.equal(r.text, "def f(): pass");
    assert.equal(r.inputTokens, 21);
    assert.equal(r.outputTokens, 5);
    assert.equal(r.cached, false);
    assert.equal(r.retries, 0);
    assert.equal(r.finishReason, "stop");
    assert.equal(r.model, "gpt-test-2025-01-01");
    assert.equal(wire.seen.length, 1);
    assert.deepEqual(wire.seen[0]!.body, {
      model: "gpt-test",
      messages: [
        { role: "system", content: "You are a coder." },
        { role: "user", content: "Write f." },
      ],
      temperature: 0,
      top_p: 0.9,
      max_tokens: 64,
      stop: ["\n\n"],
      seed: 7,
      stream: false,
    });
    assert.equal(wire.seen[0]!.headers.authorization, "Bearer sk-test-123");
    assert.equal(wire.seen[0]!.headers["x-stainless-retry-count"], "0");
    assert.equal(policy.provider, "openai");
    assert.equal(policy.name, "gpt");
    assert.deepEqual(events.map((e) => e.event), ["llm.call"]);
  });

  test("max_tokens_param: max_completion_tokens sends that field instead", async () => {
    const { policy, wire } = await build([completion("ok")], { max_tokens_param: "max_completion_tokens", max_tokens: 33 });
    await policy.complete(ask("hi"));
    assert.equal(wire.seen[0]!.body.max_completion_tokens, 33);
    assert.equal("max_tokens" in wire.seen[0]!.body, false);
  });

  test("per-call sampling overrides reach the wire", async () => {
    const { policy, wire } = await build([completion("ok")]);
    await policy.complete(ask("hi"), { sampling: { temperature: 0.7, max_tokens: 5 } });
    assert.equal(wire.seen[0]!.body.temperature, 0.7);
    assert.equal(wire.seen[0]!.body.max_tokens, 5);
  });

  test("streaming: stream + include_usage requested, deltas and usage accumulated", async () => {
    const { policy, wire } = await build([sse(["print", "(1", ")"], usageOf(9, 3))], { stream: true });
    const r = await policy.complete(ask("print one"));
    assert.equal(r.text, "print(1)");
    assert.equal(r.inputTokens, 9);
    assert.equal(r.outputTokens, 3);
    assert.equal(r.finishReason, "stop");
    assert.equal(wire.seen[0]!.body.stream, true);
    assert.deepEqual(wire.seen[0]!.body.stream_options, { include_usage: true });
  });

  test("the cache: a second identical call makes no request and reports cached", async () => {
    const { policy, wire, events } = await build([completion("answer", usageOf(4, 1))], { price_input_per_million: 1000, price_output_per_million: 1000 });
    const first = await policy.complete(ask("same"));
    const second = await policy.complete(ask("same"));
    assert.equal(wire.seen.length, 1);
    assert.equal(first.cached, false);
    assert.equal(second.cached, true);
    assert.equal(second.text, "answer");
    assert.equal(second.inputTokens, 4);
    assert.equal(second.costUsd, 0);
    assert.deepEqual(events.map((e) => e.cached), [false, true]);
    // A different sampling is another request.
    await policy.complete(ask("same"), { sampling: { temperature: 1 } });
    assert.equal(wire.seen.length, 2);
  });

  test("429 with Retry-After, then success: retries counted, the wait honoured", async () => {
    const { policy, wire, events } = await build([
      apiError(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded", { "retry-after": "0" }),
      apiError(429, "Rate limit reached for tokens", "tokens", "rate_limit_exceeded", { "retry-after-ms": "150" }),
      completion("finally"),
    ]);
    const t0 = performance.now();
    const r = await policy.complete(ask("q"));
    const elapsed = performance.now() - t0;
    assert.equal(r.text, "finally");
    assert.equal(r.retries, 2);
    assert.equal(wire.seen.length, 3);
    const retries = events.filter((e) => e.event === "llm.retry");
    assert.deepEqual(retries.map((e) => [e.kind, e.status, e.wait_ms]), [["rate_limit", 429, 0], ["rate_limit", 429, 150]]);
    assert.ok(elapsed >= 145, `waited ${elapsed} ms, Retry-After said 150`);
    assert.equal(policy.usage().retries, 2);
  });

  test("500 then success", async () => {
    const { policy, wire, events } = await build([apiError(500, "The server had an error while processing your request.", "server_error", null), completion("ok")]);
    const r = await policy.complete(ask("q"));
    assert.equal(r.text, "ok");
    assert.equal(r.retries, 1);
    assert.equal(wire.seen.length, 2);
    assert.deepEqual(events.filter((e) => e.event === "llm.retry").map((e) => [e.kind, e.status]), [["server", 500]]);
  });

  test("429 that never ends: BDC_POLICY_UNAVAILABLE after max_retries", async () => {
    const { policy, wire } = await build([], { max_retries: 1 }, apiError(429, "You exceeded your current quota", "insufficient_quota", "insufficient_quota", { "retry-after": "0" }));
    const e = await rejection(policy.complete(ask("q")));
    assert.equal(e.code, "BDC_POLICY_UNAVAILABLE");
    assert.match(e.message, /You exceeded your current quota \[insufficient_quota\] \(HTTP 429\) after 1 retries/);
    assert.equal(wire.seen.length, 2);
  });

  test("401 fails fast with BDC_POLICY_AUTH: one request, the instance named, the hint names the env var", async () => {
    const { policy, wire, events } = await build([apiError(401, "Incorrect API key provided: sk-test-***.", "invalid_request_error", "invalid_api_key")]);
    const e = await rejection(policy.complete(ask("q")));
    assert.equal(e.code, "BDC_POLICY_AUTH");
    assert.equal(wire.seen.length, 1);
    assert.match(e.message, /policy instance "gpt" \(openai, model gpt-test\)/);
    assert.match(e.message, /Incorrect API key provided.*\(HTTP 401\)/);
    assert.match(e.hint ?? "", new RegExp(KEY_VAR));
    assert.deepEqual(events.map((x) => [x.event, x.kind]), [["llm.error", "auth"]]);
    assert.equal(policy.usage().failed, 1);
  });

  test("403 is auth too", async () => {
    const { policy, wire } = await build([apiError(403, "Project does not have access", "invalid_request_error", "model_not_allowed")]);
    assert.equal((await rejection(policy.complete(ask("q")))).code, "BDC_POLICY_AUTH");
    assert.equal(wire.seen.length, 1);
  });

  test("404 model: BDC_POLICY_NOT_FOUND, the hint names the model and baseURL", async () => {
    const { policy, wire } = await build([apiError(404, "The model `gpt-test` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found")]);
    const e = await rejection(policy.complete(ask("q")));
    assert.equal(e.code, "BDC_POLICY_NOT_FOUND");
    assert.equal(wire.seen.length, 1);
    assert.match(e.message, /does not exist/);
    assert.match(e.hint ?? "", /model "gpt-test"/);
    assert.match(e.hint ?? "", new RegExp(`${wire.url}/v1`));
  });

  test("400: BDC_POLICY_REQUEST, not retried", async () => {
    const { policy, wire } = await build([apiError(400, "Unsupported parameter: 'max_tokens' is not supported with this model.", "invalid_request_error", "unsupported_parameter")]);
    const e = await rejection(policy.complete(ask("q")));
    assert.equal(e.code, "BDC_POLICY_REQUEST");
    assert.equal(wire.seen.length, 1);
    assert.match(e.hint ?? "", /max_completion_tokens/);
  });

  test("a hung server: timeout, retried, then BDC_POLICY_UNAVAILABLE", async () => {
    const { policy, wire, events } = await build([], { timeout_ms: 200, max_retries: 1 }, hang);
    const e = await rejection(policy.complete(ask("q")));
    assert.equal(e.code, "BDC_POLICY_UNAVAILABLE");
    assert.equal(wire.seen.length, 2);
    assert.deepEqual(events.filter((x) => x.event === "llm.retry").map((x) => x.kind), ["timeout"]);
    assert.match(e.message, /timed out/);
    assert.match(e.hint ?? "", /timeout_ms \(200 ms\)/);
  });

  test("a body that stalls after the headers times out too (then success)", async () => {
    const { policy, wire, events } = await build([stall, completion("ok")], { timeout_ms: 200 });
    const r = await policy.complete(ask("q"));
    assert.equal(r.text, "ok");
    assert.equal(wire.seen.length, 2);
    assert.deepEqual(events.filter((x) => x.event === "llm.retry").map((x) => x.kind), ["timeout"]);
  });

  test("a stream that stalls mid-way times out (idle), then success", async () => {
    const stalledStream: Handler = (_req, res, body) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: body.model, choices: [{ index: 0, delta: { content: "par" }, finish_reason: null }] })}\n\n`);
    };
    const { policy, wire, events } = await build([stalledStream, sse(["full"])], { timeout_ms: 200, stream: true });
    const r = await policy.complete(ask("q"));
    assert.equal(r.text, "full");
    assert.equal(wire.seen.length, 2);
    assert.deepEqual(events.filter((x) => x.event === "llm.retry").map((x) => x.kind), ["timeout"]);
  });

  test("malformed JSON is retried as malformed, then success", async () => {
    const { policy, wire, events } = await build([raw(200, "application/json", '{"id": "chatcmpl-x", "choices": [{"ind'), completion("ok")]);
    const r = await policy.complete(ask("q"));
    assert.equal(r.text, "ok");
    assert.equal(wire.seen.length, 2);
    assert.deepEqual(events.filter((x) => x.event === "llm.retry").map((x) => x.kind), ["malformed"]);
  });

  test("a 2xx that is not a completion (no choices, HTML, a stream without finish) is malformed", async () => {
    const noChoices: Handler = (_req, res) => json(res, 200, { id: "x", object: "chat.completion", created: 1, model: "m", choices: [], usage: usageOf(1, 1) });
    const html = raw(200, "text/html", "<html>proxy login</html>");
    const cut: Handler = (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(`data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: { content: "x" }, finish_reason: null }] })}\n\n`);
    };
    for (const [handler, stream, pattern] of [
      [noChoices, false, /no choices/],
      [html, false, /not a JSON chat\.completion/],
      [cut, true, /without a finish_reason/],
    ] as const) {
      const { policy, wire } = await build([], { max_retries: 0, stream }, handler);
      const e = await rejection(policy.complete(ask("q")));
      assert.equal(e.code, "BDC_POLICY_UNAVAILABLE");
      assert.match(e.message, pattern);
      assert.equal(wire.seen.length, 1);
    }
  });

  test("an error event inside a stream is a server error (retried)", async () => {
    const errorStream: Handler = (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(`data: ${JSON.stringify({ error: { message: "The server is overloaded", type: "server_error", code: null } })}\n\n`);
    };
    const { policy, events } = await build([errorStream, sse(["ok"])], { stream: true });
    assert.equal((await policy.complete(ask("q"))).text, "ok");
    assert.deepEqual(events.filter((x) => x.event === "llm.retry").map((x) => x.kind), ["server"]);
  });

  test("a refused connection is a connection error, with the hint to check the server", async () => {
    const { policy, wire } = await build([], { max_retries: 0 });
    await wire.close();
    const e = await rejection(policy.complete(ask("q")));
    assert.equal(e.code, "BDC_POLICY_UNAVAILABLE");
    assert.match(e.hint ?? "", /cannot reach http:\/\/127\.0\.0\.1:\d+\/v1/);
  });

  test("the caller's abort signal stops a request: aborted, not retried", async () => {
    const { policy, wire } = await build([], {}, hang);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(policy.complete(ask("q"), { signal: controller.signal }), (e: unknown) => e instanceof ProviderError && e.kind === "aborted");
    assert.equal(wire.seen.length, 1);
  });

  test("accounting: usage() totals and price-based cost", async () => {
    const { policy } = await build([completion("a", usageOf(1000, 200)), completion("b", usageOf(3000, 800))], {
      price_input_per_million: 2.5,
      price_output_per_million: 10,
    });
    const a = await policy.complete(ask("one"));
    await policy.complete(ask("two"));
    await policy.complete(ask("one")); // cached: no cost
    assert.equal(a.costUsd, (1000 * 2.5 + 200 * 10) / 1e6);
    const u: Usage = policy.usage();
    assert.equal(u.calls, 3);
    assert.equal(u.cached, 1);
    assert.equal(u.failed, 0);
    assert.equal(u.input_tokens, 4000);
    assert.equal(u.output_tokens, 1000);
    assert.equal(u.cost_usd, (4000 * 2.5 + 1000 * 10) / 1e6);
  });

  test("a server that reports no usage: tokens 0 and one warning", async () => {
    const noUsage: Handler = (_req, res, body) =>
      json(res, 200, { id: "x", object: "chat.completion", created: 1, model: body.model, choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }] });
    const wire = await wireServer([], noUsage);
    servers.push(wire);
    const warnings: string[] = [];
    const policy = await new PluginTester(plugin).make<Policy>({ model: "m", baseURL: `${wire.url}/v1`, cache: "off" }, {}, { instance: "local", baseDir: tmp, warn: (m) => warnings.push(m) });
    const r = await policy.complete(ask("a"));
    await policy.complete(ask("b"));
    assert.equal(r.text, "hi");
    assert.equal(r.inputTokens, 0);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /reported no token usage/);
  });

  test("no key set and a local baseURL: the placeholder EMPTY is sent", async () => {
    const wire = await wireServer([completion("ok")]);
    servers.push(wire);
    const policy = await new PluginTester(plugin).make<Policy>({ model: "m", baseURL: `${wire.url}/v1`, api_key_env: UNSET_VAR, cache: "off" }, {}, { instance: "local", baseDir: tmp });
    await policy.complete(ask("q"));
    assert.equal(wire.seen[0]!.headers.authorization, "Bearer EMPTY");
  });

  test("401 from a local server without a key: the hint says to set the variable", async () => {
    const wire = await wireServer([apiError(401, "Invalid API Key", "authentication_error", null)]);
    servers.push(wire);
    const policy = await new PluginTester(plugin).make<Policy>({ model: "m", baseURL: `${wire.url}/v1`, api_key_env: UNSET_VAR, cache: "off" }, {}, { instance: "vllm", baseDir: tmp });
    const e = await rejection(policy.complete(ask("q")));
    assert.equal(e.code, "BDC_POLICY_AUTH");
    assert.match(e.message, /policy instance "vllm"/);
    assert.match(e.hint ?? "", new RegExp(`wants an API key: export ${UNSET_VAR}=`));
  });
});

describe("policy/openai preflight and key", () => {
  const tester = new PluginTester(plugin);
  const preflight = async (config: Json, env: Record<string, string>) => [...(await plugin.preflight!(tester.decode(config) as never, { instance: "gpt", baseDir: tmp, env }))];

  test("missing OPENAI_API_KEY for api.openai.com: BDC_POLICY_MISSING_KEY at api_key_env", async () => {
    const problems = await preflight({ model: "gpt-4o" }, {});
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.code, "BDC_POLICY_MISSING_KEY");
    assert.deepEqual(problems[0]!.path, ["api_key_env"]);
    assert.match(problems[0]!.message, /OPENAI_API_KEY is not set: OpenAI needs an API key/);
    assert.match(problems[0]!.hint ?? "", /export OPENAI_API_KEY=/);
    assert.deepEqual(await preflight({ model: "gpt-4o", baseURL: "https://api.openai.com/v1" }, {}).then((p) => p.map((x) => x.code)), ["BDC_POLICY_MISSING_KEY"]);
    assert.match((await preflight({ model: "gpt-4o", api_key_env: "TEAM_KEY" }, {}))[0]!.message, /TEAM_KEY is not set/);
  });

  test("the key set: no problem", async () => {
    assert.deepEqual(await preflight({ model: "gpt-4o" }, { OPENAI_API_KEY: "sk-x" }), []);
  });

  test("baseURL to another server (vLLM, llama.cpp): no key needed", async () => {
    assert.deepEqual(await preflight({ model: "qwen", baseURL: "http://127.0.0.1:8000/v1" }, {}), []);
    assert.deepEqual(await preflight({ model: "qwen", baseURL: "http://gpu-box.lan:8080/v1" }, {}), []);
  });

  test("isOpenAIHost", () => {
    assert.equal(isOpenAIHost(undefined), true);
    assert.equal(isOpenAIHost("https://api.openai.com/v1"), true);
    assert.equal(isOpenAIHost("https://eu.api.openai.com/v1"), true);
    assert.equal(isOpenAIHost("http://localhost:8000/v1"), false);
    assert.equal(isOpenAIHost("https://openai.com.evil.example/v1"), false);
  });

  test("make without a key for api.openai.com fails with BDC_POLICY_MISSING_KEY (no request)", async () => {
    await assert.rejects(tester.make({ model: "gpt-4o", api_key_env: UNSET_VAR, cache: "off" }, {}, { instance: "gpt", baseDir: tmp }), (e: unknown) => e instanceof BdcError && e.code === "BDC_POLICY_MISSING_KEY" && e.message.includes(UNSET_VAR));
  });
});
