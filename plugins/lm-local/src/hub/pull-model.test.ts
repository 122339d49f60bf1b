// `bdc models pull` / `pullModel` / `resolveModelDir` against a local fake hub (@bdc/hf-hub/testing:
// node:http on 127.0.0.1, LFS files redirected to a second "CDN" server): never the internet.
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, beforeEach, test } from "node:test";
import { BdcError, cli, type Io } from "@bdc/core";
import { gitSha1, sha256, startFakeHub, type FakeHub, type FakeRepo } from "@bdc/hf-hub/testing";
import { PluginTester } from "@bdc/core/testing";
import type { Encoder } from "@bdc/policy";
import encoderOnnx from "../plugins/encoder-onnx.ts";
import { writeTinySentenceModel } from "../model/tiny-sentence-model.ts";
import { modelsDir, PULL_RECORD, pullModel, readPullRecord, resolveModelDir, type PullRecord } from "./pull-model.ts";

const shard1 = crypto.randomBytes(60_000);
const shard2 = crypto.randomBytes(40_000);
const index = Buffer.from(
  JSON.stringify({ metadata: { total_size: 100_000 }, weight_map: { "model.embed_tokens.weight": "model-00001-of-00002.safetensors", "lm_head.weight": "model-00002-of-00002.safetensors", "model.norm.weight": "model-00002-of-00002.safetensors" } }),
);
const config = Buffer.from(JSON.stringify({ architectures: ["LlamaForCausalLM"], model_type: "llama" }));

const sharded: FakeRepo = {
  type: "model",
  id: "org/sharded",
  revisions: ["main", "v1.0"],
  files: {
    ".gitattributes": Buffer.from("*.safetensors filter=lfs diff=lfs merge=lfs -text\n"),
    "config.json": config,
    "generation_config.json": Buffer.from('{"eos_token_id": 2}'),
    "tokenizer.json": { content: Buffer.from(JSON.stringify({ model: { type: "BPE", vocab: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`t${i}`, i])) } })), lfs: false },
    "tokenizer_config.json": Buffer.from('{"chat_template": "x"}'),
    "special_tokens_map.json": Buffer.from("{}"),
    "README.md": Buffer.from("# sharded\n"),
    LICENSE: Buffer.from("Apache 2.0\n"),
    "model.safetensors.index.json": { content: index, lfs: false },
    "model-00001-of-00002.safetensors": shard1,
    "model-00002-of-00002.safetensors": shard2,
    // Never fetched:
    "consolidated.safetensors": crypto.randomBytes(5000),
    "pytorch_model.bin": crypto.randomBytes(3000),
    "model.gguf": crypto.randomBytes(100),
    "onnx/model.onnx": crypto.randomBytes(100),
    "original/consolidated.00.pth": crypto.randomBytes(100),
    "original/params.json": Buffer.from("{}"),
    "merges.txt": Buffer.from("a b\n"),
  },
};
const single: FakeRepo = {
  type: "model",
  id: "org/single",
  files: { "config.json": config, "tokenizer.json": Buffer.from("{}"), "model.safetensors": crypto.randomBytes(20_000), "model.safetensors.index.json": { content: index, lfs: false } },
};
const corrupt: FakeRepo = {
  type: "model",
  id: "org/corrupt",
  files: { "config.json": config, "tokenizer.json": Buffer.from("{}"), "model.safetensors": { content: Buffer.alloc(5000, 1), served: Buffer.alloc(5000, 7) } },
};
const pickle: FakeRepo = {
  type: "model",
  id: "org/pickle",
  files: { "config.json": config, "tokenizer.json": Buffer.from("{}"), "pytorch_model.bin": crypto.randomBytes(2000), "original/consolidated.00.pth": crypto.randomBytes(100) },
};
const odd: FakeRepo = {
  type: "model",
  id: "org/odd",
  files: { "config.json": config, "consolidated.safetensors": crypto.randomBytes(200) },
};
/** A sentence-transformers repository with ONNX weights: the tiny model's real files, plus weights in other formats. */
const sentenceDir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-sentence-repo-"));
writeTinySentenceModel(sentenceDir);
const filesUnder = (dir: string, prefix = ""): Array<[string, Buffer]> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name), `${prefix}${e.name}/`) : [[`${prefix}${e.name}`, fs.readFileSync(path.join(dir, e.name))] as [string, Buffer]]));
const sentence: FakeRepo = {
  type: "model",
  id: "org/minilm",
  files: {
    ...Object.fromEntries(filesUnder(sentenceDir)),
    "model.safetensors": crypto.randomBytes(300),
    "pytorch_model.bin": crypto.randomBytes(300),
    "onnx/model_quantized.onnx": crypto.randomBytes(200),
    "openvino/openvino_model.xml": Buffer.from("<xml/>"),
    "config_sentence_transformers.json": Buffer.from('{"__version__": {"sentence_transformers": "3.0.1"}}'),
  },
};
const ALL = [sharded, single, corrupt, pickle, odd, sentence];

let hub: FakeHub;
let project = "";
let models = "";

before(async () => {
  hub = await startFakeHub(ALL);
  // A project whose package.json contributes the command, as the package does.
  project = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-models-"));
  fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "p", type: "module", bdc: { commands: { models: "./models.ts" } } }));
  fs.writeFileSync(path.join(project, "models.ts"), `export { default } from ${JSON.stringify(path.join(import.meta.dirname, "..", "models-command.ts"))};\n`);
  models = path.join(project, "m");
});

after(async () => {
  await hub.close();
  fs.rmSync(project, { recursive: true, force: true });
  fs.rmSync(sentenceDir, { recursive: true, force: true });
});

beforeEach(() => {
  hub.log.length = 0;
  hub.interruptOnce.clear();
  hub.token = undefined;
  hub.pageSize = 1000;
  hub.setRepos(ALL);
});

function makeIo(env: Record<string, string> = {}) {
  const o = { out: "", err: "" };
  const io: Io = { out: (t) => void (o.out += t), err: (t) => void (o.err += t), cwd: project, env: { HF_ENDPOINT: hub.endpoint, BDC_MODELS_DIR: models, ...env }, isTTY: false };
  return { io, o };
}

async function bdc(env: Record<string, string>, ...argv: string[]) {
  const { io, o } = makeIo(env);
  const code = await cli(argv, io);
  return { code, ...o };
}

const gets = () => hub.log.filter((l) => l.method === "GET" && l.url.includes("/resolve/") && l.server === "hub").map((l) => decodeURIComponent(l.url.replace(/^.*\/resolve\/[^/]+\//, "")));

test("pulls a sharded checkpoint: paged listing, only the files a loader reads, LFS through the CDN, a record with the commit", async () => {
  hub.pageSize = 4;
  hub.token = "s3cret";
  const r = await bdc({ HF_TOKEN: "s3cret" }, "models", "pull", "org/sharded");
  assert.equal(r.code, 0, r.err);
  const dir = path.join(models, "org", "sharded");
  assert.equal(r.out, `${dir}\n`);
  const want = [
    "LICENSE",
    "README.md",
    "config.json",
    "generation_config.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
  ];
  assert.deepEqual(fs.readdirSync(dir).sort(), [PULL_RECORD, ...want].sort());
  assert.ok(fs.readFileSync(path.join(dir, "model-00001-of-00002.safetensors")).equals(shard1));
  // The listing was paged (recursive), every file came from the commit the hub reported.
  const commit = hub.commitOf("org/sharded");
  const trees = hub.log.filter((l) => l.url.startsWith("/api/models/org/sharded/tree/"));
  assert.ok(trees.length > 3, `${trees.length} pages`);
  assert.ok(trees.every((l) => l.url.includes(`/tree/${commit}`) && l.url.includes("recursive=true")));
  assert.equal(hub.log[0]!.method, "HEAD");
  assert.match(hub.log[0]!.url, /\/org\/sharded\/resolve\/main\/config\.json$/);
  assert.ok(hub.log.filter((l) => l.url.includes("/resolve/")).every((l) => l.url.includes(`/resolve/${commit}/`) || l.method === "HEAD"));
  // LFS files were redirected to the CDN, which never saw the token.
  const cdn = hub.log.filter((l) => l.server === "cdn");
  assert.equal(cdn.length, 2);
  assert.ok(cdn.every((l) => l.auth === undefined));
  assert.ok(hub.log.filter((l) => l.server === "hub").every((l) => l.auth === "Bearer s3cret"));

  const rec = JSON.parse(fs.readFileSync(path.join(dir, PULL_RECORD), "utf8")) as PullRecord;
  assert.equal(rec.repo, "org/sharded");
  assert.equal(rec.revision, "main");
  assert.equal(rec.commit, commit);
  assert.equal(rec.endpoint, hub.endpoint);
  assert.deepEqual(rec.files.map((f) => f.path), want);
  assert.deepEqual(rec.files.find((f) => f.path === "model-00002-of-00002.safetensors"), { path: "model-00002-of-00002.safetensors", size: shard2.length, sha256: sha256(shard2) });
  assert.deepEqual(rec.files.find((f) => f.path === "config.json"), { path: "config.json", size: config.length, gitSha1: gitSha1(config) });
  assert.match(r.err, /^org\/sharded@main: 10 file\(s\), 98 KiB -> /);
  assert.match(r.err, /org\/sharded@main \(commit [0-9a-f]{12}\): 10 file\(s\), 98 KiB in /);

  // Again: nothing but the lookups; the record stays.
  hub.log.length = 0;
  const again = await bdc({ HF_TOKEN: "s3cret" }, "models", "pull", "org/sharded", "-q");
  assert.equal(again.code, 0, again.err);
  assert.equal(again.err, "");
  assert.deepEqual(gets(), ["model.safetensors.index.json"]);
  assert.equal(readPullRecord(dir)?.commit, commit);

  // `bdc models list` shows it; resolveModelDir finds it by id.
  const list = await bdc({}, "models", "list");
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, new RegExp(`^models in ${models.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\nREPO +REVISION +COMMIT +SIZE\norg/sharded +main +${commit.slice(0, 12)} +\\d+ KiB\n$`));
  assert.equal(resolveModelDir("org/sharded", project, models), dir);
});

test("a repository with model.safetensors: that file only; a tag revision; a new commit replaces the old files", async () => {
  const { io } = makeIo();
  const out = path.join(project, "single");
  const p = await pullModel({ repo: "https://huggingface.co/org/single", out, quiet: true, io });
  assert.equal(p.dir, out);
  assert.deepEqual(fs.readdirSync(out).sort(), [PULL_RECORD, "config.json", "model.safetensors", "tokenizer.json"]);
  assert.deepEqual(p.fetched, ["config.json", "model.safetensors", "tokenizer.json"]);

  // The repository moves to sharded weights: the old weights go, the record follows.
  hub.setRepos([{ ...sharded, id: "org/single", commit: "c".repeat(40) }]);
  const q = await pullModel({ repo: "org/single", revision: "v1.0", out, quiet: true, io });
  assert.equal(q.record.commit, "c".repeat(40));
  assert.equal(q.record.revision, "v1.0");
  assert.ok(!fs.existsSync(path.join(out, "model.safetensors")));
  assert.ok(fs.existsSync(path.join(out, "model-00002-of-00002.safetensors")));
  assert.deepEqual(q.fetched.includes("config.json"), false, "config.json was already in place");
  // Another repository is not pulled over it.
  await assert.rejects(pullModel({ repo: "org/sharded", out, quiet: true, io }), /holds another pulled model \(org\/single\); it is not replaced by org\/sharded/);
});

test("an interrupted download fails with a resume hint; the next run resumes from the CDN with Range", async () => {
  hub.interruptOnce.add("org/sharded/model-00001-of-00002.safetensors");
  const first = await bdc({}, "models", "pull", "org/sharded", "--out", "resume");
  assert.equal(first.code, 1);
  assert.match(first.err, /downloading model-00001-of-00002\.safetensors: the connection was lost after .* \[BDC_DOWNLOAD_FAILED\]\n {2}hint: run the same command again: it resumes from model-00001-of-00002\.safetensors\.part/);
  const dir = path.join(project, "resume");
  const part = fs.statSync(path.join(dir, "model-00001-of-00002.safetensors.part")).size;
  assert.ok(part > 0 && part < shard1.length);
  assert.ok(!fs.existsSync(path.join(dir, PULL_RECORD)), "no record for an unfinished pull");
  assert.throws(
    () => resolveModelDir("org/sharded", project, path.dirname(path.dirname(dir))),
    (e: BdcError) => e.code === "BDC_MODEL_NOT_FOUND",
  );

  hub.log.length = 0;
  const second = await bdc({}, "models", "pull", "org/sharded", "--out", "resume");
  assert.equal(second.code, 0, second.err);
  assert.match(second.err, /model-00001-of-00002\.safetensors: resuming at/);
  const ranged = hub.log.filter((l) => l.range !== undefined);
  assert.deepEqual(ranged.map((l) => [l.server, l.range]), [
    ["hub", `bytes=${part}-`],
    ["cdn", `bytes=${part}-`],
  ]);
  assert.ok(fs.readFileSync(path.join(dir, "model-00001-of-00002.safetensors")).equals(shard1));
  assert.ok(!fs.existsSync(path.join(dir, "model-00001-of-00002.safetensors.part")));
  assert.ok(fs.existsSync(path.join(dir, PULL_RECORD)));
});

test("a checksum mismatch is an error, and the bad file is not kept in place", async () => {
  const r = await bdc({}, "models", "pull", "org/corrupt", "--out", "corrupt");
  assert.equal(r.code, 1);
  assert.match(r.err, /downloading model\.safetensors: the file does not match the hub's checksum \(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\); the partial file was removed {2}\[BDC_DOWNLOAD_CHECKSUM\]\n {2}hint: run the command again/);
  // Files are fetched in name order and the first failure stops the pull.
  assert.deepEqual(fs.readdirSync(path.join(project, "corrupt")).sort(), ["config.json"]);
});

test("a repository without safetensors weights is BDC_MODEL_UNSUPPORTED, naming what it has; nothing is downloaded", async () => {
  const r = await bdc({}, "models", "pull", "org/pickle", "--out", "pickle");
  assert.equal(r.code, 1);
  assert.match(r.err, /^org\/pickle@main: only safetensors checkpoints are supported; this repository has original\/consolidated\.00\.pth, pytorch_model\.bin {2}\[BDC_MODEL_UNSUPPORTED\]\n {2}hint: .*--revision refs\/pr\/N.*safe_serialization=True/);
  assert.deepEqual(gets(), []);
  assert.ok(!fs.existsSync(path.join(project, "pickle")));
  const o = await bdc({}, "models", "pull", "org/odd", "--out", "odd");
  assert.equal(o.code, 1);
  assert.match(o.err, /only safetensors checkpoints in the transformers layout \(model\.safetensors, or model\.safetensors\.index\.json and its shards\) are supported; this repository has consolidated\.safetensors/);
});

test("HTTP 401 (unknown or private repository) and 404 (unknown revision) say what to do", async () => {
  const missing = await bdc({}, "models", "pull", "org/nope");
  assert.equal(missing.code, 1);
  assert.match(missing.err, /^listing org\/nope@main: access denied \(HTTP 401\) at http:\/\/127\.0\.0\.1:\d+\/api\/models\/org\/nope\/tree\/main\?recursive=true: Repository not found {2}\[BDC_DOWNLOAD_FAILED\]\n {2}hint: set HF_TOKEN to a Hugging Face access token \(the model may be gated or private, or the repository id wrong/);
  const rev = await bdc({}, "models", "pull", "org/sharded", "--revision", "v9");
  assert.equal(rev.code, 1);
  assert.match(rev.err, /^listing org\/sharded@v9: not found \(HTTP 404\) at .*\/tree\/v9\?recursive=true: Invalid rev id: v9 {2}\[BDC_DOWNLOAD_FAILED\]\n {2}hint: check the repository id \(org\/name\) and --revision/);
  hub.token = "s3cret";
  const wrong = await bdc({ HF_TOKEN: "nope" }, "models", "pull", "org/sharded");
  assert.match(wrong.err, /access denied \(HTTP 401\).*\n {2}hint: HF_TOKEN was sent but does not grant access: check the token, and accept the model's terms/);
  assert.ok(!fs.existsSync(path.join(models, "org", "nope")));
});

test("--onnx: the ONNX file with its external data and the sentence-transformers files, nothing else; encoder/onnx loads it by id", async () => {
  const r = await bdc({}, "models", "pull", "org/minilm", "--onnx", "-q");
  assert.equal(r.code, 0, r.err);
  const dir = path.join(models, "org", "minilm");
  assert.deepEqual(gets().sort(), ["1_Pooling/config.json", "config.json", "config_sentence_transformers.json", "modules.json", "onnx/model.onnx", "onnx/model.onnx.data", "sentence_bert_config.json", "tokenizer.json", "tokenizer_config.json"]);
  assert.ok(fs.readFileSync(path.join(dir, "onnx", "model.onnx.data")).equals(fs.readFileSync(path.join(sentenceDir, "onnx", "model.onnx.data"))));
  // Plugins find pulled models through the process's BDC_MODELS_DIR.
  const saved = process.env.BDC_MODELS_DIR;
  process.env.BDC_MODELS_DIR = models;
  const enc = await new PluginTester(encoderOnnx).make<Encoder & { close(): Promise<void> }>({ model: "org/minilm", threads: 1 }, {}, { instance: "code", baseDir: project });
  try {
    const [a, b] = await enc.embed(["binary search over the answer", "binary search over the answer"]);
    assert.equal(enc.dimension, 8);
    assert.deepEqual(Array.from(a!), Array.from(b!));
  } finally {
    await enc.close();
    if (saved === undefined) delete process.env.BDC_MODELS_DIR;
    else process.env.BDC_MODELS_DIR = saved;
  }

  // --onnx-file picks another file; the one of the previous pull goes.
  const q = await bdc({}, "models", "pull", "org/minilm", "--onnx-file", "onnx/model_quantized.onnx", "-q");
  assert.equal(q.code, 0, q.err);
  assert.ok(fs.existsSync(path.join(dir, "onnx", "model_quantized.onnx")));
  assert.ok(!fs.existsSync(path.join(dir, "onnx", "model.onnx")));
  assert.deepEqual(readPullRecord(dir)!.files.map((f) => f.path).filter((f) => f.startsWith("onnx/")), ["onnx/model_quantized.onnx"]);

  // A file the repository lacks: its ONNX files are named.
  const missing = await bdc({}, "models", "pull", "org/minilm", "--onnx-file", "onnx/model_fp16.onnx");
  assert.equal(missing.code, 1);
  assert.match(missing.err, /org\/minilm@main: no onnx\/model_fp16\.onnx; its ONNX files are onnx\/model\.onnx, onnx\/model_quantized\.onnx {2}\[BDC_MODEL_UNSUPPORTED\]\n {2}hint: name one with --onnx-file onnx\/model\.onnx/);
  const none = await bdc({}, "models", "pull", "org/single", "--onnx", "--out", "single-onnx");
  assert.match(none.err, /org\/single@main: no onnx\/model\.onnx or model\.onnx; it has no ONNX file .*\n {2}hint: .*optimum-cli export onnx --model org\/single --task feature-extraction/);
});

test("usage errors exit 2", async () => {
  const bad = await bdc({}, "models", "pull", "not-a-repo-id");
  assert.equal(bad.code, 2);
  assert.match(bad.err, /"not-a-repo-id" is not a Hugging Face repository id {2}\[BDC_USAGE\]\n {2}hint: give it as org\/name/);
  assert.equal((await bdc({}, "models", "pull")).code, 2);
  assert.match((await bdc({}, "models", "pul", "org/x")).err, /unknown subcommand "pul".*\n {2}hint: did you mean "pull"\?/);
  assert.match((await bdc({}, "models", "pull", "org/x", "--layers", "2")).err, /bdc models pull: --layers does not apply to pull/);
  assert.match((await bdc({}, "models", "--help")).out, /Usage: bdc models pull <org\/name>/);
});

test("modelsDir: BDC_MODELS_DIR (relative to cwd), else <project root>/.cache/bdc/models", () => {
  assert.equal(modelsDir({ BDC_MODELS_DIR: "x/y" }, project), path.join(project, "x", "y"));
  assert.equal(modelsDir({}, path.join(project, "resume")), path.join(project, ".cache", "bdc", "models"));
});

test("resolveModelDir: a folder with config.json as it is, a pulled id, else BDC_MODEL_NOT_FOUND with the command that gets it", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-resolve-"));
  try {
    const local = path.join(root, "work", "tiny");
    fs.mkdirSync(local, { recursive: true });
    fs.writeFileSync(path.join(local, "config.json"), "{}");
    assert.equal(resolveModelDir(local, "/elsewhere", root), local);
    assert.equal(resolveModelDir("tiny", path.join(root, "work"), root), local);
    assert.equal(resolveModelDir("work/tiny", root, path.join(root, "none")), local, "a relative folder wins over a hub id");

    const pulled = path.join(root, "models", "org", "name");
    fs.mkdirSync(pulled, { recursive: true });
    fs.writeFileSync(path.join(pulled, "config.json"), "{}");
    fs.writeFileSync(path.join(pulled, PULL_RECORD), JSON.stringify({ repo: "org/name", revision: "main", commit: null, endpoint: "x", pulledAt: "", files: [] }));
    assert.equal(resolveModelDir("org/name", path.join(root, "work"), path.join(root, "models")), pulled);

    const err = (spec: string) => {
      try {
        resolveModelDir(spec, path.join(root, "work"), path.join(root, "models"));
      } catch (e) {
        return e as BdcError;
      }
      assert.fail(`${spec} resolved`);
    };
    const notPulled = err("org/other");
    assert.equal(notPulled.code, "BDC_MODEL_NOT_FOUND");
    assert.match(notPulled.message, /^model org\/other: not pulled \(no .*org[/\\]other\)$/);
    assert.equal(notPulled.hint, "pnpm bdc models pull org/other");
    const noDir = err("./missing");
    assert.match(noDir.message, /missing does not exist$/);
    assert.match(noDir.hint!, /pnpm bdc models make-tiny --out \.\/missing/);
    fs.mkdirSync(path.join(root, "work", "empty"));
    assert.match(err("empty").message, /empty has no config\.json, so it is not a checkpoint folder$/);
    // Interrupted: .part files and no record.
    fs.rmSync(path.join(pulled, PULL_RECORD));
    fs.writeFileSync(path.join(pulled, "model.safetensors.part"), "x");
    const partial = err("org/name");
    assert.match(partial.message, /the pull into .* did not finish$/);
    assert.equal(partial.hint, "pnpm bdc models pull org/name (it resumes)");
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
