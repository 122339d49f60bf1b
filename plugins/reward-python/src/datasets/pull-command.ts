/**
 * `bdc data pull apps|codecontests [--out DIR] [--revision R] [--split S]...`: downloads the
 * real dataset files from the Hugging Face hub.
 *
 * - endpoint: env HF_ENDPOINT (default https://huggingface.co); env HF_TOKEN is sent as a bearer
 *   token when set (gated or private mirrors);
 * - files are listed with `GET {endpoint}/api/datasets/{repo}/tree/{revision}/{folder}` (paged by
 *   the Link header) and fetched from `{endpoint}/datasets/{repo}/resolve/{revision}/{file}`;
 * - each file is written to `<file>.part` first; a second run resumes it with an HTTP Range
 *   request; it is renamed into place only after its size and checksum are verified (sha256 =
 *   `lfs.oid` for LFS files, else the git blob sha1 `oid`); files already complete and verified
 *   are not fetched again;
 * - progress goes to stderr (a bar on a terminal, a few plain lines otherwise), the summary to
 *   stdout; failures are BdcErrors (BDC_DOWNLOAD_FAILED, BDC_DOWNLOAD_CHECKSUM) saying what to do,
 *   exit code 1.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError, type CliCommand, type Io, type ParsedArgs } from "@bdc/core";

export interface HubDataset {
  readonly repo: string;
  /** The folder of the repository to list ("" for the root). */
  readonly folder: string;
  /** Which listed files to fetch. */
  select(file: string): boolean;
  /** The plugin that reads the files, for the closing hint. */
  readonly plugin: string;
}

export const HUB_DATASETS: Readonly<Record<string, HubDataset>> = {
  apps: { repo: "codeparrot/apps", folder: "", select: (f) => f === "train.jsonl" || f === "test.jsonl", plugin: "dataset/apps" },
  codecontests: { repo: "deepmind/code_contests", folder: "data", select: (f) => /^data\/[^/]+\.parquet$/.test(f), plugin: "dataset/codecontests" },
};

/** An entry of the hub's tree API. */
export interface TreeEntry {
  readonly type: string;
  readonly path: string;
  readonly size: number;
  readonly oid?: string;
  readonly lfs?: { readonly oid: string; readonly size: number };
}

const DEFAULT_ENDPOINT = "https://huggingface.co";
const STALL_MS = 60_000;

const spec = {
  name: "data",
  summary: "Download datasets from the Hugging Face hub (bdc data pull apps|codecontests)",
  usage: "bdc data pull <apps|codecontests> [--out DIR] [--revision R] [--split NAME]...",
  minPositionals: 2,
  maxPositionals: 2,
  details: [
    "Datasets: apps = codeparrot/apps (train.jsonl, test.jsonl); codecontests = deepmind/code_contests (data/*.parquet).",
    "Environment: HF_ENDPOINT (default https://huggingface.co, or a mirror), HF_TOKEN (sent as a bearer token).",
    "An interrupted download resumes when the command is run again; every file is checked against the hub's checksum.",
  ].join("\n"),
  flags: {
    out: { type: "string", value: "DIR", description: "where to write the files (default: data/<dataset>)" },
    revision: { type: "string", value: "R", description: "branch, tag or commit of the dataset repository (default: main)" },
    split: { type: "string", value: "NAME", multiple: true, description: "only the files of this split (train, test, valid, ...)" },
    quiet: { type: "boolean", short: "q", description: "no progress output" },
  },
} as const;

const fail = (message: string, hint: string, cause?: unknown) => new BdcError({ code: "BDC_DOWNLOAD_FAILED", message, hint, ...(cause === undefined ? {} : { cause }) });

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** What went wrong with a request, in words, with what to do. */
function httpError(status: number, url: string, what: string, hasToken: boolean): BdcError {
  if (status === 401 || status === 403) {
    return fail(
      `${what}: access denied (HTTP ${status}) at ${url}`,
      hasToken ? "HF_TOKEN was sent but does not grant access: check the token, and accept the dataset's terms on the hub if it is gated" : "set HF_TOKEN to a Hugging Face access token (the dataset may be gated, or the repository name wrong)",
    );
  }
  if (status === 404) return fail(`${what}: not found (HTTP 404) at ${url}`, "check the dataset and --revision (a branch, tag or commit of the repository), and HF_ENDPOINT if you use a mirror");
  if (status === 429) return fail(`${what}: rate limited (HTTP 429) at ${url}`, "wait a while and run the command again (set HF_TOKEN for higher limits); finished files are kept");
  return fail(`${what}: HTTP ${status} at ${url}`, "run the command again later; finished files are kept and a partial file resumes");
}

function networkError(endpoint: string, what: string, cause: unknown): BdcError {
  const c = (cause as { cause?: { code?: string; message?: string } }).cause;
  const reason = c?.code ?? c?.message ?? (cause as Error).message;
  return fail(`${what}: cannot reach ${endpoint} (${reason})`, "check the network connection, or set HF_ENDPOINT to a reachable mirror; finished files are kept and a partial file resumes", cause);
}

export class HubClient {
  constructor(
    readonly endpoint: string,
    private readonly token: string | undefined,
  ) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { "user-agent": "bdc-data-pull", ...(this.token === undefined ? {} : { authorization: `Bearer ${this.token}` }), ...extra };
  }

  async request(url: string, what: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await fetch(url, { ...init, headers: this.headers(init.headers as Record<string, string> | undefined) });
    } catch (cause) {
      if ((cause as Error).name === "AbortError") throw fail(`${what}: the connection stalled`, "run the command again: the download resumes where it stopped", cause);
      throw networkError(this.endpoint, what, cause);
    }
  }

  /** Every entry of a folder of a dataset repository (the tree API is paged by `Link: <...>; rel="next"`). */
  async tree(repo: string, revision: string, folder: string): Promise<TreeEntry[]> {
    let url: string | undefined = `${this.endpoint}/api/datasets/${repo}/tree/${encodeURIComponent(revision)}${folder === "" ? "" : `/${encodePath(folder)}`}`;
    const out: TreeEntry[] = [];
    const what = `listing ${repo}@${revision}${folder === "" ? "" : `/${folder}`}`;
    while (url !== undefined) {
      const res = await this.request(url, what);
      if (!res.ok) throw httpError(res.status, url, what, this.token !== undefined);
      let page: unknown;
      try {
        page = await res.json();
      } catch (cause) {
        throw fail(`${what}: the hub's answer is not JSON (${url})`, "check HF_ENDPOINT: it must be a Hugging Face hub or mirror", cause);
      }
      if (!Array.isArray(page)) throw fail(`${what}: unexpected answer from ${url}`, "check HF_ENDPOINT: it must be a Hugging Face hub or mirror");
      out.push(...(page as TreeEntry[]));
      url = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get("link") ?? "")?.[1];
    }
    return out;
  }

  resolveUrl(repo: string, revision: string, file: string): string {
    return `${this.endpoint}/datasets/${repo}/resolve/${encodeURIComponent(revision)}/${encodePath(file)}`;
  }
}

const encodePath = (p: string) => p.split("/").map(encodeURIComponent).join("/");

/** sha256 of a file, or the git blob sha1 (`sha1("blob <size>\0" + content)`). */
export async function fileDigest(file: string, kind: "sha256" | "git-sha1"): Promise<string> {
  const hash = crypto.createHash(kind === "sha256" ? "sha256" : "sha1");
  if (kind === "git-sha1") hash.update(`blob ${fs.statSync(file).size}\0`);
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

interface Expected {
  readonly size: number;
  readonly digest?: { readonly kind: "sha256" | "git-sha1"; readonly value: string };
}

function expectedOf(e: TreeEntry): Expected {
  const size = e.lfs?.size ?? e.size;
  if (e.lfs?.oid !== undefined) return { size, digest: { kind: "sha256", value: e.lfs.oid.replace(/^sha256:/, "").toLowerCase() } };
  if (e.oid !== undefined && /^[0-9a-f]{40}$/i.test(e.oid)) return { size, digest: { kind: "git-sha1", value: e.oid.toLowerCase() } };
  return { size };
}

async function verified(file: string, exp: Expected): Promise<{ ok: true } | { ok: false; why: string }> {
  const size = fs.statSync(file).size;
  if (size !== exp.size) return { ok: false, why: `size ${size} bytes, expected ${exp.size}` };
  if (exp.digest === undefined) return { ok: true };
  const got = await fileDigest(file, exp.digest.kind);
  return got === exp.digest.value ? { ok: true } : { ok: false, why: `${exp.digest.kind} ${got}, expected ${exp.digest.value}` };
}

/** Progress on stderr: a redrawn bar on a terminal, a line per quarter otherwise. */
class Progress {
  private last = 0;
  private quarter = 0;
  private readonly start = Date.now();

  constructor(
    private readonly io: Io,
    private readonly name: string,
    private readonly total: number,
    private readonly quiet: boolean,
  ) {}

  update(done: number, final = false): void {
    if (this.quiet) return;
    const now = Date.now();
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1;
    if (this.io.isTTY) {
      if (!final && now - this.last < 100) return;
      this.last = now;
      const width = 24;
      const filled = Math.round(frac * width);
      const rate = done / Math.max(0.001, (now - this.start) / 1000);
      this.io.err(`\r${this.name}  [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${formatBytes(done)} / ${formatBytes(this.total)}  ${formatBytes(rate)}/s\x1b[K${final ? "\n" : ""}`);
    } else {
      const q = Math.floor(frac * 4);
      if (q > this.quarter && q < 4) {
        this.quarter = q;
        this.io.err(`  ${this.name}: ${q * 25}% (${formatBytes(done)} / ${formatBytes(this.total)})\n`);
      }
      if (final) this.io.err(`  ${this.name}: done (${formatBytes(this.total)} in ${((now - this.start) / 1000).toFixed(1)} s)\n`);
    }
  }
}

export interface PullOptions {
  readonly dataset: string;
  readonly out: string;
  readonly revision: string;
  readonly splits: ReadonlyArray<string>;
  readonly quiet: boolean;
}

/** Downloads (or resumes, or confirms) every selected file; returns the local paths. */
export async function pull(io: Io, o: PullOptions): Promise<string[]> {
  const ds = HUB_DATASETS[o.dataset]!;
  const client = new HubClient((io.env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, ""), io.env.HF_TOKEN || undefined);
  const listed = await client.tree(ds.repo, o.revision, ds.folder);
  const files = listed
    .filter((e) => e.type === "file" && ds.select(e.path))
    .filter((e) => o.splits.length === 0 || o.splits.some((s) => new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}([-_.]|$)`).test(path.posix.basename(e.path))))
    .sort((a, b) => a.path.localeCompare(b.path));
  if (files.length === 0) {
    throw fail(
      `no ${o.splits.length > 0 ? `${o.splits.join("/")} ` : ""}files to download in ${ds.repo}@${o.revision}${ds.folder === "" ? "" : `/${ds.folder}`}`,
      o.splits.length > 0 ? `the files listed there are: ${listed.map((e) => e.path).join(", ") || "(none)"}` : "check --revision and HF_ENDPOINT",
    );
  }
  fs.mkdirSync(o.out, { recursive: true });
  const total = files.reduce((n, e) => n + expectedOf(e).size, 0);
  if (!o.quiet) io.err(`${ds.repo}@${o.revision}: ${files.length} file(s), ${formatBytes(total)} -> ${o.out}\n`);
  const done: string[] = [];
  for (const e of files) done.push(await pullFile(io, client, ds, o, e));
  return done;
}

async function pullFile(io: Io, client: HubClient, ds: HubDataset, o: PullOptions, e: TreeEntry): Promise<string> {
  const name = path.posix.basename(e.path);
  const dest = path.join(o.out, name);
  const part = `${dest}.part`;
  const exp = expectedOf(e);
  if (fs.existsSync(dest)) {
    const v = await verified(dest, exp);
    if (v.ok) {
      if (!o.quiet) io.err(`  ${name}: up to date\n`);
      return dest;
    }
    if (!o.quiet) io.err(`  ${name}: the existing file differs from the hub (${v.why}); downloading it again\n`);
  }
  const url = client.resolveUrl(ds.repo, o.revision, e.path);
  const what = `downloading ${name}`;
  let have = fs.existsSync(part) ? fs.statSync(part).size : 0;
  if (have > exp.size) {
    fs.rmSync(part);
    have = 0;
  }
  const progress = new Progress(io, name, exp.size, o.quiet);
  if (have < exp.size || exp.size === 0) {
    if (have > 0 && !o.quiet) io.err(`  ${name}: resuming at ${formatBytes(have)} of ${formatBytes(exp.size)}\n`);
    const stall = new AbortController();
    let timer = setTimeout(() => stall.abort(), STALL_MS);
    const alive = () => {
      clearTimeout(timer);
      timer = setTimeout(() => stall.abort(), STALL_MS);
    };
    try {
      let res = await client.request(url, what, { headers: have > 0 ? { range: `bytes=${have}-` } : {}, signal: stall.signal });
      if (res.status === 416) {
        // The server has no bytes past ours: start over.
        await res.body?.cancel();
        fs.rmSync(part, { force: true });
        have = 0;
        res = await client.request(url, what, { signal: stall.signal });
      }
      if (!res.ok) throw httpError(res.status, url, what, client.headers().authorization !== undefined);
      if (res.status === 206) {
        const start = Number(/^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "")?.[1] ?? Number.NaN);
        if (start !== have) {
          await res.body?.cancel();
          fs.rmSync(part, { force: true });
          throw fail(`${what}: the server resumed at the wrong offset`, "run the command again: the file is downloaded from the start");
        }
      } else have = 0; // the server sent the whole file
      const sink = fs.createWriteStream(part, { flags: have > 0 ? "a" : "w" });
      let got = have;
      try {
        if (res.body === null) throw new Error("empty body");
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          alive();
          if (!sink.write(chunk)) await new Promise<void>((r) => sink.once("drain", () => r()));
          got += chunk.length;
          progress.update(got);
        }
      } catch (cause) {
        await new Promise<void>((r) => sink.end(() => r()));
        const stalled = stall.signal.aborted;
        throw fail(
          `${what}: ${stalled ? "the connection stalled" : "the connection was lost"} after ${formatBytes(got)} of ${formatBytes(exp.size)}`,
          `run the same command again: it resumes from ${path.basename(part)}`,
          cause,
        );
      }
      await new Promise<void>((resolve, reject) => sink.end((err?: Error | null) => (err ? reject(err) : resolve())));
    } finally {
      clearTimeout(timer);
    }
  }
  const size = fs.statSync(part).size;
  if (size < exp.size) throw fail(`${what}: the server sent ${formatBytes(size)} of ${formatBytes(exp.size)}`, `run the same command again: it resumes from ${path.basename(part)}`);
  const v = await verified(part, exp);
  if (!v.ok) {
    fs.rmSync(part, { force: true });
    throw new BdcError({
      code: "BDC_DOWNLOAD_CHECKSUM",
      message: `${what}: the file does not match the hub's checksum (${v.why}); the partial file was removed`,
      hint: "run the command again to download it afresh; if it happens again, the server (HF_ENDPOINT) serves different content than it lists",
    });
  }
  fs.renameSync(part, dest);
  progress.update(exp.size, true);
  return dest;
}

async function run(io: Io, args: ParsedArgs): Promise<number> {
  const [sub, dataset] = args.positionals as [string, string];
  if (sub !== "pull") throw new BdcError({ code: "BDC_USAGE", message: `bdc data: unknown subcommand "${sub}"`, hint: `usage: ${spec.usage}` });
  if (!(dataset in HUB_DATASETS)) {
    throw new BdcError({ code: "BDC_USAGE", message: `bdc data pull: unknown dataset "${dataset}"`, hint: `datasets: ${Object.keys(HUB_DATASETS).join(", ")}` });
  }
  const flags = args.flags;
  const out = path.resolve(io.cwd, typeof flags.out === "string" ? flags.out : path.join("data", dataset));
  const files = await pull(io, {
    dataset,
    out,
    revision: typeof flags.revision === "string" ? flags.revision : "main",
    splits: Array.isArray(flags.split) ? flags.split : [],
    quiet: flags.quiet === true,
  });
  const ds = HUB_DATASETS[dataset]!;
  const example = files.find((f) => /(^|[/\\])test[-_.]/.test(f)) ?? files[0]!;
  io.out(`${files.map((f) => `${f}\n`).join("")}use one in a workflow: { use: ${ds.plugin}, with: { path: ${path.relative(io.cwd, example) || example} } }\n`);
  return 0;
}

const command: CliCommand = { spec, run };
export default command;
