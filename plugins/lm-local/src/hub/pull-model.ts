/**
 * Model checkpoints from the Hugging Face hub: `pullModel` downloads the files a Llama-family
 * checkpoint is loaded from (safetensors weights only), `resolveModelDir` turns what a user
 * wrote (a folder, or a hub id that was pulled) into a checkpoint folder.
 *
 * Where pulled models live: `modelsDir()` = env BDC_MODELS_DIR, else
 * `<project root>/.cache/bdc/models`; a pull of `org/name` goes to `<modelsDir>/org/name` and,
 * once every file is in place and verified, writes `.bdc-pull.json` there (repo, revision asked
 * for, the commit the hub resolved it to, the files with sizes and checksums).
 *
 * What is fetched (files at the root of the repository only; `original/` and other folders,
 * PyTorch `*.bin`/`*.pt`/`*.pth`, GGUF, TF and Flax weights never are, ONNX only with `onnx`):
 * - config.json, generation_config.json, tokenizer.json, tokenizer_config.json,
 *   special_tokens_map.json, chat_template.jinja / chat_template.json (newer repositories keep
 *   the chat template there), README.md, LICENSE*;
 * - the weights as transformers reads them: `model.safetensors` when the repository has it, else
 *   `model.safetensors.index.json` and exactly the shards its weight_map names (so a Mistral
 *   repository's extra `consolidated.safetensors` is not downloaded twice over).
 * A repository without safetensors weights is BDC_MODEL_UNSUPPORTED, naming the weights it has.
 *
 * With `onnx` (a sentence-embedding model for encoder/onnx), the weights are one ONNX file
 * instead: `onnx/model.onnx` (else `model.onnx`, or the file asked for, e.g.
 * onnx/model_quantized.onnx) with its external data beside it (`<file>_data*`, `<file>.data`),
 * plus the sentence-transformers files: modules.json, sentence_bert_config.json,
 * config_sentence_transformers.json, 1_Pooling/config.json.
 *
 * The revision is first resolved to a commit (`X-Repo-Commit` of a HEAD on config.json), and the
 * listing and every file are taken at that commit. Pulling again into the same folder fetches
 * only what changed and removes the files of the previous pull that the new one lacks; a folder
 * that holds another repository's pull is refused.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError, findProjectRoot, type Io } from "@bdc/core";
import { DEFAULT_ONNX_FILES, isExternalDataOf, SENTENCE_FILES } from "../model/sentence-layout.ts";
import { downloadFailed, downloadFiles, formatBytes, httpError, HubClient, type HubRepo, type TreeEntry } from "@bdc/hf-hub";

/** The record a finished pull leaves in the model's folder. */
export const PULL_RECORD = ".bdc-pull.json";

export const SINGLE_WEIGHTS = "model.safetensors";
export const WEIGHTS_INDEX = "model.safetensors.index.json";

/** Small files fetched when the repository has them. */
const SIDE_FILES = new Set([
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "chat_template.jinja",
  "chat_template.json",
  "README.md",
]);

/** Files that hold weights in some format (for the error that names what a repository has). */
const WEIGHT_FILE = /\.(safetensors|bin|pt|pth|ckpt|gguf|ggml|onnx|onnx_data|h5|msgpack|npz|mlmodel|tflite)$/i;

export interface PullModelOptions {
  /** A hub repository id, `org/name`. */
  readonly repo: string;
  /** Branch, tag or commit (default "main"). */
  readonly revision?: string;
  /** The folder to write (default `modelsDir()/org/name`). */
  readonly out?: string;
  readonly quiet?: boolean;
  /** Fetch ONNX weights (true: onnx/model.onnx, else model.onnx; a string: that file) and the sentence-transformers files, not safetensors. */
  readonly onnx?: boolean | string;
  readonly io: Io;
}

export interface PullRecordFile {
  readonly path: string;
  readonly size: number;
  readonly sha256?: string;
  /** The git blob sha1, for files not stored with LFS. */
  readonly gitSha1?: string;
}

/** The content of `.bdc-pull.json`. */
export interface PullRecord {
  readonly repo: string;
  /** The revision asked for. */
  readonly revision: string;
  /** The commit the hub resolved it to (`X-Repo-Commit`); null when the endpoint did not say. */
  readonly commit: string | null;
  readonly endpoint: string;
  /** ISO time the pull finished. */
  readonly pulledAt: string;
  readonly files: ReadonlyArray<PullRecordFile>;
}

export interface PulledModel {
  readonly dir: string;
  readonly record: PullRecord;
  /** Files fetched in this run (the others were already in place and verified). */
  readonly fetched: ReadonlyArray<string>;
}

/** env BDC_MODELS_DIR (relative to `cwd`), else `<project root>/.cache/bdc/models`. */
export function modelsDir(env: Io["env"] = process.env, cwd: string = process.cwd()): string {
  const dir = env.BDC_MODELS_DIR;
  if (dir !== undefined && dir !== "") return path.resolve(cwd, dir);
  return path.join(findProjectRoot(cwd), ".cache", "bdc", "models");
}

const HUB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Whether `spec` has the shape of a hub repository id (`org/name`). */
export function isHubId(spec: string): boolean {
  return HUB_ID.test(spec) && !spec.includes("..");
}

/** `org/name` from an id or a hub URL (`https://huggingface.co/org/name`); BDC_USAGE otherwise. */
export function parseRepoId(spec: string): string {
  const id = spec.replace(/^https?:\/\/(www\.)?(huggingface\.co|hf\.co)\//, "").replace(/\/+$/, "");
  if (!isHubId(id)) {
    throw new BdcError({
      code: "BDC_USAGE",
      message: `"${spec}" is not a Hugging Face repository id`,
      hint: "give it as org/name, e.g. Qwen/Qwen2.5-0.5B-Instruct (a model without an org, like gpt2, has one now: openai-community/gpt2)",
    });
  }
  return id;
}

/** Reads `<dir>/.bdc-pull.json`; undefined when there is none (or it is not one). */
export function readPullRecord(dir: string): PullRecord | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(path.join(dir, PULL_RECORD), "utf8")) as PullRecord;
    return typeof r === "object" && r !== null && typeof r.repo === "string" && Array.isArray(r.files) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** A relative path inside the repository: no "..", no backslash, not absolute. */
const isSafePath = (p: string) => p !== "" && !p.startsWith("/") && !p.includes("\\") && p.split("/").every((part) => part !== "" && part !== "." && part !== "..");

/** A file at the root of the repository (and a plain name: no "..", no backslash). */
const isRoot = (p: string) => p !== "" && p !== "." && p !== ".." && !p.includes("/") && !p.includes("\\");

/** The files of a listing to fetch (everything but the weights, which `pullModel` picks). */
export function selectSideFiles(files: ReadonlyArray<TreeEntry>): TreeEntry[] {
  return files.filter((e) => e.type === "file" && isRoot(e.path) && (SIDE_FILES.has(e.path) || /^LICEN[SC]E/i.test(e.path)));
}

function unsupported(repo: string, revision: string, files: ReadonlyArray<TreeEntry>, why: string): BdcError {
  const weights = files.filter((e) => e.type === "file" && WEIGHT_FILE.test(e.path)).map((e) => e.path);
  const has = weights.length > 0 ? weights : files.filter((e) => e.type === "file").map((e) => e.path);
  const shown = has.slice(0, 12).join(", ") + (has.length > 12 ? `, ... (${has.length} files)` : "");
  return new BdcError({
    code: "BDC_MODEL_UNSUPPORTED",
    message: `${repo}@${revision}: ${why}; this repository has ${shown || "no files"}`,
    hint:
      "pick a repository (or revision) with safetensors weights: many repositories have a pull request \"Adding `safetensors` variant\" " +
      "(pull it with --revision refs/pr/N), or convert the weights with transformers: model.save_pretrained(dir, safe_serialization=True)",
  });
}

/** Downloads (or resumes, or confirms) a model checkpoint; see the module comment. */
export async function pullModel(o: PullModelOptions): Promise<PulledModel> {
  const { io } = o;
  const id = parseRepoId(o.repo);
  const revision = o.revision ?? "main";
  const quiet = o.quiet === true;
  const out = o.out ?? path.join(modelsDir(io.env, io.cwd), ...id.split("/"));
  const before = readPullRecord(out);
  if (before !== undefined && before.repo !== id) {
    throw new BdcError({ code: "BDC_USAGE", message: `${out} holds another pulled model (${before.repo}); it is not replaced by ${id}`, hint: "choose another --out folder, or remove that one first" });
  }
  const client = HubClient.fromEnv(io.env, { userAgent: "bdc-models-pull" });
  const repo: HubRepo = { type: "model", id };

  // The commit first, so that the listing and every file come from one snapshot even if the
  // branch moves meanwhile; an endpoint that does not say is listed at the revision itself.
  const commit = await client.commitOf(repo, revision, "config.json").catch(() => undefined);
  const listed = await client.tree(repo, commit ?? revision, "", { recursive: true });
  const files = listed.filter((e) => e.type === "file");
  const byPath = new Map(files.map((e) => [e.path, e]));

  const weights = o.onnx === undefined || o.onnx === false ? await safetensorsWeights(client, repo, id, revision, commit, files, byPath) : onnxWeights(id, revision, files, o.onnx);
  const side = [...selectSideFiles(files), ...(o.onnx === undefined || o.onnx === false ? [] : files.filter((e) => SENTENCE_FILES.has(e.path)))];
  if (!side.some((e) => e.path === "config.json")) throw unsupported(id, revision, files, "the repository has no config.json, so it is not a transformers checkpoint");
  if (!side.some((e) => e.path === "tokenizer.json")) {
    io.err(`warning: ${id}@${revision} has no tokenizer.json (the fast tokenizer file); the checkpoint's weights load, but text cannot be tokenized with it\n`);
  }
  const selected = [...side, ...weights].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  // A folder pulled before at another revision: the files it had that this one does not are removed.
  fs.mkdirSync(out, { recursive: true });
  fs.rmSync(path.join(out, PULL_RECORD), { force: true });
  if (before !== undefined) {
    const keep = new Set(selected.map((e) => e.path));
    for (const f of before.files) if (isSafePath(f.path) && !keep.has(f.path)) fs.rmSync(path.join(out, ...f.path.split("/")), { force: true });
  }

  const got = await downloadFiles(client, { io, repo, revision, files: selected, out, quiet, commit });
  const record: PullRecord = {
    repo: id,
    revision,
    commit: got.commit ?? null,
    endpoint: client.endpoint,
    pulledAt: new Date().toISOString(),
    files: got.files.map((f) => ({
      path: f.repoPath,
      size: f.size,
      ...(f.digest?.kind === "sha256" ? { sha256: f.digest.value } : f.digest?.kind === "git-sha1" ? { gitSha1: f.digest.value } : {}),
    })),
  };
  const tmp = path.join(out, `${PULL_RECORD}.tmp`);
  fs.writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
  fs.renameSync(tmp, path.join(out, PULL_RECORD));
  if (!quiet) {
    const total = record.files.reduce((n, f) => n + f.size, 0);
    io.err(`${id}@${revision}${record.commit === null ? "" : ` (commit ${record.commit.slice(0, 12)})`}: ${record.files.length} file(s), ${formatBytes(total)} in ${out}\n`);
  }
  return { dir: out, record, fetched: got.files.filter((f) => f.fetched).map((f) => f.repoPath) };
}

/** The safetensors weights as transformers reads them: model.safetensors, else the index and its shards. */
async function safetensorsWeights(client: HubClient, repo: HubRepo, id: string, revision: string, commit: string | undefined, files: ReadonlyArray<TreeEntry>, byPath: ReadonlyMap<string, TreeEntry>): Promise<TreeEntry[]> {
  const single = byPath.get(SINGLE_WEIGHTS);
  const index = byPath.get(WEIGHTS_INDEX);
  if (single !== undefined) return [single];
  if (index !== undefined) {
    const shards = await readRemoteIndex(client, repo, commit ?? revision);
    const missing = shards.filter((s) => !byPath.has(s));
    if (missing.length > 0) {
      throw downloadFailed(`${id}@${revision}: ${WEIGHTS_INDEX} names shards that the repository does not have: ${missing.join(", ")}`, "the repository is broken at this revision; try another --revision");
    }
    return [index, ...shards.map((s) => byPath.get(s)!)];
  }
  const other = files.filter((e) => isRoot(e.path) && e.path.endsWith(".safetensors"));
  throw unsupported(
    id,
    revision,
    files,
    other.length > 0
      ? `only safetensors checkpoints in the transformers layout (${SINGLE_WEIGHTS}, or ${WEIGHTS_INDEX} and its shards) are supported`
      : "only safetensors checkpoints are supported",
  );
}

/** One ONNX file and its external data (`model.onnx_data`, `model.onnx_data_1`, `model.onnx.data`). */
function onnxWeights(id: string, revision: string, files: ReadonlyArray<TreeEntry>, asked: true | string): TreeEntry[] {
  const candidates = asked === true ? DEFAULT_ONNX_FILES : [asked];
  const file = candidates.map((c) => files.find((e) => e.path === c)).find((e) => e !== undefined);
  if (file === undefined) {
    const onnx = files.filter((e) => e.path.endsWith(".onnx")).map((e) => e.path);
    throw new BdcError({
      code: "BDC_MODEL_UNSUPPORTED",
      message: `${id}@${revision}: no ${candidates.join(" or ")}${onnx.length > 0 ? `; its ONNX files are ${onnx.slice(0, 12).join(", ")}${onnx.length > 12 ? ", ..." : ""}` : "; it has no ONNX file"}`,
      hint:
        onnx.length > 0
          ? `name one with --onnx-file ${onnx[0]}`
          : "pick a repository that ships ONNX weights (sentence-transformers repositories with an onnx/ folder, or an onnx-community / Xenova port), or export one with optimum: optimum-cli export onnx --model " + id + " --task feature-extraction DIR",
    });
  }
  const data = files.filter((e) => isExternalDataOf(file.path, e.path));
  return [file, ...data];
}

/** The shard files `model.safetensors.index.json` names, read from the hub. */
async function readRemoteIndex(client: HubClient, repo: HubRepo, revision: string): Promise<string[]> {
  const url = client.resolveUrl(repo, revision, WEIGHTS_INDEX);
  const what = `reading ${WEIGHTS_INDEX}`;
  const { res } = await client.open(url, what);
  if (!res.ok) {
    await res.body?.cancel();
    throw httpError(res.status, url, what, { hasToken: client.hasToken, repoType: "model", hubMessage: res.headers.get("x-error-message") ?? undefined });
  }
  let index: unknown;
  try {
    index = await res.json();
  } catch (cause) {
    throw downloadFailed(`${what}: not JSON (${url})`, "the repository's index is broken at this revision; try another --revision", cause);
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map)) throw downloadFailed(`${what}: it has no "weight_map" object (${url})`, "the repository's index is broken at this revision; try another --revision");
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  const bad = shards.find((s) => typeof s !== "string" || !isRoot(s) || !s.endsWith(".safetensors") || s === "." || s === "..");
  if (bad !== undefined) throw downloadFailed(`${what}: its weight_map names ${JSON.stringify(bad)}, not a .safetensors file beside it (${url})`, "the repository's index is broken at this revision; try another --revision");
  return (shards as string[]).sort();
}

/**
 * The checkpoint folder a model spec names:
 * - a folder (absolute, or relative to `baseDir`) that holds config.json is used as it is;
 * - else a hub id `org/name` is `<modelsDir>/org/name`, when it has been pulled;
 * - else BDC_MODEL_NOT_FOUND, with the command that gets it.
 */
export function resolveModelDir(spec: string, baseDir: string, root: string = modelsDir()): string {
  const asPath = path.resolve(baseDir, spec);
  if (fs.existsSync(path.join(asPath, "config.json"))) return asPath;
  if (!path.isAbsolute(spec) && !spec.startsWith(".") && isHubId(spec)) {
    const dir = path.join(root, ...spec.split("/"));
    const pulled = readPullRecord(dir) !== undefined;
    const hasConfig = fs.existsSync(path.join(dir, "config.json"));
    if (pulled && hasConfig) return dir;
    if (hasConfig && !hasPartFiles(dir)) return dir; // placed there by hand
    throw new BdcError({
      code: "BDC_MODEL_NOT_FOUND",
      message: fs.existsSync(dir)
        ? `model ${spec}: the pull into ${dir} did not finish`
        : `model ${spec}: not pulled (no ${dir}${fs.existsSync(asPath) ? `, and ${asPath} has no config.json` : ""})`,
      hint: `pnpm bdc models pull ${spec}${fs.existsSync(dir) ? " (it resumes)" : ""}`,
    });
  }
  throw new BdcError({
    code: "BDC_MODEL_NOT_FOUND",
    message: fs.existsSync(asPath) ? `model ${spec}: ${asPath} has no config.json, so it is not a checkpoint folder` : `model ${spec}: ${asPath} does not exist`,
    hint: `give the folder of a Hugging Face checkpoint, pull one with \`pnpm bdc models pull org/name\`, or write a random tiny one for tests with \`pnpm bdc models make-tiny --out ${spec}\``,
  });
}

function hasPartFiles(dir: string): boolean {
  try {
    return fs.readdirSync(dir).some((f) => f.endsWith(".part"));
  } catch {
    return false;
  }
}
