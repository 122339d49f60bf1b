/**
 * policy/auto: which provider each environment gets (rank 1, rank 2, the fallback), the one
 * BDC_NO_MODEL_ACCESS problem when there is nothing (the Ollama probe against a closed port), the
 * probe itself, and a real completion through the OpenAI-compatible echo server found via
 * OPENAI_BASE_URL. The `local` provider and `--yes` are in local.test.ts. No network beyond
 * 127.0.0.1; BDC_MODELS_DIR points at an empty folder, so a model pulled on this machine is
 * never found.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { BdcError, type PreflightProblem } from "@bdc/core";
import { PluginTester, testPlugin } from "@bdc/core/testing";
import type { Policy } from "@bdc/policy";
import { startEchoServer, type EchoServer } from "@bdc/policy-openai";
import plugin, { AutoConfig, chooseProvider, makeAutoPlugin, noAccessMessage, ollamaHostUrl, probeOllama, underlyingConfig, type AutoConfig as Config, type Env } from "./auto-plugin.ts";

const EXPECTED_NO_ACCESS =
  "no model access: set OPENAI_API_KEY (OpenAI), ANTHROPIC_API_KEY (Anthropic), OPENAI_BASE_URL (an OpenAI-compatible server such as vLLM or llama.cpp), or run an Ollama server (`ollama serve`, or set OLLAMA_HOST); " +
  "or run Qwen/Qwen2.5-Coder-0.5B-Instruct on this machine, offline: `pnpm bdc models pull Qwen/Qwen2.5-Coder-0.5B-Instruct` (about 1 GB) and run again, or `pnpm bdc run <workflow.yaml> --yes` to pull it and run";

// No pulled models: every environment below gets this BDC_MODELS_DIR.
const NO_MODELS = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-auto-models-"));
after(() => fs.rmSync(NO_MODELS, { recursive: true, force: true }));
const hermetic = (env: Env): Env => ({ BDC_MODELS_DIR: NO_MODELS, ...env });

/** A loopback port nothing listens on (connections are refused). */
async function closedPort(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

const tester = new PluginTester(plugin);
const config = (withBlock: Record<string, unknown> = {}) => tester.decode(withBlock) as Config;
const noOllama = async () => false;
const withOllama = async () => true;
const pick = async (env: Env, withBlock: Record<string, unknown> = {}, probe = noOllama) => (await chooseProvider(hermetic(env), config(withBlock), probe))?.provider;

const OPENAI = hermetic({ OPENAI_API_KEY: "sk-test" });
const ANTHROPIC = hermetic({ ANTHROPIC_API_KEY: "sk-ant-test" });
const COMPATIBLE = hermetic({ OPENAI_BASE_URL: "http://127.0.0.1:8000/v1" });

testPlugin(plugin, {
  valid: [
    {},
    { rank: 2 },
    { rank: 1, prefer: ["ollama", "openai"], ollama_model: "llama3.2:3b", temperature: 0.2, max_tokens: 256, stop: ["\n\n"] },
    { prefer: ["local"], local_model: "Qwen/Qwen2.5-Coder-1.5B-Instruct", device: "cuda", device_id: 1, dtype: "float16", threads: 4 },
  ],
  invalid: [
    { config: { rank: 0 }, code: "BDC_CONFIG_VALUE", path: "rank" },
    { config: { prefer: ["gemini"] }, code: "BDC_CONFIG_VALUE", path: "prefer[0]" },
    { config: { prefer: [] }, code: "BDC_CONFIG_VALUE", path: "prefer" },
    { config: { model: "gpt-4o" }, code: "BDC_CONFIG_UNKNOWN_KEY", path: "model" },
    { config: { temperature: 3 }, code: "BDC_CONFIG_VALUE", path: "temperature" },
    { config: { device: "tpu" }, code: "BDC_CONFIG_VALUE", path: "device" },
    { config: { local_model: "" }, code: "BDC_CONFIG_VALUE", path: "local_model" },
  ],
});

describe("chooseProvider", () => {
  test("defaults: rank 1, prefer openai, anthropic, openai-compatible, ollama, local, and the model defaults", () => {
    const c = config();
    assert.equal(c.rank, 1);
    assert.deepEqual(c.prefer, ["openai", "anthropic", "openai-compatible", "ollama", "local"]);
    assert.deepEqual(
      [c.openai_model, c.anthropic_model, c.ollama_model, c.compatible_model, c.local_model],
      ["gpt-4o-mini", "claude-3-5-sonnet-20241022", "qwen2.5-coder:7b", "default", "Qwen/Qwen2.5-Coder-0.5B-Instruct"],
    );
    assert.equal(c.device, "cpu");
  });

  test("each provider alone is chosen for rank 1 and, by fallback, for rank 2", async () => {
    const cases: Array<[Env, () => Promise<boolean>, string]> = [
      [OPENAI, noOllama, "openai"],
      [ANTHROPIC, noOllama, "anthropic"],
      [COMPATIBLE, noOllama, "openai-compatible"],
      [{ OLLAMA_HOST: "127.0.0.1:11434" }, noOllama, "ollama"],
      [{}, withOllama, "ollama"],
    ];
    for (const [env, probe, expected] of cases) {
      assert.equal(await pick(env, { rank: 1 }, probe), expected, JSON.stringify(env));
      const c = await chooseProvider(hermetic(env), config({ rank: 2 }), probe);
      assert.equal(c?.provider, expected);
      assert.equal(c?.fellBack, true);
    }
  });

  test("rank 1 and 2 are the first and second available, in prefer order", async () => {
    const all = { ...OPENAI, ...ANTHROPIC, ...COMPATIBLE };
    assert.equal(await pick(all, { rank: 1 }, withOllama), "openai");
    assert.equal(await pick(all, { rank: 2 }, withOllama), "anthropic");
    assert.equal(await pick({ ...ANTHROPIC, ...COMPATIBLE }, { rank: 1 }), "anthropic");
    assert.equal(await pick({ ...ANTHROPIC, ...COMPATIBLE }, { rank: 2 }), "openai-compatible");
    assert.equal(await pick(OPENAI, { rank: 2 }, withOllama), "ollama");
    assert.equal(await pick(all, { rank: 1, prefer: ["ollama", "anthropic"] }, withOllama), "ollama");
    assert.equal(await pick(all, { rank: 2, prefer: ["ollama", "anthropic"] }, withOllama), "anthropic");
    assert.equal(await pick(OPENAI, { rank: 1, prefer: ["anthropic", "ollama"] }), undefined, "a provider not in prefer is never used");
    const c = await chooseProvider(all, config({ rank: 2 }), noOllama);
    assert.equal(c?.fellBack, false);
  });

  test("blank variables do not count", async () => {
    assert.equal(await pick({ OPENAI_API_KEY: "  ", ANTHROPIC_API_KEY: "", OPENAI_BASE_URL: " ", OLLAMA_HOST: "" }), undefined);
  });

  test("the Ollama probe runs only when needed", async () => {
    let probes = 0;
    const counting = async () => (probes++, true);
    await chooseProvider({ ...OPENAI, ...ANTHROPIC }, config({ rank: 2 }), counting);
    assert.equal(probes, 0);
    await chooseProvider(hermetic({ OLLAMA_HOST: "localhost" }), config(), counting);
    assert.equal(probes, 0);
    await chooseProvider(OPENAI, config({ rank: 2 }), counting);
    assert.equal(probes, 1);
  });

  test("the underlying config: the provider's model, shared keys passed through, the endpoint from the environment", async () => {
    const c = config({ rank: 1, temperature: 0.5, max_tokens: 64, seed: 7, compatible_model: "Qwen/Qwen2.5-Coder-7B-Instruct" });
    const compat = (await chooseProvider(COMPATIBLE, c, noOllama))!;
    const u = await underlyingConfig(compat, c);
    assert.equal(u.plugin.id, "policy/openai");
    assert.deepEqual([u.input.model, u.input.baseURL, u.input.temperature, u.input.max_tokens, u.input.seed], ["Qwen/Qwen2.5-Coder-7B-Instruct", "http://127.0.0.1:8000/v1", 0.5, 64, 7]);
    assert.ok(!("top_p" in u.input), "unset optional keys are not passed");
    assert.ok(!("device" in u.input), "the local model's keys go to policy/local only");
    const ollama = await underlyingConfig((await chooseProvider(hermetic({ OLLAMA_HOST: "0.0.0.0:11500" }), c, noOllama))!, c);
    assert.deepEqual([ollama.plugin.id, ollama.input.model, ollama.input.host], ["policy/ollama", "qwen2.5-coder:7b", "http://127.0.0.1:11500"]);
    const claude = await underlyingConfig((await chooseProvider(ANTHROPIC, c, noOllama))!, c);
    assert.deepEqual([claude.plugin.id, claude.input.model], ["policy/anthropic", "claude-3-5-sonnet-20241022"]);
  });

  test("OLLAMA_HOST is read the way the ollama CLI reads it", () => {
    assert.equal(ollamaHostUrl("127.0.0.1"), "http://127.0.0.1:11434");
    assert.equal(ollamaHostUrl("gpu-box:8080"), "http://gpu-box:8080");
    assert.equal(ollamaHostUrl("0.0.0.0"), "http://127.0.0.1:11434");
    assert.equal(ollamaHostUrl("https://ollama.example.com"), "https://ollama.example.com");
    assert.equal(ollamaHostUrl("::1"), "http://[::1]:11434");
  });
});

describe("preflight", () => {
  let closed: string;
  before(async () => {
    closed = await closedPort();
  });
  const ctx = (env: Env) => ({ instance: "agent1", baseDir: process.cwd(), env: hermetic(env) });

  test("nothing available: exactly one BDC_NO_MODEL_ACCESS problem listing the five options", async () => {
    const p = makeAutoPlugin({ probe: () => probeOllama(closed) });
    const problems = [...(await p.preflight!(config(), ctx({ PATH: "/usr/bin" })))];
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.code, "BDC_NO_MODEL_ACCESS");
    assert.equal(problems[0]!.message, EXPECTED_NO_ACCESS);
    assert.match(problems[0]!.hint ?? "", /README\.md, section "Policies: the agents"/);
    assert.equal(noAccessMessage(), EXPECTED_NO_ACCESS);
  });

  test("the message lists only the preferred providers", () => {
    assert.equal(noAccessMessage(["anthropic"]), "no model access: set ANTHROPIC_API_KEY (Anthropic)");
    assert.equal(noAccessMessage(["ollama", "openai"]), "no model access: set OPENAI_API_KEY (OpenAI) or run an Ollama server (`ollama serve`, or set OLLAMA_HOST)");
  });

  test("make refuses the same way (BdcError BDC_NO_MODEL_ACCESS)", async () => {
    const p = new PluginTester(makeAutoPlugin({ env: hermetic({}), probe: noOllama }));
    await assert.rejects(p.make({}), (e: unknown) => e instanceof BdcError && e.code === "BDC_NO_MODEL_ACCESS" && e.message === EXPECTED_NO_ACCESS);
  });

  test("a provider available: no problems", async () => {
    for (const env of [OPENAI, ANTHROPIC, COMPATIBLE, { OLLAMA_HOST: "127.0.0.1:11434" }]) {
      const problems = [...(await makeAutoPlugin({ probe: noOllama }).preflight!(config(), ctx(env)))];
      assert.deepEqual(problems, [], JSON.stringify(env));
    }
  });

  test("the chosen provider's own problems are reported in our terms", async () => {
    const bad: PreflightProblem[] = [...(await makeAutoPlugin({ probe: noOllama }).preflight!(config(), ctx({ OPENAI_BASE_URL: "localhost:8000" })))];
    assert.equal(bad.length, 1);
    assert.equal(bad[0]!.code, "BDC_CONFIG_VALUE");
    assert.match(bad[0]!.message, /^policy\/openai \(chosen: OPENAI_BASE_URL=localhost:8000\): baseURL: expected an http\(s\) URL/);
    assert.deepEqual(bad[0]!.path, []);
    // OpenAI's host named in OPENAI_BASE_URL without a key: policy/openai's missing-key check.
    const keyless = [...(await makeAutoPlugin({ probe: noOllama }).preflight!(config(), ctx({ OPENAI_BASE_URL: "https://api.openai.com/v1" })))];
    assert.deepEqual(keyless.map((p) => p.code), ["BDC_POLICY_MISSING_KEY"]);
  });
});

describe("probeOllama", () => {
  let server: http.Server;
  let url: string;
  let reply: (res: http.ServerResponse) => void = (res) => res.end(JSON.stringify({ version: "0.6.4" }));
  before(async () => {
    server = http.createServer((req, res) => (req.url === "/api/version" ? reply(res) : ((res.statusCode = 404), res.end())));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test("true for a server answering /api/version; false for a closed port, another server, a slow one, a remote host", async () => {
    assert.equal(await probeOllama(url), true);
    assert.equal(await probeOllama(await closedPort()), false);
    reply = (res) => res.end("<html>not ollama</html>");
    assert.equal(await probeOllama(url), false);
    reply = () => {}; // never answers
    const t0 = performance.now();
    assert.equal(await probeOllama(url, 100), false);
    assert.ok(performance.now() - t0 < 1000);
    assert.equal(await probeOllama("http://192.0.2.1:11434"), false); // not loopback: no request at all
  });
});

describe("make through an OpenAI-compatible server (the echo server)", () => {
  let echo: EchoServer;
  let cacheDir: string;
  before(async () => {
    echo = await startEchoServer(0);
    cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-auto-"));
  });
  after(async () => {
    await echo.close();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  });

  test("OPENAI_BASE_URL picks it; a real completion goes through it; the choice is logged once", async () => {
    const logs: string[] = [];
    const auto = makeAutoPlugin({ env: hermetic({ OPENAI_BASE_URL: `${echo.url}/v1` }), probe: noOllama });
    const problems = [...(await auto.preflight!(config(), { instance: "agent1", baseDir: cacheDir, env: {} }))];
    assert.deepEqual(problems, []);
    const policy = await new PluginTester(auto).make<Policy>({ rank: 2, compatible_model: "echo", cache_dir: cacheDir, max_tokens: 50 }, {}, { instance: "agent2", log: (m) => logs.push(m) });
    assert.deepEqual([policy.name, policy.provider, policy.model], ["agent2", "openai", "echo"]);
    const completion = await policy.complete([{ role: "user", content: "hello auto" }]);
    assert.equal(completion.text, "echo: hello auto");
    assert.equal(completion.cached, false);
    assert.equal(echo.requests(), 1);
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, /^policy\/auto chose openai-compatible, model echo: OPENAI_BASE_URL=http:\/\/127\.0\.0\.1:\d+\/v1 \(rank 2 asked, only one provider available: the first\)$/);
    assert.equal(policy.usage().calls, 1);
  });

  test("AutoConfig has no model key: the model comes from the provider's key", () => {
    assert.ok(!("model" in AutoConfig.fields));
  });
});
