// `bdc models make-tiny` (flag checks before anything is written) and `bdc models list`.
// The pull itself is tested against a fake hub in hub/pull-model.test.ts.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { BdcError, cli, type Io } from "@bdc/core";
import { PULL_RECORD } from "./hub/pull-model.ts";
import { parseTinyFlags } from "./models-command.ts";

let project = "";

before(() => {
  project = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-models-cmd-"));
  fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "p", type: "module", bdc: { commands: { models: "./models.ts" } } }));
  fs.writeFileSync(path.join(project, "models.ts"), `export { default } from ${JSON.stringify(path.join(import.meta.dirname, "models-command.ts"))};\n`);
});
after(() => fs.rmSync(project, { recursive: true, force: true }));

async function bdc(env: Record<string, string>, ...argv: string[]) {
  let out = "";
  let err = "";
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t), cwd: project, env, isTTY: false };
  const code = await cli(argv, io);
  return { code, out, err };
}

test("make-tiny flags: positive integers, known arch and dtype, shapes that divide", () => {
  assert.deepEqual(parseTinyFlags({}), {});
  assert.deepEqual(parseTinyFlags({ arch: "qwen2", layers: "3", hidden: "96", heads: "6", "kv-heads": "3", intermediate: "128", vocab: "600", dtype: "bfloat16", shards: "2", seed: "0" }), {
    arch: "qwen2",
    layers: 3,
    hidden: 96,
    heads: 6,
    kvHeads: 3,
    intermediate: 128,
    vocab: 600,
    dtype: "bfloat16",
    shards: 2,
    seed: 0,
  });
  const fails = (flags: Record<string, string>, re: RegExp) =>
    assert.throws(
      () => parseTinyFlags(flags),
      (e: BdcError) => e.code === "BDC_USAGE" && re.test(`${e.message}\n${e.hint}`),
      JSON.stringify(flags),
    );
  fails({ layers: "0" }, /--layers "0" is not a positive integer/);
  fails({ hidden: "1.5" }, /--hidden "1\.5" is not a positive integer/);
  fails({ vocab: "-3" }, /--vocab "-3" is not a positive integer/);
  fails({ seed: "x" }, /--seed "x" is not a non-negative integer/);
  fails({ arch: "lama" }, /unknown --arch "lama"\ndid you mean "llama"\? architectures: llama, mistral, qwen2/);
  fails({ dtype: "fp16" }, /unknown --dtype "fp16"/);
  fails({ hidden: "100", heads: "8" }, /--hidden 100 is not a multiple of --heads 8/);
  fails({ hidden: "62" }, /--hidden 62 is not a multiple of --heads 4 \(the default\)/);
  fails({ hidden: "12", heads: "4" }, /= 3 is odd; rotary embeddings need an even head dimension/);
  fails({ hidden: "96", heads: "6", "kv-heads": "4" }, /--heads 6 is not a multiple of --kv-heads 4.*\n--kv-heads must divide 6: 1, 2, 3, 6/);
  fails({ heads: "3", hidden: "48" }, /--heads 3 is not a multiple of --kv-heads 2/);
});

test("make-tiny through the CLI: a bad flag writes nothing and exits 2; good flags write a checkpoint", async () => {
  const bad = await bdc({}, "models", "make-tiny", "--out", "tiny", "--hidden", "100", "--heads", "8");
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^bdc models make-tiny: --hidden 100 is not a multiple of --heads 8 .* {2}\[BDC_USAGE\]/);
  assert.ok(!fs.existsSync(path.join(project, "tiny")));
  const noOut = await bdc({}, "models", "make-tiny");
  assert.equal(noOut.code, 2);
  assert.match(noOut.err, /--out DIR is required/);
  assert.match((await bdc({}, "models", "make-tiny", "--out", "t", "--revision", "x")).err, /--revision does not apply to make-tiny {2}\[BDC_USAGE\]\n {2}hint: make-tiny takes --out, --arch/);
  assert.equal((await bdc({}, "models", "make-tiny", "extra", "--out", "t")).code, 2);

  const ok = await bdc({}, "models", "make-tiny", "--out", "tiny", "--layers", "1", "--hidden", "32", "--heads", "4", "--kv-heads", "2", "--vocab", "300", "--shards", "2", "--seed", "7");
  assert.equal(ok.code, 0, ok.err);
  const dir = path.join(project, "tiny");
  assert.equal(ok.out, `${dir}\n`);
  assert.match(ok.err, /^wrote a tiny llama checkpoint with random weights to .*tiny: .*config\.json/);
  assert.ok(fs.existsSync(path.join(dir, "config.json")));
  assert.ok(fs.existsSync(path.join(dir, "model.safetensors.index.json")));

  // A pulled model is not overwritten.
  const pulled = path.join(project, "pulled");
  fs.mkdirSync(pulled);
  fs.writeFileSync(path.join(pulled, PULL_RECORD), JSON.stringify({ repo: "org/real", revision: "main", commit: null, endpoint: "x", pulledAt: "", files: [] }));
  const over = await bdc({}, "models", "make-tiny", "--out", "pulled");
  assert.equal(over.code, 2);
  assert.match(over.err, /holds a model pulled from the hub \(org\/real\); it is not overwritten/);
});

test("list: none yet, then the pulled models with revision, commit and size", async () => {
  const root = path.join(project, "models-dir");
  const empty = await bdc({ BDC_MODELS_DIR: root }, "models", "list");
  assert.equal(empty.code, 0);
  assert.equal(empty.out, `no models under ${root}\n`);
  assert.match(empty.err, /pnpm bdc models pull org\/name/);

  const a = path.join(root, "org", "a");
  fs.mkdirSync(a, { recursive: true });
  fs.writeFileSync(path.join(a, "config.json"), "{}");
  fs.writeFileSync(path.join(a, "model.safetensors"), Buffer.alloc(3000));
  fs.writeFileSync(path.join(a, PULL_RECORD), JSON.stringify({ repo: "org/a", revision: "v1", commit: "f".repeat(40), endpoint: "x", pulledAt: "", files: [] }));
  const b = path.join(root, "org", "b");
  fs.mkdirSync(b, { recursive: true });
  fs.writeFileSync(path.join(b, "model.safetensors.part"), Buffer.alloc(10));
  const r = await bdc({ BDC_MODELS_DIR: root }, "models", "list");
  assert.equal(r.code, 0, r.err);
  const lines = r.out.split("\n");
  assert.equal(lines[0], `models in ${root}:`);
  assert.match(lines[1]!, /^REPO +REVISION +COMMIT +SIZE$/);
  assert.match(lines[2]!, /^org\/a +v1 +ffffffffffff +3\.\d KiB$/);
  assert.match(lines[3]!, /^org\/b +- +- +10 B +incomplete: run the pull again$/);
});
