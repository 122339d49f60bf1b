import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { BdcErrors, type BdcError } from "../errors.ts";
import { PluginRegistry, type PluginEntry } from "../registry.ts";
import { loadWorkflow } from "./load.ts";
import { resolveWorkflow, type ResolvedWorkflow } from "./resolve.ts";

const repo = path.resolve(import.meta.dirname, "..", "..", "..");
const fixtures = path.join(repo, "tests", "fixtures", "plugins");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-resolve-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// Plugins without config (plain objects, no imports), to build reference graphs.
const plain = (id: string, requires: object) =>
  `export default { id: ${JSON.stringify(id)}, version: "1.0.0", description: "test plugin", requires: ${JSON.stringify(requires)}, make: () => ({}) };\n`;
fs.writeFileSync(path.join(tmp, "alpha.mjs"), plain("alpha/a", { other: { slot: "beta" } }));
fs.writeFileSync(path.join(tmp, "beta.mjs"), plain("beta/b", { other: { slot: "alpha" } }));
fs.writeFileSync(path.join(tmp, "prior.mjs"), plain("select/prior", { prior: { slot: "policy", optional: true } }));
fs.writeFileSync(path.join(tmp, "judged.mjs"), plain("step/judged", { judge: { slot: "policy", default: "judge" } }));

const entry = (id: string, module: string): PluginEntry => ({ id, slot: id.slice(0, id.indexOf("/")), module, pkg: "(test)" });
const registry = PluginRegistry.of(repo, [
  entry("policy/toy", path.join(fixtures, "toy-policy.ts")),
  entry("select/toy", path.join(fixtures, "toy-select.ts")),
  entry("step/toy-search", path.join(fixtures, "toy-search.ts")),
  entry("dataset/range", path.join(fixtures, "range-dataset.ts")),
  entry("step/slow", path.join(fixtures, "slow-step.ts")),
  entry("alpha/a", path.join(tmp, "alpha.mjs")),
  entry("beta/b", path.join(tmp, "beta.mjs")),
  entry("select/prior", path.join(tmp, "prior.mjs")),
  entry("step/judged", path.join(tmp, "judged.mjs")),
]);

let counter = 0;
function write(text: string, name = `w${++counter}.yaml`): string {
  const file = path.join(tmp, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

const env = { TOY_API_KEY: "k" };

async function resolve(text: string, opts: { overlays?: string[]; sets?: string[]; env?: Record<string, string>; preflight?: boolean; name?: string } = {}): Promise<ResolvedWorkflow> {
  const loaded = loadWorkflow({ file: write(text, opts.name), overlays: opts.overlays, sets: opts.sets, cwd: tmp });
  return resolveWorkflow(loaded, { registry, env: opts.env ?? env, preflight: opts.preflight });
}

async function errorsOf(text: string, opts: Parameters<typeof resolve>[1] = {}): Promise<BdcError[]> {
  try {
    await resolve(text, opts);
  } catch (e) {
    assert.ok(e instanceof BdcErrors, `expected BdcErrors, got ${String(e)}`);
    return [...e.errors];
  }
  assert.fail("expected the workflow to be rejected");
}

const brief = (e: BdcError) => ({ code: e.code, path: e.path?.join("."), message: e.message });

const searchWorkflow = (extra = "", searchWith = "") => `
plugins:
  agent1: { use: policy/toy, with: { model: m1 } }
  agent2: { use: policy/toy, with: { model: m2 } }
  pucb: { use: select/toy }
  items: { use: dataset/range, with: { n: 2 } }
  search:
    use: step/toy-search
${searchWith === "" ? "" : `    with: ${searchWith}\n`}${extra}
steps:
  search: { for_each: items }
`;

describe("references", () => {
  test("a single instance of a slot is picked automatically", async () => {
    const wf = await resolve(searchWorkflow());
    assert.equal(wf.instances.get("search")!.refs.selector, "pucb");
  });

  test("`many` defaults to every enabled instance of the slot, in file order", async () => {
    const wf = await resolve(searchWorkflow("  agent3: { use: policy/toy, with: { model: m3 }, enabled: false }\n  agent0: { use: policy/toy, with: { model: m0 } }\n"));
    assert.deepEqual(wf.instances.get("search")!.refs.agents, ["agent1", "agent2", "agent0"]);
  });

  test("an explicit list keeps its order; a disabled member is dropped", async () => {
    const wf = await resolve(searchWorkflow("", "{ agents: [agent2, agent1] }"));
    assert.deepEqual(wf.instances.get("search")!.refs.agents, ["agent2", "agent1"]);
    const ablated = await resolve(searchWorkflow("", "{ agents: [agent2, agent1] }"), { sets: ["plugins.agent2.enabled=false"] });
    assert.deepEqual(ablated.instances.get("search")!.refs.agents, ["agent1"]);
    assert.equal(ablated.instances.has("agent2"), false);
    assert.equal(ablated.used.has("agent2"), false);
  });

  test("a list whose members are all disabled is BDC_MISSING_INSTANCE", async () => {
    const errors = await errorsOf(searchWorkflow("", "{ agents: [agent2] }"), { sets: ["plugins.agent2.enabled=false"] });
    assert.deepEqual(errors.map(brief), [{ code: "BDC_MISSING_INSTANCE", path: "plugins.search.with.agents", message: "agents needs at least one enabled policy instance" }]);
  });

  test("a single reference to a disabled instance is BDC_REF_DISABLED, with the enabled alternatives", async () => {
    const errors = await errorsOf(searchWorkflow("  greedy: { use: select/toy, enabled: false }\n", "{ selector: greedy }"));
    assert.deepEqual(errors.map(brief), [{ code: "BDC_REF_DISABLED", path: "plugins.search.with.selector", message: '"greedy" is switched off (enabled: false)' }]);
    assert.equal(errors[0]!.hint, "enable it, or point selector at one of: pucb");
  });

  test("several candidates and none named is BDC_AMBIGUOUS_INSTANCE; disabled candidates do not count", async () => {
    const errors = await errorsOf(searchWorkflow("  greedy: { use: select/toy }\n"));
    assert.deepEqual(errors.map(brief), [
      { code: "BDC_AMBIGUOUS_INSTANCE", path: "plugins.search.with.selector", message: "several select instances could be meant for selector: pucb, greedy" },
    ]);
    const wf = await resolve(searchWorkflow("  greedy: { use: select/toy, enabled: false }\n"));
    assert.equal(wf.instances.get("search")!.refs.selector, "pucb");
  });

  test("an optional reference is auto-wired when unique and left unset otherwise", async () => {
    const base = `
plugins:
  sel: { use: select/prior }
  items: { use: dataset/range, with: { n: 1 } }
  work: { use: step/slow }
steps:
  work: { for_each: items }
`;
    assert.equal((await resolve(base)).instances.get("sel")!.refs.prior, undefined);
    const one = await resolve(base.replace("plugins:\n", "plugins:\n  p1: { use: policy/toy, with: { model: m } }\n"));
    assert.equal(one.instances.get("sel")!.refs.prior, "p1");
    const two = await resolve(base.replace("plugins:\n", "plugins:\n  p1: { use: policy/toy, with: { model: m } }\n  p2: { use: policy/toy, with: { model: m } }\n"));
    assert.equal(two.instances.get("sel")!.refs.prior, undefined);
  });

  test("a reference's default instance name is used when the key is absent", async () => {
    const base = `
plugins:
  judge: { use: policy/toy, with: { model: j } }
  other: { use: policy/toy, with: { model: o } }
  grade: { use: step/judged }
steps:
  grade: {}
`;
    assert.equal((await resolve(base)).instances.get("grade")!.refs.judge, "judge");
    const errors = await errorsOf(base.replace("  judge:", "  judge2:"));
    assert.deepEqual(errors.map(brief), [{ code: "BDC_UNKNOWN_INSTANCE", path: "plugins.grade.with.judge", message: 'no instance named "judge"' }]);
    assert.match(errors[0]!.hint ?? "", /did you mean "judge2"\?/);
  });

  test("instances that reference each other in a cycle are an error", async () => {
    const errors = await errorsOf(`
plugins:
  a: { use: alpha/a }
  b: { use: beta/b }
  work: { use: step/slow }
steps:
  work: {}
`);
    assert.deepEqual(errors.map((e) => e.code), ["BDC_REF_CYCLE"]);
    assert.match(errors[0]!.message, /a -> b -> a/);
  });
});

describe("build order and step order", () => {
  test("instances are built dependencies first, whatever the file order", async () => {
    const wf = await resolve(`
plugins:
  search: { use: step/toy-search }
  sel: { use: select/prior }
  items: { use: dataset/range, with: { n: 2 } }
  agent: { use: policy/toy, with: { model: m } }
steps:
  search: { for_each: items }
`);
    const order = [...wf.instances.keys()];
    assert.deepEqual(order.sort(), ["agent", "items", "search", "sel"]);
    const built = [...wf.instances.keys()];
    const at = (n: string) => built.indexOf(n);
    assert.ok(at("agent") < at("sel"), built.join(","));
    assert.ok(at("sel") < at("search"), built.join(","));
    assert.ok(at("agent") < at("search"), built.join(","));
    assert.deepEqual(wf.instances.get("sel")!.refs, { prior: "agent" });
  });

  test("steps come in a topological order; for_each over a step implies needs", async () => {
    const wf = await resolve(`
plugins:
  items: { use: dataset/range, with: { n: 2 } }
  work: { use: step/slow }
steps:
  d: { run: work, needs: [b, c] }
  c: { run: work, for_each: b }
  b: { run: work, for_each: a }
  a: { run: work, for_each: items }
  lone: { run: work }
`);
    const names = wf.steps.map((s) => s.name);
    const at = (n: string) => names.indexOf(n);
    assert.deepEqual([...names].sort(), ["a", "b", "c", "d", "lone"]);
    assert.ok(at("a") < at("b") && at("b") < at("c") && at("c") < at("d"), names.join(","));
    const byName = new Map(wf.steps.map((s) => [s.name, s]));
    assert.deepEqual(byName.get("c")!.needs, ["b"]);
    assert.deepEqual(byName.get("c")!.forEach, { kind: "step", name: "b" });
    assert.deepEqual(byName.get("a")!.forEach, { kind: "dataset", name: "items" });
    assert.equal(byName.get("lone")!.forEach, undefined);
    assert.equal(byName.get("d")!.instance, "work");
  });

  test("step cycles are reported once each, with their path", async () => {
    const errors = await errorsOf(`
plugins:
  work: { use: step/slow }
steps:
  a: { run: work, needs: [b] }
  b: { run: work, needs: [a] }
  c: { run: work, needs: [c] }
`);
    assert.deepEqual(errors.map(brief), [
      { code: "BDC_STEP_CYCLE", path: "steps.a", message: "steps depend on each other in a cycle: a -> b -> a" },
      { code: "BDC_STEP_CYCLE", path: "steps.c", message: "steps depend on each other in a cycle: c -> c" },
    ]);
  });

  test("a workflow whose steps are all disabled has nothing to run", async () => {
    const errors = await errorsOf(`
plugins:
  work: { use: step/slow }
steps:
  work: { enabled: false }
`);
    assert.deepEqual(errors.map((e) => e.code), ["BDC_NO_STEPS"]);
  });

  test("used: the instances steps reach, transitively; unused ones are not preflighted", async () => {
    const wf = await resolve(
      `
plugins:
  agent: { use: policy/toy, with: { model: m } }
  spare: { use: policy/toy, with: { model: s, key_env: SPARE_KEY } }
  sel: { use: select/prior, with: { prior: agent } }
  items: { use: dataset/range, with: { n: 2 } }
  search: { use: step/toy-search, with: { agents: [agent] } }
  idle: { use: step/slow }
steps:
  search: { for_each: items }
`,
    );
    assert.deepEqual([...wf.used].sort(), ["agent", "items", "search", "sel"]);
    // `idle` and `spare` are valid instances, just not used by any step.
    assert.ok(wf.instances.has("idle") && wf.instances.has("spare"));
  });
});

describe("preflight", () => {
  const wf = `
plugins:
  agent: { use: policy/toy, with: { model: m } }
  items: { use: dataset/range, with: { n: 2 } }
  pucb: { use: select/toy }
  search: { use: step/toy-search }
steps:
  search: { for_each: items }
`;

  test("a plugin's preflight problem is located in its with: block and keeps its code", async () => {
    const errors = await errorsOf(wf, { env: {} });
    assert.deepEqual(errors.map(brief), [{ code: "BDC_POLICY_MISSING_KEY", path: "plugins.agent.with.key_env", message: "TOY_API_KEY is not set" }]);
    assert.equal(errors[0]!.plugin, "policy/toy");
    assert.equal(errors[0]!.origin?.kind, "file");
  });

  test("preflight: false skips it; the environment passed in is the one checked", async () => {
    await resolve(wf, { env: {}, preflight: false });
    await resolve(wf, { env: { TOY_API_KEY: "x" } });
  });
});

describe("resolved document (--print)", () => {
  test("defaults, references, disabled instances and steps are spelled out", async () => {
    const wf = await resolve(
      `
description: demo
plugins:
  agent1: { use: policy/toy, with: { model: m1, temperature: 0.5 } }
  agent2: { use: policy/toy, with: { model: m2, bogus: 1 }, enabled: false }
  pucb: { use: select/toy, with: { value: mean } }
  items: { use: dataset/range, with: { n: 2 } }
  search: { use: step/toy-search }
steps:
  search: { for_each: items, concurrency: 2 }
  later: { run: search, needs: [search], enabled: false }
`,
      { name: "printed.yaml" },
    );
    assert.deepEqual(wf.document, {
      name: "printed",
      description: "demo",
      run: { concurrency: 4, on_error: "continue" },
      plugins: {
        agent1: { use: "policy/toy", with: { model: "m1", temperature: 0.5, key_env: "TOY_API_KEY" } },
        // a disabled instance is not validated: its with: block is shown as written
        agent2: { use: "policy/toy", with: { model: "m2", bogus: 1 }, enabled: false },
        pucb: { use: "select/toy", with: { c: 1, value: "mean" } },
        items: { use: "dataset/range", with: { n: 2 } },
        search: { use: "step/toy-search", with: { rollouts: 4, agents: ["agent1"], selector: "pucb" } },
      },
      steps: {
        search: { run: "search", for_each: "items", concurrency: 2, on_error: "continue" },
        later: { run: "search", needs: ["search"], enabled: false },
      },
    });
    assert.equal(wf.name, "printed");
    assert.equal(wf.concurrency, 4);
    assert.equal(wf.onError, "continue");
  });

  test("run options and the name come from the file when set", async () => {
    const wf = await resolve(`
name: custom
run: { concurrency: 3, on_error: stop }
plugins:
  work: { use: step/slow, with: { ms: 1 } }
steps:
  work: { on_error: continue }
`);
    assert.equal(wf.name, "custom");
    assert.deepEqual(wf.document.run, { concurrency: 3, on_error: "stop" });
    assert.deepEqual((wf.document.steps as Record<string, unknown>).work, { run: "work", concurrency: 3, on_error: "continue" });
    assert.deepEqual((wf.document.plugins as Record<string, unknown>).work, { use: "step/slow", with: { ms: 1, fail: [] } });
  });
});

describe("located errors", () => {
  test("all problems of a workflow, sorted by line", async () => {
    const file = "located.yaml";
    const errors = await errorsOf(
      `plugins:
  pucb: { use: select/toy, with: { c: high } }
  agent: { use: policy/toy }
  search: { use: step/toy-search, with: { selector: nope } }
  bad name: { use: step/slow }
steps:
  search: { for_each: itmes, needs: [nosuch] }
`,
      { name: file },
    );
    assert.deepEqual(
      errors.map((e) => `${e.origin?.kind === "file" ? `${e.origin.file}:${e.origin.line}:${e.origin.col}` : "?"} ${e.code}`),
      [
        "located.yaml:2:39 BDC_CONFIG_TYPE",
        "located.yaml:3:10 BDC_CONFIG_MISSING_KEY",
        "located.yaml:4:53 BDC_UNKNOWN_INSTANCE",
        "located.yaml:5:3 BDC_CONFIG_VALUE",
        "located.yaml:7:23 BDC_UNKNOWN_INSTANCE",
        "located.yaml:7:38 BDC_UNKNOWN_STEP",
      ],
    );
  });

  test("an error in an overlay points into the overlay; `use:` paths are relative to the file that wrote them", async () => {
    // The overlay lives in tmp/sub/dir and names the plugin module relative to itself.
    const dir = path.join(tmp, "sub", "dir");
    const rel = path.relative(dir, path.join(fixtures, "toy-select.ts"));
    const overlay = write(`plugins:\n  mine:\n    use: ${rel}\n    with: { c: x }\n`, "sub/dir/overlay.yaml");
    const errors = await errorsOf(
      `
plugins:
  work: { use: step/slow }
steps:
  work: {}
`,
      { overlays: [overlay] },
    );
    assert.deepEqual(errors.map(brief), [{ code: "BDC_CONFIG_TYPE", path: "plugins.mine.with.c", message: 'expected a number, got "x"' }]);
    assert.deepEqual(errors[0]!.origin, { kind: "file", file: path.join("sub", "dir", "overlay.yaml"), line: 4, col: 16 });
  });

  test("format errors stop before plugins are resolved", async () => {
    const errors = await errorsOf(`
plugins:
  x: { use: select/nosuch, wiht: {} }
steps: []
`);
    assert.deepEqual(errors.map(brief).sort((a, b) => a.path!.localeCompare(b.path!)), [
      { code: "BDC_CONFIG_UNKNOWN_KEY", path: "plugins.x.wiht", message: 'unknown key "wiht"' },
      { code: "BDC_CONFIG_TYPE", path: "steps", message: "expected a mapping, got a list" },
    ]);
  });
});
