/**
 * Resumable, checksum-verified downloads of files listed by the hub's tree API.
 *
 * - each file is written to `<file>.part` first; a second run resumes it with an HTTP Range
 *   request; it is renamed into place only after its size and checksum are verified (sha256 =
 *   `lfs.oid` for LFS files, else the git blob sha1 `oid`); files already complete and verified
 *   are not fetched again, and a file in place that does not match is removed and fetched again;
 * - the commit given, or else the first `X-Repo-Commit` the hub reports, pins the (rest of the)
 *   files to that commit, so that a branch that moves during a download cannot mix two commits;
 * - progress goes to stderr: on a terminal one bar for the whole download (file i of n, bytes of
 *   all files, rate), redrawn in place; otherwise a few plain lines per file;
 * - failures are BdcErrors: BDC_DOWNLOAD_FAILED (HTTP errors, lost or stalled connection: 60 s
 *   without data) and BDC_DOWNLOAD_CHECKSUM, each with a hint.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError, type Io } from "@bdc/core";
import { downloadFailed, formatBytes, httpError, type HubClient, type HubRepo, type TreeEntry } from "./client.ts";

const STALL_MS = 60_000;

export type DigestKind = "sha256" | "git-sha1";

/** sha256 of a file, or the git blob sha1 (`sha1("blob <size>\0" + content)`). */
export async function fileDigest(file: string, kind: DigestKind): Promise<string> {
  const hash = crypto.createHash(kind === "sha256" ? "sha256" : "sha1");
  if (kind === "git-sha1") hash.update(`blob ${fs.statSync(file).size}\0`);
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** What a downloaded file must be: its size, and its checksum when the listing gives one. */
export interface Expected {
  readonly size: number;
  readonly digest?: { readonly kind: DigestKind; readonly value: string };
}

export function expectedOf(e: TreeEntry): Expected {
  const size = e.lfs?.size ?? e.size;
  if (e.lfs?.oid !== undefined) return { size, digest: { kind: "sha256", value: e.lfs.oid.replace(/^sha256:/, "").toLowerCase() } };
  if (e.oid !== undefined && /^[0-9a-f]{40}$/i.test(e.oid)) return { size, digest: { kind: "git-sha1", value: e.oid.toLowerCase() } };
  return { size };
}

export async function verifyFile(file: string, exp: Expected): Promise<{ ok: true } | { ok: false; why: string }> {
  const size = fs.statSync(file).size;
  if (size !== exp.size) return { ok: false, why: `size ${size} bytes, expected ${exp.size}` };
  if (exp.digest === undefined) return { ok: true };
  const got = await fileDigest(file, exp.digest.kind);
  return got === exp.digest.value ? { ok: true } : { ok: false, why: `${exp.digest.kind} ${got}, expected ${exp.digest.value}` };
}

/**
 * The progress of one download of several files, on stderr. On a terminal: one bar, redrawn in
 * place, over the bytes of all files, with messages printed above it. Otherwise: a line per
 * quarter of each file and one when it is done.
 */
export class DownloadProgress {
  private readonly start = Date.now();
  private drawn = false;
  private lastDraw = 0;
  /** Bytes of the files finished or found up to date. */
  private doneBytes = 0;
  /** Bytes fetched in this run (for the rate). */
  private fetched = 0;
  private file: { name: string; index: number; size: number; done: number; base: number; start: number; quarter: number } | undefined;

  constructor(
    private readonly io: Io,
    private readonly quiet: boolean,
    private readonly total: number,
    private readonly count: number,
  ) {}

  /** A message line (above the bar on a terminal). */
  line(text: string): void {
    if (this.quiet) return;
    this.clear();
    this.io.err(`${text}\n`);
    this.draw(true);
  }

  skip(size: number): void {
    this.doneBytes += size;
  }

  begin(name: string, index: number, size: number, have: number): void {
    this.file = { name, index, size, done: have, base: have, start: Date.now(), quarter: 0 };
    this.draw(true);
  }

  update(done: number): void {
    const f = this.file;
    if (f === undefined || this.quiet) return;
    this.fetched += Math.max(0, done - f.done);
    f.done = done;
    if (this.io.isTTY) this.draw(false);
    else {
      const q = Math.floor((f.size > 0 ? Math.min(1, done / f.size) : 1) * 4);
      if (q > f.quarter && q < 4) {
        f.quarter = q;
        this.io.err(`  ${f.name}: ${q * 25}% (${formatBytes(done)} / ${formatBytes(f.size)})\n`);
      }
    }
  }

  /** The current file is complete and verified. */
  finish(): void {
    const f = this.file;
    if (f === undefined) return;
    this.file = undefined;
    this.doneBytes += f.size;
    if (this.quiet) return;
    this.clear();
    this.io.err(`  ${f.name}: done (${formatBytes(f.size)} in ${((Date.now() - f.start) / 1000).toFixed(1)} s)\n`);
    this.draw(true);
  }

  /** Removes the bar (before an error is printed, or at the end). */
  close(): void {
    this.file = undefined;
    this.clear();
  }

  private clear(): void {
    if (this.drawn) this.io.err("\r\x1b[K");
    this.drawn = false;
  }

  private draw(force: boolean): void {
    if (this.quiet || !this.io.isTTY || this.file === undefined) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const f = this.file;
    const done = this.doneBytes + f.done;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const rate = this.fetched / Math.max(0.001, (now - this.start) / 1000);
    const which = this.count > 1 ? `[${f.index + 1}/${this.count}] ` : "";
    this.io.err(`\r${which}${f.name}  [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${formatBytes(done)} / ${formatBytes(this.total)}  ${formatBytes(rate)}/s\x1b[K`);
    this.drawn = true;
  }
}

export interface DownloadFilesOptions {
  readonly io: Io;
  readonly repo: HubRepo;
  /** The revision the files were listed at (branch, tag or commit). */
  readonly revision: string;
  /** Entries of the tree API (files). */
  readonly files: ReadonlyArray<TreeEntry>;
  /** The folder to write into (created when missing). */
  readonly out: string;
  readonly quiet?: boolean;
  /** Where an entry goes, relative to `out` (default: its path in the repository). */
  readonly localPath?: (entry: TreeEntry) => string;
  /** The commit `revision` resolved to, when known: every file is fetched from it. */
  readonly commit?: string | undefined;
}

export interface DownloadedFile {
  /** The path in the repository. */
  readonly repoPath: string;
  /** The local file (absolute when `out` is). */
  readonly path: string;
  readonly size: number;
  readonly digest: Expected["digest"];
  /** False when the file was already in place and verified. */
  readonly fetched: boolean;
}

export interface DownloadResult {
  readonly files: ReadonlyArray<DownloadedFile>;
  /** The commit the hub reported for the revision (`X-Repo-Commit`), when a file was fetched or the revision is a commit. */
  readonly commit: string | undefined;
}

/** Downloads (or resumes, or confirms) every file, one after the other. */
export async function downloadFiles(client: HubClient, o: DownloadFilesOptions): Promise<DownloadResult> {
  const quiet = o.quiet === true;
  const jobs = o.files.map((entry) => {
    const rel = o.localPath?.(entry) ?? entry.path;
    const norm = path.posix.normalize(rel.replaceAll("\\", "/"));
    if (norm === "" || norm === "." || norm.startsWith("../") || norm === ".." || path.posix.isAbsolute(norm)) {
      throw downloadFailed(`refusing to write ${JSON.stringify(entry.path)} outside ${o.out}`, "check HF_ENDPOINT: the listing names a file outside the repository");
    }
    return { entry, name: norm, dest: path.join(o.out, ...norm.split("/")), exp: expectedOf(entry) };
  });
  fs.mkdirSync(o.out, { recursive: true });
  const total = jobs.reduce((n, j) => n + j.exp.size, 0);
  if (!quiet) o.io.err(`${o.repo.id}@${o.revision}: ${jobs.length} file(s), ${formatBytes(total)} -> ${o.out}\n`);
  const progress = new DownloadProgress(o.io, quiet, total, jobs.length);
  const state: PinState = { commit: o.commit ?? (/^[0-9a-f]{40}$/.test(o.revision) ? o.revision : undefined) };
  const done: DownloadedFile[] = [];
  try {
    for (const [index, j] of jobs.entries()) {
      const fetched = await downloadOne(client, o, state, progress, index, j.entry, j.name, j.dest, j.exp);
      done.push({ repoPath: j.entry.path, path: j.dest, size: j.exp.size, digest: j.exp.digest, fetched });
    }
  } finally {
    progress.close();
  }
  return { files: done, commit: state.commit };
}

interface PinState {
  commit: string | undefined;
}

async function downloadOne(client: HubClient, o: DownloadFilesOptions, state: PinState, progress: DownloadProgress, index: number, e: TreeEntry, name: string, dest: string, exp: Expected): Promise<boolean> {
  const part = `${dest}.part`;
  if (fs.existsSync(dest)) {
    const v = await verifyFile(dest, exp);
    if (v.ok) {
      progress.line(`  ${name}: up to date`);
      progress.skip(exp.size);
      return false;
    }
    progress.line(`  ${name}: the existing file differs from the hub (${v.why}); downloading it again`);
    fs.rmSync(dest, { force: true });
  }
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const what = `downloading ${name}`;
  let have = fs.existsSync(part) ? fs.statSync(part).size : 0;
  if (have > exp.size) {
    fs.rmSync(part);
    have = 0;
  }
  if (have < exp.size || exp.size === 0) {
    if (have > 0) progress.line(`  ${name}: resuming at ${formatBytes(have)} of ${formatBytes(exp.size)}`);
    progress.begin(name, index, exp.size, have);
    const url = client.resolveUrl(o.repo, state.commit ?? o.revision, e.path);
    const stall = new AbortController();
    let timer = setTimeout(() => stall.abort(), STALL_MS);
    const alive = () => {
      clearTimeout(timer);
      timer = setTimeout(() => stall.abort(), STALL_MS);
    };
    try {
      let opened = await client.open(url, what, { headers: have > 0 ? { range: `bytes=${have}-` } : {}, signal: stall.signal });
      if (opened.res.status === 416) {
        // The server has no bytes past ours: start over.
        await opened.res.body?.cancel();
        fs.rmSync(part, { force: true });
        have = 0;
        opened = await client.open(url, what, { signal: stall.signal });
      }
      const res = opened.res;
      state.commit ??= opened.commit;
      if (!res.ok) {
        await res.body?.cancel();
        throw httpError(res.status, url, what, { hasToken: client.hasToken, repoType: o.repo.type, hubMessage: res.headers.get("x-error-message") ?? undefined });
      }
      if (res.status === 206) {
        const start = Number(/^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "")?.[1] ?? Number.NaN);
        if (start !== have) {
          await res.body?.cancel();
          fs.rmSync(part, { force: true });
          throw downloadFailed(`${what}: the server resumed at the wrong offset`, "run the command again: the file is downloaded from the start");
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
        throw downloadFailed(
          `${what}: ${stalled ? "the connection stalled" : "the connection was lost"} after ${formatBytes(got)} of ${formatBytes(exp.size)}`,
          `run the same command again: it resumes from ${path.basename(part)}`,
          cause,
        );
      }
      await new Promise<void>((resolve, reject) => sink.end((err?: Error | null) => (err ? reject(err) : resolve())));
    } finally {
      clearTimeout(timer);
    }
  } else progress.begin(name, index, exp.size, have);
  const size = fs.statSync(part).size;
  if (size < exp.size) throw downloadFailed(`${what}: the server sent ${formatBytes(size)} of ${formatBytes(exp.size)}`, `run the same command again: it resumes from ${path.basename(part)}`);
  const v = await verifyFile(part, exp);
  if (!v.ok) {
    fs.rmSync(part, { force: true });
    throw new BdcError({
      code: "BDC_DOWNLOAD_CHECKSUM",
      message: `${what}: the file does not match the hub's checksum (${v.why}); the partial file was removed`,
      hint: "run the command again to download it afresh; if it happens again, the server (HF_ENDPOINT) serves different content than it lists",
    });
  }
  fs.renameSync(part, dest);
  progress.finish();
  return true;
}
