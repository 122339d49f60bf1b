/**
 * policy/auto's `local` provider: last in the default order, available when `local_model` is on
 * this machine (pulled, or a checkpoint folder); the offline route in BDC_NO_MODEL_ACCESS; and
 * `--yes` (`ctx.assumeYes`), which pulls `local_model` from the hub in preflight and then runs it
 * with policy/local. The hub is @bdc/hf-hub's fake one on 127.0.0.1, serving a tiny random Qwen2
 * checkpoint as Qwen/Qwen2.5-Coder-0.5B-Instruct; BDC_MODELS_DIR and BDC_ONNX_CACHE are fresh
 * temporary folders.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { cli, type PreflightContext, type PreflightProblem } from "@bdc/core";
import { PluginTester } from "@bdc/core/testing";
import { startFakeHub, type FakeHub, type FakeRepo } from "@bdc/hf-hub/testing";
import { writeTinyCheckpoint } from "@bdc/lm-local";
import type { Policy } from "@bdc/policy";
import plugin, { chooseProvider, DEFAULT_LOCAL_MODEL, makeAutoPlugin, noAccessMessage, underlyingConfig, type AutoConfig as Config, type Env } from "./auto-plugin.ts";

const MODEL = DEFAULT_LOCAL_MODEL;
const tester = new PluginTester(plugin);
const config = (withBlock: Record<string, unknown> = {}) => tester.decode(withBlock) as Config;
const noOllama = async () => false;
const FIXTURES = path.resolve(import.meta.dirname, "../../../tests/fixtures/plugins");

let tmp: string;
let tiny: string;
let hub: FakeHub;
let serial = 0;
const saved = { onnx: process.env.BDC_ONNX_CACHE };

/** A fresh, empty models folder. */
const freshModels = () => fs.mkdtempSync(path.join(tmp, `models-${serial++}-`));
const envOf = (models: string, more: Env = {}): Env => ({ BDC_MODELS_DIR: models, HF_ENDPOINT: hub.endpoint, ...more });
const pulledDir = (models: string, id = MODEL) => path.join(models, ...id.split("/"));

/** `local_model` placed as a finished pull would leave it. */
function placePulled(models: string, id = MODEL): string {
  const dir = pulledDir(models, id);
  fs.cpSync(tiny, dir, { recursive: true });
  fs.writeFileSync(path.join(dir, ".bdc-pull.json"), JSON.stringify({ repo: id, revision: "main", commit: null, endpoint: hub.endpoint, pulledAt: new Date().toISOString(), files: [] }));
  return dir;
}

function ctxOf(env: Env, more: Partial<PreflightContext> = {}): PreflightContext {
  return { instance: "agent1", baseDir: tmp, env, ...more };
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-auto-local-"));
  tiny = path.join(tmp, "tiny");
  writeTinyCheckpoint(tiny, { arch: "qwen2", layers: 1, hidden: 32, heads: 2, kvHeads: 1, vocab: 300, seed: 5 });
  const files: Record<string, Buffer> = {};
  for (const f of fs.readdirSync(tiny)) files[f] = fs.readFileSync(path.join(tiny, f));
  const repo: FakeRepo = { type: "model", id: MODEL, files };
  hub = await startFakeHub([repo]);
  // policy/local builds its ONNX model here (it reads process.env, as a run does).
  process.env.BDC_ONNX_CACHE = path.join(tmp, "onnx");
});

after(async () => {
  await hub.close();
  if (saved.onnx === undefined) delete process.env.BDC_ONNX_CACHE;
  else process.env.BDC_ONNX_CACHE = saved.onnx;
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("the local provider", () => {
  test("last in the default order; available only when local_model is on this machine", async () => {
    const models = freshModels();
    const env = envOf(models);
    assert.equal(await chooseProvider(env, config(), noOllama, tmp), undefined, "not pulled: not available");

    // An unfinished pull (a .part file, no record) does not count.
    fs.mkdirSync(pulledDir(models), { recursive: true });
    fs.copyFileSync(path.join(tiny, "config.json"), path.join(pulledDir(models), "config.json"));
    fs.writeFileSync(path.join(pulledDir(models), "model.safetensors.part"), "x");
    assert.equal(await chooseProvider(env, config(), noOllama, tmp), undefined, "an unfinished pull is not available");
    fs.rmSync(pulledDir(models), { recursive: true });

    const dir = placePulled(models);
    const c = await chooseProvider(env, config(), noOllama, tmp);
    assert.deepEqual([c?.provider, c?.reason, c?.endpoint, c?.fellBack], ["local", `${MODEL} is pulled in ${dir}`, dir, false]);
    // policy/local looks in process.env's models folder, which is not this one: it is given the folder.
    assert.equal(c?.model, dir);

    // Last: every other provider comes first; rank 2 with one other is local.
    const openai = { ...env, OPENAI_API_KEY: "sk-test" };
    assert.equal((await chooseProvider(openai, config(), noOllama, tmp))?.provider, "openai");
    assert.equal((await chooseProvider(openai, config({ rank: 2 }), noOllama, tmp))?.provider, "local");
    assert.equal((await chooseProvider(env, config({ rank: 2 }), async () => true, tmp))?.provider, "local");
    assert.equal((await chooseProvider(openai, config({ prefer: ["local", "openai"] }), noOllama, tmp))?.provider, "local");
    assert.equal((await chooseProvider(env, config({ prefer: ["openai", "ollama"] }), noOllama, tmp))?.provider, undefined, "not in prefer: never used");
  });

  test("local_model may be a checkpoint folder (relative to the workflow's folder)", async () => {
    const env = envOf(freshModels());
    for (const spec of [tiny, "tiny", "./tiny"]) {
      const c = await chooseProvider(env, config({ local_model: spec }), noOllama, tmp);
      assert.deepEqual([c?.provider, c?.reason, c?.endpoint, c?.model], ["local", `${spec} is a checkpoint folder`, tiny, spec], spec);
    }
    assert.equal(await chooseProvider(env, config({ local_model: "./nowhere" }), noOllama, tmp), undefined);
  });

  test("the underlying config: policy/local with the model, the device keys and the shared keys", async () => {
    const c = config({ local_model: tiny, device: "cpu", threads: 2, temperature: 0.3, max_tokens: 16, seed: 3 });
    const u = await underlyingConfig((await chooseProvider(envOf(freshModels()), c, noOllama, tmp))!, c);
    assert.equal(u.plugin.id, "policy/local");
    assert.deepEqual(pick(u.input, ["model", "device", "threads", "temperature", "max_tokens", "seed"]), { model: tiny, device: "cpu", threads: 2, temperature: 0.3, max_tokens: 16, seed: 3 });
    assert.ok(!("device_id" in u.input) && !("dtype" in u.input), "unset device keys are not passed");
  });

  test("policy/local's own problems are said in our terms", async () => {
    const models = freshModels();
    placePulled(models);
    const problems = [...(await makeAutoPlugin({ probe: noOllama }).preflight!(config({ dtype: "float16" }), ctxOf(envOf(models))))];
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.code, "BDC_CONFIG_VALUE");
    assert.deepEqual(problems[0]!.path, ["dtype"]);
    assert.match(problems[0]!.message, /^policy\/local \(chosen: Qwen\/Qwen2\.5-Coder-0\.5B-Instruct is pulled in .*\): dtype: float16 is for a GPU/);
  });
});

/** The keys of `o` among `keys` (what the shared schema fills in by default). */
function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));
}

describe("the offline route in BDC_NO_MODEL_ACCESS", () => {
  test("the message offers `models pull` (with its size) and `bdc run --yes`", () => {
    assert.equal(
      noAccessMessage(["local"], { model: MODEL, workflow: "workflows/quickstart.yaml" }),
      "no model access: run Qwen/Qwen2.5-Coder-0.5B-Instruct on this machine, offline: `pnpm bdc models pull Qwen/Qwen2.5-Coder-0.5B-Instruct` (about 1 GB) and run again, " +
        "or `pnpm bdc run workflows/quickstart.yaml --yes` to pull it and run",
    );
    assert.equal(
      noAccessMessage(["anthropic", "local"], { model: "org/other-model" }),
      "no model access: set ANTHROPIC_API_KEY (Anthropic); or run org/other-model on this machine, offline: `pnpm bdc models pull org/other-model` and run again, " +
        "or `pnpm bdc run <workflow.yaml> --yes` to pull it and run",
      "no size for a model we do not know",
    );
    assert.equal(
      noAccessMessage(["openai", "local"], { model: "./models/mine" }),
      "no model access: set OPENAI_API_KEY (OpenAI); or put a checkpoint (config.json, *.safetensors, tokenizer.json) in the local_model folder ./models/mine to run it on this machine (policy/local)",
    );
  });

  test("without --yes: one problem naming the workflow, and no download", async () => {
    const models = freshModels();
    const before = hub.log.length;
    const problems = [...(await makeAutoPlugin({ probe: noOllama }).preflight!(config(), ctxOf(envOf(models), { workflow: "workflows/quickstart.yaml", progress: { write: () => assert.fail("no output"), isTTY: false } })))];
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.code, "BDC_NO_MODEL_ACCESS");
    assert.match(problems[0]!.message, /; or run Qwen\/Qwen2\.5-Coder-0\.5B-Instruct on this machine, offline: `pnpm bdc models pull Qwen\/Qwen2\.5-Coder-0\.5B-Instruct` \(about 1 GB\) and run again, or `pnpm bdc run workflows\/quickstart\.yaml --yes` to pull it and run$/);
    assert.equal(hub.log.length, before);
    assert.deepEqual(fs.readdirSync(models), []);
  });

  test("--yes does not pull what `prefer` leaves out, nor a folder", async () => {
    const models = freshModels();
    const before = hub.log.length;
    const auto = makeAutoPlugin({ probe: noOllama });
    for (const c of [config({ prefer: ["openai", "ollama"] }), config({ local_model: "./nowhere" })]) {
      const problems = [...(await auto.preflight!(c, ctxOf(envOf(models), { assumeYes: true })))];
      assert.deepEqual(problems.map((p) => p.code), ["BDC_NO_MODEL_ACCESS"]);
    }
    assert.equal(hub.log.length, before);
  });
});

describe("pull_local: yes - the workflow already said yes", () => {
  test("bdc run's preflight pulls without --yes; bdc validate's never downloads", async () => {
    const models = freshModels();
    const env = envOf(models);
    const auto = makeAutoPlugin({ env, probe: noOllama });
    const before = hub.log.length;
    const validate = [...(await auto.preflight!(config({ pull_local: "yes" }), ctxOf(env)))];
    assert.deepEqual(validate.map((p) => p.code), ["BDC_NO_MODEL_ACCESS"], "validate: offered, not done");
    assert.equal(hub.log.length, before);
    assert.deepEqual([...(await auto.preflight!(config({ pull_local: "ask" }), ctxOf(env, { forRun: true })))].map((p) => p.code), ["BDC_NO_MODEL_ACCESS"], "ask: a run without --yes stops");
    let text = "";
    const run = [...(await auto.preflight!(config({ pull_local: "yes" }), ctxOf(env, { forRun: true, progress: { write: (t) => void (text += t), isTTY: false } })))];
    assert.deepEqual(run, []);
    assert.ok(fs.existsSync(path.join(pulledDir(models), ".bdc-pull.json")), "pulled");
    assert.match(text, /model\.safetensors: done/);
  });
});

describe("--yes: preflight pulls local_model, then it runs", () => {
  test("pulls once (progress on the writer), counts local as available, and completes a call", async () => {
    const models = freshModels();
    const env = envOf(models);
    const auto = makeAutoPlugin({ env, probe: noOllama });
    let text = "";
    const progress = { write: (t: string) => void (text += t), isTTY: false };
    const before = hub.log.length;
    const problems = [...(await auto.preflight!(config(), ctxOf(env, { assumeYes: true, progress })))];
    assert.deepEqual(problems, []);
    const dir = pulledDir(models);
    assert.ok(fs.existsSync(path.join(dir, ".bdc-pull.json")), "a finished pull");
    assert.ok(hub.log.length > before);
    assert.match(text, new RegExp(`^agent1 \\(policy/auto\\): no model access; pulling Qwen/Qwen2\\.5-Coder-0\\.5B-Instruct \\(about 1 GB\\) into ${escape(dir)} to run it on this machine \\(--yes\\)\\n`));
    assert.match(text, /model\.safetensors: done/);

    // The second agent (rank 2) finds it pulled: nothing more is fetched.
    const fetched = hub.log.length;
    assert.deepEqual([...(await auto.preflight!(config({ rank: 2 }), ctxOf(env, { instance: "agent2", assumeYes: true, progress })))], []);
    assert.equal(hub.log.length, fetched);

    const logs: string[] = [];
    const policy = await new PluginTester(auto).make<Policy>({ max_tokens: 6, cache_dir: path.join(tmp, "responses") }, {}, { instance: "agent1", baseDir: tmp, log: (m) => logs.push(m) });
    assert.deepEqual([policy.provider, policy.model], ["local", dir]);
    assert.ok(logs.some((l) => l.startsWith(`policy/auto chose local, model ${dir}: ${MODEL} is pulled in ${dir} (rank 1)`)), logs.join("\n"));
    const completion = await policy.complete([{ role: "user", content: "def add(a, b):" }]);
    assert.equal(typeof completion.text, "string");
    assert.equal(completion.cached, false);
    assert.ok(completion.outputTokens >= 1 && completion.outputTokens <= 6);
    const usage = policy.usage();
    assert.equal(usage.calls, 1);
    assert.ok(usage.input_tokens > 0);
    assert.equal(usage.output_tokens, completion.outputTokens);
  });

  test("an interrupted pull is a problem that says it resumes; the next --yes resumes it", async () => {
    const models = freshModels();
    const env = envOf(models);
    const auto = makeAutoPlugin({ probe: noOllama });
    hub.interruptOnce.add(`${MODEL}/model.safetensors`);
    const first: PreflightProblem[] = [...(await auto.preflight!(config(), ctxOf(env, { assumeYes: true })))];
    assert.equal(first.length, 1);
    assert.deepEqual(first[0]!.path, ["local_model"]);
    assert.match(first[0]!.message, /^no model access, and pulling local_model Qwen\/Qwen2\.5-Coder-0\.5B-Instruct \(--yes\) failed: /);
    assert.match(first[0]!.hint ?? "", /^run the same command again: it resumes from model\.safetensors\.part; or set up one of the other providers \(see README\.md, section "Policies: the agents"\)$/);
    const before = hub.log.length;
    assert.deepEqual([...(await auto.preflight!(config(), ctxOf(env, { assumeYes: true })))], []);
    assert.ok(hub.log.slice(before).some((l) => l.range !== undefined && /^bytes=[1-9]\d*-$/.test(l.range)), "resumed with Range");
  });

  test("a model the hub does not have: the hub's error, at local_model", async () => {
    const problems = [...(await makeAutoPlugin({ probe: noOllama }).preflight!(config({ local_model: "org/missing" }), ctxOf(envOf(freshModels()), { assumeYes: true })))];
    assert.equal(problems.length, 1);
    assert.deepEqual(problems[0]!.path, ["local_model"]);
    assert.match(problems[0]!.message, /^no model access, and pulling local_model org\/missing \(--yes\) failed: /);
  });
});

describe("bdc validate / bdc run --yes", () => {
  let project: string;
  before(() => {
    project = fs.mkdtempSync(path.join(tmp, "project-"));
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "offline", type: "module" }));
    // policy/auto without the Ollama probe (a server on this machine must not change the test).
    fs.writeFileSync(path.join(project, "auto.ts"), `import { makeAutoPlugin } from ${JSON.stringify(path.join(import.meta.dirname, "auto-plugin.ts"))};\nexport default makeAutoPlugin({ probe: async () => false });\n`);
    fs.writeFileSync(
      path.join(project, "workflow.yaml"),
      [
        "name: offline",
        "plugins:",
        "  items:",
        `    use: ${path.join(FIXTURES, "range-dataset.ts")}`,
        "    with: { n: 1 }",
        "  agent:",
        "    use: ./auto.ts",
        `    with: { max_tokens: 4, cache_dir: ${JSON.stringify(path.join(tmp, "cli-responses"))} }`,
        "  ask:",
        `    use: ${path.join(FIXTURES, "ask-step.ts")}`,
        "steps:",
        "  ask: { for_each: items }",
        "",
      ].join("\n"),
    );
  });

  async function bdc(env: Env, ...argv: string[]) {
    let out = "";
    let err = "";
    const code = await cli(argv, { out: (t) => void (out += t), err: (t) => void (err += t), cwd: project, env, isTTY: false });
    return { code, out, err };
  }

  test("validate offers the offline route for this workflow and never downloads, even with the flag's env", async () => {
    const models = freshModels();
    const before = hub.log.length;
    const r = await bdc(envOf(models), "validate", "workflow.yaml");
    assert.equal(r.code, 2);
    assert.match(r.err, /\[BDC_NO_MODEL_ACCESS\]/);
    assert.match(r.err, /`pnpm bdc run workflow\.yaml --yes` to pull it and run/);
    assert.equal(hub.log.length, before);
    const help = await bdc(envOf(models), "run", "--help");
    assert.match(help.out, /-y, --yes +answer yes to what plugins offer to do before the run \(e\.g\. download a model\)/);
    assert.equal((await bdc(envOf(models), "validate", "workflow.yaml", "--yes")).code, 2, "validate has no --yes");
  });

  test("run --yes pulls the model in preflight and runs on it", async () => {
    const models = freshModels();
    const env = envOf(models);
    // make reads process.env (as in a real run, where it is the same environment).
    const old = { models: process.env.BDC_MODELS_DIR, hf: process.env.HF_ENDPOINT };
    process.env.BDC_MODELS_DIR = models;
    process.env.HF_ENDPOINT = hub.endpoint;
    try {
      const r = await bdc(env, "run", "workflow.yaml", "--out", path.join(project, "run"), "-y");
      assert.equal(r.code, 0, r.err);
      assert.match(r.err, /agent \(policy\/auto\): no model access; pulling Qwen\/Qwen2\.5-Coder-0\.5B-Instruct \(about 1 GB\)/);
      assert.match(r.err, /policy\/auto chose local, model Qwen\/Qwen2\.5-Coder-0\.5B-Instruct: Qwen\/Qwen2\.5-Coder-0\.5B-Instruct is pulled in /);
      assert.ok(fs.existsSync(path.join(pulledDir(models), ".bdc-pull.json")));
      const outputs = fs.readFileSync(path.join(project, "run", "steps", "ask", "outputs.jsonl"), "utf8").trim().split("\n");
      assert.equal(outputs.length, 1);
    } finally {
      for (const [k, v] of [["BDC_MODELS_DIR", old.models], ["HF_ENDPOINT", old.hf]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
